"""transaction: ``POST [base]`` with a ``transaction`` Bundle (FHIR R4 http.html §3.1.0.11).

All or nothing: every write runs in one store unit. Processing order per §3.1.0.11.2: DELETE, POST,
PUT/PATCH, then GET/HEAD (run after the commit, on what it wrote). ``urn:uuid:`` fullUrls, entry
fullUrls and conditional references are resolved inside the unit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

import orjson

from fhir_server.errors import FhirError
from fhir_server.interactions import entry_response, patch
from fhir_server.interactions.access import Action, AuditTarget, session
from fhir_server.interactions.base import Prefer, Services, parse_etag
from fhir_server.interactions.bundle_entries import Entry, parse_entry
from fhir_server.interactions.delete import delete_in
from fhir_server.interactions.references import is_conditional, is_local_urn, rewrite_references, unresolved
from fhir_server.interactions.search_access import indirect
from fhir_server.interactions.write import parse_criteria, require_resource, store_version, validate
from fhir_server.security.audit.balp import denied_event
from fhir_server.security.enforcement import AccessSession
from fhir_server.security.policy import Verdict, patient_ids_of
from fhir_server.security.tx_facts import TxFacts
from fhir_server.storage.protocols import StoredResource, TxView


@dataclass(slots=True)
class Planned:
    entry: Entry
    criteria: Any = None  # parsed conditional criteria (ifNoneExist, conditional PUT/DELETE)
    target: str | None = None  # resolved id
    status: str = ""
    stored: StoredResource | None = None
    previous: StoredResource | None = None  # the version an update, patch or delete replaced

    @property
    def action(self) -> Action:
        return _ACTIONS[self.entry.method]


_ACTIONS = {"POST": Action.CREATE, "PUT": Action.UPDATE, "PATCH": Action.PATCH, "DELETE": Action.DELETE,
            "GET": Action.READ, "HEAD": Action.READ}


def _prefixed(exc: FhirError, entry: Entry) -> FhirError:
    """The entry's error with expressions pointing into the Bundle (``Bundle.entry[3].resource.status``)."""
    rtype = entry.resource_type
    if rtype:
        exc.issues = [replace(i, expression=f"{entry.where}.resource{i.expression[len(rtype):]}")
                      if i.expression and i.expression.startswith(rtype) else i for i in exc.issues]
    return exc


def _check_entry(services: Services, entry: Entry) -> None:
    if entry.operation is not None and entry.method != "GET":
        raise FhirError("invalid", f"entry {entry.index}: {entry.method} {entry.url} is not supported in a "
                        "transaction", code="not-supported", expression=f"{entry.where}.request.url")
    if entry.method in ("PUT", "DELETE", "PATCH") and entry.resource_id is None and entry.criteria is None:
        raise FhirError("invalid", f"entry {entry.index}: {entry.method} needs an id or criteria",
                        expression=f"{entry.where}.request.url")
    if entry.resource is not None and entry.resource_type is not None:
        try:
            require_resource(entry.resource, entry.resource_type)
            same_id = entry.resource.get("id") == entry.resource_id
            if entry.method == "PUT" and entry.resource_id is not None and not same_id:
                raise FhirError("invalid", "the resource id must match the request url", expression="id")
            validate(services, entry.resource, mode="create" if entry.method == "POST" else "update")
        except FhirError as exc:
            raise _prefixed(exc, entry) from exc


def _plan(services: Services, entries: list[Entry]) -> tuple[list[Planned], dict[str, str]]:
    planned: list[Planned] = []
    static_map: dict[str, str] = {}
    for entry in entries:
        _check_entry(services, entry)
        p = Planned(entry)
        rtype = entry.resource_type
        if entry.method == "POST" and rtype:
            p.target = str(uuid.uuid4())
            if entry.if_none_exist:
                p.criteria = parse_criteria(services, rtype, entry.if_none_exist)
        elif entry.method in ("PUT", "DELETE", "PATCH") and rtype:
            p.target = entry.resource_id
            if entry.resource_id is None and entry.criteria is not None:
                p.criteria = parse_criteria(services, rtype, entry.criteria)
        if entry.full_url and p.target and entry.method in ("POST", "PUT") and p.criteria is None:
            if entry.full_url in static_map:
                raise FhirError("invalid", f"fullUrl {entry.full_url!r} appears twice",
                                expression=f"{entry.where}.fullUrl")
            static_map[entry.full_url] = f"{rtype}/{p.target}"
        planned.append(p)
    return planned, static_map


