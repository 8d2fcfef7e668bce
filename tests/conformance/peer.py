"""An independent FHIR R4 server with no KZ support and no security, in memory: the shape of a Medplum
router over its MemoryRepository (shared/peers/medplum), written here in Python so the suite needs no
Node. CRUD with versions, a few search parameters, batch/transaction, conditional writes and
``$everything``. Nothing of kzfhir is used: the kit must judge it as it would any vendor's server."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FHIR = "application/fhir+json"
TYPES = ("Patient", "Practitioner", "Organization", "Observation", "Encounter", "Appointment", "Consent",
         "Device", "Condition", "Provenance", "ServiceRequest", "MedicationRequest", "Schedule", "Slot",
         "DocumentReference", "RelatedPerson", "Medication", "AuditEvent")


def _outcome(status: int, code: str, text: str) -> JSONResponse:
    body = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}
    return JSONResponse(body, status_code=status, media_type=FHIR)


def _capability() -> dict[str, Any]:
    interactions = [{"code": c} for c in ("read", "vread", "update", "delete", "history-instance", "create",
                                            "search-type")]
    return {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1",
            "date": "2026-01-01", "format": ["json"], "software": {"name": "memory-peer", "version": "1"},
            "rest": [{"mode": "server", "resource": [
                {"type": t, "interaction": interactions,
                 "searchParam": [{"name": n, "type": "token"} for n in ("_id", "identifier", "subject", "patient")]}
                for t in TYPES]}]}


class Memory:
    """Versions per ``Type/id``; deleted resources keep their history."""

    def __init__(self) -> None:
        self.versions: dict[str, list[dict[str, Any] | None]] = {}

    def current(self, kind: str, rid: str) -> dict[str, Any] | None:
        history = self.versions.get(f"{kind}/{rid}")
        return history[-1] if history else None

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        key = f"{resource['resourceType']}/{resource['id']}"
        history = self.versions.setdefault(key, [])
        stored = {**resource, "meta": {"versionId": str(len(history) + 1),
                                        "lastUpdated": datetime.now(UTC).isoformat()}}
        history.append(stored)
        return stored

    def delete(self, kind: str, rid: str) -> None:
        if self.current(kind, rid) is not None:
            self.versions[f"{kind}/{rid}"].append(None)

    def search(self, kind: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        found = [h[-1] for k, h in self.versions.items() if k.startswith(f"{kind}/") and h[-1] is not None]
        for name, value in params:
            found = [r for r in found if _matches(r, name, value)]
        return found


def _matches(resource: dict[str, Any], name: str, value: str) -> bool:
    if name.startswith("_") and name != "_id":
        return True  # _count, _include, _summary ... are ignored, like many simple servers do
    if name == "_id":
        return resource.get("id") == value
    if name == "identifier":
        system, _, code = value.rpartition("|")
        return any(i.get("value") == code and (not system or i.get("system") == system)
                   for i in resource.get("identifier") or [])
    if name in ("subject", "patient"):
        return value in json.dumps(resource)
    return True


def _bundle(kind: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "total": len(resources),
            "entry": [{"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r} for r in resources]}


def _stored(resource: dict[str, Any], status: int) -> JSONResponse:
    location = f"{resource['resourceType']}/{resource['id']}/_history/{resource['meta']['versionId']}"
    headers = {"Location": location, "ETag": f'W/"{resource["meta"]["versionId"]}"'}
    return JSONResponse(resource, status_code=status, headers=headers, media_type=FHIR)


class Peer:
    def __init__(self) -> None:
        self.memory = Memory()

    def create(self, kind: str, body: Any, if_none_exist: str | None) -> Response:
        if not isinstance(body, dict) or body.get("resourceType") != kind:
            return _outcome(400, "invalid", f"expected a {kind}")
        if if_none_exist and self.memory.search(kind, parse_qsl(if_none_exist)):
            return Response(status_code=200)
        return _stored(self.memory.put({**body, "id": uuid.uuid4().hex}), 201)

    def read(self, kind: str, rid: str) -> Response:
        if f"{kind}/{rid}" not in self.memory.versions:
            return _outcome(404, "not-found", f"{kind}/{rid} not found")
        resource = self.memory.current(kind, rid)
        return _stored(resource, 200) if resource else _outcome(410, "deleted", f"{kind}/{rid} deleted")

    def update(self, kind: str, rid: str, body: Any) -> Response:
        if not isinstance(body, dict) or body.get("resourceType") != kind:
            return _outcome(400, "invalid", f"expected a {kind}")
        existed = self.memory.current(kind, rid) is not None
        return _stored(self.memory.put({**body, "id": rid}), 200 if existed else 201)

    def conditional(self, method: str, kind: str, query: str, body: Any) -> Response:
        matches = self.memory.search(kind, parse_qsl(query))
        if len(matches) > 1:
            return _outcome(412, "multiple-matches", "more than one match")
        if method == "DELETE":
            for match in matches:
                self.memory.delete(kind, match["id"])
            return Response(status_code=204)
        rid = matches[0]["id"] if matches else uuid.uuid4().hex
        return self.update(kind, rid, body)

    def history(self, kind: str, rid: str, version: str | None) -> Response:
        versions = [v for v in self.memory.versions.get(f"{kind}/{rid}", []) if v is not None]
        if version is None:
            return JSONResponse(_bundle("history", list(reversed(versions))), media_type=FHIR)
        chosen = [v for v in versions if v["meta"]["versionId"] == version]
        return _stored(chosen[0], 200) if chosen else _outcome(404, "not-found", f"no version {version}")

    def everything(self, rid: str) -> Response:
        if self.memory.current("Patient", rid) is None:
            return _outcome(404, "not-found", f"Patient/{rid} not found")
        ref = f"Patient/{rid}"
        found = [h[-1] for h in self.memory.versions.values() if h[-1] is not None
                 and (h[-1].get("id") == rid or ref in json.dumps(h[-1]))]
        return JSONResponse(_bundle("searchset", found), media_type=FHIR)

    def batch(self, bundle: Any) -> Response:
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            return _outcome(400, "invalid", "expected a Bundle")
        saved = copy.deepcopy(self.memory.versions)
        entries = []
        for entry in bundle.get("entry") or []:
            request = entry.get("request") or {}
            answer = self.dispatch(request.get("method", "GET"), str(request.get("url", "")), entry.get("resource"))
            if bundle.get("type") == "transaction" and answer.status_code >= 400:
                self.memory.versions = saved
                return answer
            entries.append(_entry(answer))
        kind = "transaction-response" if bundle.get("type") == "transaction" else "batch-response"
        return JSONResponse({"resourceType": "Bundle", "type": kind, "entry": entries}, media_type=FHIR)

    def dispatch(self, method: str, url: str, body: Any, headers: dict[str, str] | None = None) -> Response:
        path, _, query = url.partition("?")
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] not in TYPES:
            return _outcome(404, "not-supported", f"unknown path {url}")
        kind = parts[0]
        if len(parts) == 1:
            if method == "GET":
                return JSONResponse(_bundle("searchset", self.memory.search(kind, parse_qsl(query))), media_type=FHIR)
            if method == "POST":
                return self.create(kind, body, (headers or {}).get("if-none-exist"))
            return self.conditional(method, kind, query, body)
        if len(parts) == 3 and parts[2] == "$everything" and kind == "Patient":
            return self.everything(parts[1])
        if len(parts) >= 3 and parts[2] == "_history":
            return self.history(kind, parts[1], parts[3] if len(parts) > 3 else None)
        if method == "PUT":
            return self.update(kind, parts[1], body)
        if method == "DELETE":
            self.memory.delete(kind, parts[1])
            return Response(status_code=204)
        return self.read(kind, parts[1])


def _entry(answer: Response) -> dict[str, Any]:
    entry: dict[str, Any] = {"response": {"status": str(answer.status_code)}}
    if answer.body:
        entry["resource"] = json.loads(answer.body)
        if "location" in answer.headers:
            entry["response"]["location"] = answer.headers["location"]
    return entry


def memory_peer() -> Starlette:
    peer = Peer()

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse(_capability(), media_type=FHIR)

    async def root(request: Request) -> Response:
        try:
            return peer.batch(json.loads(await request.body()))
        except ValueError:
            return _outcome(400, "structure", "not JSON")

    async def anything(request: Request) -> Response:
        raw = await request.body()
        if request.url.path.endswith("/_search"):  # R4 search.html: POST [type]/_search with a form body
            kind = request.url.path.strip("/").split("/")[0]
            return peer.dispatch("GET", f"{kind}?{raw.decode()}", None)
        try:
            body = json.loads(raw) if raw and request.method in ("POST", "PUT") else None
        except ValueError:
            return _outcome(400, "structure", "not JSON")
        url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return peer.dispatch(request.method, url, body, dict(request.headers))

    methods = ["GET", "POST", "PUT", "DELETE"]
    return Starlette(routes=[Route("/metadata", metadata), Route("/", root, methods=["POST"]),
                             Route("/{path:path}", anything, methods=methods)])
