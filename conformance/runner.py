"""Runs the selected checks against one FHIR base URL and returns the Report."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import httpx

from conformance.consent import unverified_claims
from conformance.context import RunContext
from conformance.fixtures import Fixtures
from conformance.http import FhirClient, json_body
from conformance.identities import Cast, Identity, Minter
from conformance.model import Check, CheckFailed, CheckResult, CheckSkipped, KitError, Outcome, Status
from conformance.registry import select
from conformance.report import Report

__all__ = ["run"]

_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol)


def _kit_version() -> str:
    try:
        return metadata.version("kzfhir")
    except metadata.PackageNotFoundError:
        return "unknown"


async def run(
    base_url: str,
    *,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    checks: Iterable[str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    keep: bool = False,
    timeout: float = 30.0,
    cast: Cast | None = None,
    minter: Minter | None = None,
    sample_count: int = 20,
    record_wait: float = 15.0,
    operator: str = "",
) -> Report:
    """Run ``checks`` (groups or check IDs; all when None: a certification run) against ``base_url``.

    ``token``: the writer (an MIS back-end); ``headers`` go on every request; ``transport`` replaces the
    network (tests: ``httpx.ASGITransport(app=...)``); created resources are deleted unless ``keep``. The
    access checks act as ``cast`` (vendor-given) or identities ``minter`` mints for people the kit creates,
    waiting up to ``record_wait`` s for audit records. ValueError for an unknown group or check ID.
    """
    selected = select(checks)
    sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    authenticated = any(name.lower() == "authorization" for name in sent)
    started = datetime.now(UTC)
    facts = _RunFacts(base_url, started, authenticated, checks is None, operator,
                      _credentials(token, authenticated, cast, minter))
    http = httpx.AsyncClient(base_url=base_url, headers=sent, timeout=timeout, transport=transport)
    async with http:
        client = FhirClient(http, authenticated=authenticated)
        client.secrets.update(t for t in (token, *(i.token for i in (cast.identities() if cast else []))) if t)
        fixtures = Fixtures(client, unverified_claims(token), minter=minter, cast=cast)
        ctx = RunContext(client, fixtures, cast=cast, minter=minter,
                         sample_count=sample_count, record_wait=record_wait)
        try:
            ctx.capability = await _preflight(client)
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            return facts.report((), f"endpoint unreachable: {exc!r}", None, ())
        results, kit_error = await _run_checks(ctx, selected)
        results.append(await _cleanup(ctx, keep))
    return facts.report(tuple(results), kit_error, ctx.capability, tuple(_notes(ctx)))


@dataclass(frozen=True)
class _RunFacts:
    base_url: str
    started: datetime
    authenticated: bool
    full_run: bool
    operator: str
    credentials: tuple[str, ...]

    def report(self, results: tuple[CheckResult, ...], kit_error: str | None,
               capability: dict[str, Any] | None, notes: tuple[str, ...]) -> Report:
        return Report(self.base_url, self.started, datetime.now(UTC), results, kit_error, self.authenticated,
                      _server_facts(capability), notes, _kit_version(), self.full_run, self.credentials,
                      self.operator)


def _credentials(token: str | None, authenticated: bool, cast: Cast | None, minter: Minter | None) -> tuple[str, ...]:
    """Who the kit acted as, for the report: the writer token's claims (read, not verified; never the
    token) and the test identities."""
    claims = unverified_claims(token)
    shown = ", ".join(f"{k} {claims[k]}" for k in ("role", "sub", "fhirUser", "bin", "iss") if claims.get(k))
    writer = (f"writer: a bearer token ({shown}; claims as read by the kit, not verified)" if shown else
              "writer: an Authorization header" if authenticated else "writer: no credentials (anonymous)")
    identities = [f"identity: {label}" for label in (cast.labels() if cast else [])]
    if minter is not None:
        identities.append("identities: patients and practitioners created by the kit, tokens minted with "
                          "the deployment's development key (--dev-key)")
    return (writer, *identities)


def _notes(ctx: RunContext) -> list[str]:
    notes = list(ctx.notes)
    if ctx.fixtures.access_consents:
        notes.append(f"the server's access policy required consent: the kit recorded "
                     f"{len(ctx.fixtures.access_consents)} access Consent(s) for the patients it created "
                     "(AC-01, AC-08)")
    return notes


async def _preflight(client: FhirClient) -> dict[str, Any] | None:
    """Fetch the CapabilityStatement once (CAP-01 fetches it again, as evidence)."""
    response = await client.get("metadata")
    client.take_evidence()
    body = json_body(response)
    return body if body and body.get("resourceType") == "CapabilityStatement" else None


async def _run_checks(ctx: RunContext, selected: list[Check]) -> tuple[list[CheckResult], str | None]:
    results: list[CheckResult] = []
    for check in selected:
        result = await _run_one(ctx, check)
        results.append(result)
        if result.status is Status.ERROR and result.message.startswith("endpoint unreachable"):
            return results, f"{result.message} (during {check.id}; later checks not run)"
    return results, None


async def _run_one(ctx: RunContext, check: Check) -> CheckResult:
    began = time.perf_counter()
    try:
        outcome = await check.func(ctx)
    except CheckFailed as exc:
        outcome = Outcome(Status.FAIL, str(exc))
    except CheckSkipped as exc:
        outcome = Outcome(Status.SKIPPED, str(exc))
    except KitError as exc:
        outcome = Outcome(Status.ERROR, str(exc))
    except _UNREACHABLE as exc:
        outcome = Outcome(Status.ERROR, f"endpoint unreachable: {exc!r}")
    except httpx.TransportError as exc:
        outcome = Outcome(Status.ERROR, f"transport failure: {exc!r}")
    except Exception as exc:  # a kit defect must not hide the other checks' results
        outcome = Outcome(Status.ERROR, f"kit error: {type(exc).__name__}: {exc}")
    evidence, omitted = ctx.client.take_evidence()
    return CheckResult(check.id, check.group, check.title, check.covers, outcome.status,
                       ctx.client.redact(outcome.message), evidence, int((time.perf_counter() - began) * 1000),
                       omitted)


async def _cleanup(ctx: RunContext, keep: bool) -> CheckResult:
    """Delete what the kit created: newest first, the access Consents last (they let the kit delete the
    rest), and a second pass for deletes a referential-integrity rule refused the first time."""
    began = time.perf_counter()
    targets = list(dict.fromkeys([*reversed(ctx.fixtures.created), *reversed(ctx.fixtures.access_consents)]))
    if keep:
        outcome = Outcome(Status.SKIPPED, f"--keep: {len(targets)} resources left on the server: "
                                          + ", ".join(targets))
    else:
        outcome = await _delete_all(ctx.client, targets, ctx.fixtures.owners)
    evidence, omitted = ctx.client.take_evidence()
    return CheckResult("CLN-01", "cleanup", "Resources created by the kit are deleted",
                       ("R4 http.html#delete",), outcome.status, outcome.message, evidence,
                       int((time.perf_counter() - began) * 1000), omitted)


_DELETED = (200, 202, 204, 404, 410)


async def _delete(client: FhirClient, ref: str, owner: Identity | None) -> int:
    """Delete as the identity that created ``ref``, then as the writer if that was refused. A Consent a
    server will not delete (a consent is a legal record it may keep) is revoked instead: its status set to
    ``inactive`` by whoever may change it, which leaves it granting nothing."""
    response = await client.delete(ref, identity=owner) if owner else None
    if response is None or response.status_code not in _DELETED:
        response = await client.delete(ref)
    if response.status_code in _DELETED or not ref.startswith("Consent/"):
        return response.status_code
    for who in (owner, None) if owner else (None,):
        current = await client.get(ref, identity=who)
        if current.status_code != 200:
            continue
        revoked = {**current.json(), "status": "inactive"}
        put = await client.put(ref, json=revoked, identity=who)
        if put.status_code == 200:
            return 204
    return response.status_code


async def _delete_all(client: FhirClient, targets: list[str], owners: dict[str, Identity]) -> Outcome:
    failures: dict[str, str] = {}
    for attempt in range(2):
        pending = targets if attempt == 0 else list(failures)
        failures = {}
        for ref in pending:
            try:
                status = await _delete(client, ref, owners.get(ref))
            except httpx.TransportError as exc:
                failures[ref] = repr(exc)
                continue
            if status not in _DELETED:
                failures[ref] = str(status)
    if failures:
        left = ", ".join(f"{ref} ({why})" for ref, why in failures.items())
        return Outcome(Status.WARNING, f"could not delete {len(failures)} of {len(targets)}: {left}")
    return Outcome(Status.PASS, f"deleted {len(targets)} resources")


def _server_facts(capability: dict[str, Any] | None) -> dict[str, str]:
    cs = capability or {}
    software = cs.get("software")
    software = software if isinstance(software, dict) else {}
    facts = {"software": software.get("name"), "version": software.get("version"),
             "fhirVersion": cs.get("fhirVersion")}
    return {k: str(v) for k, v in facts.items() if v}