class _Unit:
    """The body of the transaction's store unit."""

    def __init__(self, services: Services, planned: list[Planned], static_map: dict[str, str],
                 access: AccessSession) -> None:
        self.services = services
        self.access = access
        self.denied: tuple[AuditTarget, Verdict, set[str]] | None = None
        self.planned = planned
        self.mapping = dict(static_map)
        self.conditional_refs: dict[str, str] = {}
        self.view: TxView | None = None

    def __call__(self, view: TxView) -> list[Planned]:
        self.view = view
        by_method = {m: [p for p in self.planned if p.entry.method == m] for m in ("DELETE", "POST", "PUT", "PATCH")}
        for p in by_method["DELETE"]:
            self._delete(view, p)
        for p in by_method["POST"] + by_method["PUT"]:
            self._resolve_target(view, p)
        self._check_overlap()
        for p in by_method["POST"] + by_method["PUT"]:
            # a Bundle stored as an entry (a signed document) keeps its own references untouched
            if p.status == "" and p.entry.resource is not None and p.entry.resource_type != "Bundle":
                rewrite_references(p.entry.resource, self._resolve_ref, f"{p.entry.where}.resource")
        for p in by_method["POST"]:
            if p.status == "":
                p.stored = store_version(view, self.services, p.entry.resource or {}, p.entry.resource_type or "",
                                         p.target or "", 1, "POST")
                p.status = "201 Created"
        for p in by_method["PUT"]:
            self._put(view, p)
        for p in by_method["PATCH"]:
            rtype, target = p.entry.resource_type or "", p.target or ""
            current = view.current(rtype, target)
            expected = _etag(p.entry.if_match)
            patched = patch.patched_resource(self.services, current, rtype, target, p.entry.patch, expected)
            assert current is not None
            p.previous = current
            p.stored = patch.store_patched(view, self.services, None, patched, current, None, set(), expected)
            p.status = "200 OK"
        if self.access.enabled:
            self._authorize(view)
        return self.planned

    def _authorize(self, view: TxView) -> None:
        """Judge every write of the transaction after it is applied (so facts include the Bundle's own
        Consents), on both the replaced and the new version; any refusal rolls the whole unit back."""
        policy = self.access.policy
        assert policy is not None
        facts = TxFacts(view)
        for p in self.planned:
            if p.entry.method in ("GET", "HEAD") or (p.entry.method == "POST" and p.status == "200 OK"):
                continue
            versions = [v for v in (p.previous, p.stored) if v is not None and v.data is not None]
            audit_ids: set[str] = set()
            verdict: Verdict | None = None
            for version in versions:
                resource = orjson.loads(version.data or b"{}")
                ids = patient_ids_of(resource)
                verdict = policy.can_see(self.access.ctx, p.action, resource, facts.get_many(ids), patient_ids=ids)
                target = AuditTarget(p.action.value, version.type, version.id, str(version.version))
                if not verdict.allowed:
                    self.denied = (target, verdict, ids)
                    raise FhirError("forbidden", f"entry {p.entry.index}: access denied: {verdict.reason}",
                                    code="forbidden", expression=f"{p.entry.where}")
                audit_ids |= ids
            if verdict is not None and p.stored is not None:
                self.access.record(AuditTarget(p.action.value, p.stored.type, p.stored.id, str(p.stored.version)),
                                   verdict, audit_ids)
        self.access.write_into(view)

    def _matches(self, view: TxView, p: Planned, limit: int) -> list[tuple[str, str]]:
        matches = view.search_ids(p.criteria, limit + 1)
        if len(matches) > limit:
            raise FhirError("precondition_failed", f"entry {p.entry.index}: the criteria matched "
                            f"{len(matches)} resources", expression=f"{p.entry.where}.request")
        return matches

    def _delete(self, view: TxView, p: Planned) -> None:
        rtype = p.entry.resource_type or ""
        targets = [m[1] for m in self._matches(view, p, 1)] if p.criteria is not None else [p.target or ""]
        for target in targets:
            p.target = target
            p.previous = view.current(rtype, target)
            p.stored = delete_in(view, rtype, target)
        p.status = "204 No Content"

    def _resolve_target(self, view: TxView, p: Planned) -> None:
        if p.criteria is None:
            return
        matches = self._matches(view, p, 1)
        rtype = p.entry.resource_type
        if p.entry.method == "POST" and matches:
            p.target = matches[0][1]
            p.stored = view.current(rtype or "", p.target)
            p.status = "200 OK"  # conditional create found its match: nothing is written
        elif p.entry.method == "PUT":
            body_id = (p.entry.resource or {}).get("id")
            p.target = matches[0][1] if matches else (body_id if isinstance(body_id, str) else str(uuid.uuid4()))
        if p.entry.full_url:
            self.mapping[p.entry.full_url] = f"{rtype}/{p.target}"

    def _check_overlap(self) -> None:
        seen: dict[tuple[str, str], int] = {}
        for p in self.planned:
            if p.entry.method == "GET" or p.target is None or (p.entry.method == "POST" and p.status):
                continue
            key = (p.entry.resource_type or "", p.target)
            if key in seen:
                raise FhirError("invalid", f"entries {seen[key]} and {p.entry.index} both change {key[0]}/{key[1]}",
                                expression=f"{p.entry.where}.request")
            seen[key] = p.entry.index

    def _resolve_ref(self, ref: str) -> str | None:
        if ref in self.mapping:
            return self.mapping[ref]
        if is_local_urn(ref):
            raise unresolved(ref, "Bundle.entry.resource")
        if is_conditional(ref):
            return self._conditional_ref(ref)
        return None

    def _conditional_ref(self, ref: str) -> str:
        if ref not in self.conditional_refs:
            rtype, _, criteria_text = ref.partition("?")
            criteria = parse_criteria(self.services, rtype, criteria_text)
            if self.access.enabled and indirect(criteria):
                raise FhirError("forbidden", f"conditional reference {ref!r} uses chaining or _has, which the "
                                "access policy does not allow here", code="forbidden")
            assert self.view is not None
            matches = self.view.search_ids(criteria, 2)
            if len(matches) != 1:
                raise FhirError("precondition_failed", f"conditional reference {ref!r} matched {len(matches)} "
                                "resources; it must match exactly one", expression="Bundle.entry.resource")
            self.conditional_refs[ref] = f"{matches[0][0]}/{matches[0][1]}"
        return self.conditional_refs[ref]

    def _put(self, view: TxView, p: Planned) -> None:
        rtype, target, resource = p.entry.resource_type or "", p.target or "", p.entry.resource or {}
        if p.criteria is not None:
            resource = {**resource, "id": target}
        current = view.current(rtype, target)
        p.previous = current
        expected = _etag(p.entry.if_match)
        if expected is not None and (current is None or current.deleted or current.version != expected):
            raise FhirError("precondition_failed", f"entry {p.entry.index}: ifMatch {p.entry.if_match} does not "
                            "match the current version", expression=f"{p.entry.where}.request.ifMatch")
        version = 1 if current is None else current.version + 1
        p.stored = store_version(view, self.services, resource, rtype, target, version, "PUT")
        p.status = "201 Created" if current is None or current.deleted else "200 OK"


def _etag(value: str | None) -> int | None:
    return parse_etag(value, "ifMatch")


async def handle(services: Services, ctx: Any, bundle: dict[str, Any], *, base_url: str,
                 prefer: Prefer) -> list[dict[str, Any]]:
    raw_entries = bundle.get("entry", [])
    entries = [parse_entry(services, i, raw, base_url) for i, raw in enumerate(raw_entries)]
    access = session(services, ctx)
    for entry in entries:  # type-level gate of every entry before anything runs
        if entry.method not in ("GET", "HEAD") and entry.resource_type is not None:
            target = AuditTarget(_ACTIONS[entry.method].value, entry.resource_type, entry.resource_id)
            await access.start(_ACTIONS[entry.method], entry.resource_type, target,
                               instance_level=entry.resource_id is not None)
    planned, static_map = _plan(services, entries)
    if access.enabled and any(indirect(p.criteria) for p in planned):
        raise FhirError("forbidden", "conditional entries with chained parameters or _has are not available under "
                        "the access policy: they would test resources it has not judged", code="forbidden")
    unit = _Unit(services, planned, static_map, access)
    try:
        await services.store.transaction(unit)
    except FhirError:
        if unit.denied is not None:  # the refusal is audited although the transaction rolled back
            target, verdict, ids = unit.denied
            access.events += [denied_event(ctx, replace(target, patient_id=pid), verdict.reason)
                              for pid in sorted(ids)] or [denied_event(ctx, target, verdict.reason)]
            await access.flush()
        raise
    out: list[dict[str, Any]] = []
    for p in planned:
        if p.entry.method in ("GET", "HEAD"):
            out.append(await entry_response.run_get(services, ctx, p.entry, base_url))
        else:
            out.append(entry_response.for_write(p.status, p.stored, prefer, base_url))
    return out

