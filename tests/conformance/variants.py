"""kzfhir secured with exactly one access guarantee broken, for the kit's must-fail tests (issue 18).

Each variant is the shipped server (security on, national strict) with one defect a vendor's deployment
could have on one path, made by test code only — an ASGI wrapper in front of the app (a gateway that
sends that path with the MIS's own service account, or drops a header, or counts before it filters) or
a monkeypatch of one server function — never a product setting. The kit must fail the one check that
probes that path and no other: ``CHECK`` names it per variant.

The defects are chosen narrow enough that no other check probes the same path: ``_revinclude`` (ACC-03
only; ACC-14 probes ``_include``), batches of reads only (ACC-09 sends writes in its batch), conditional
create only (a conditional update or delete let through would change or destroy the record the later
checks read), updates and patches by id but not deletes (a delete let through leaves nothing for
ACC-09's batch to probe, and so nothing for the patient's log to show).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.responses import JSONResponse

from conformance.consent import unverified_claims
from tests.conformance.servers import ASGIApp, Message, Receive, Scope, Send, rewriting, service_account_for

Wrap = Callable[[ASGIApp, str], ASGIApp]  # (the app, the MIS service account's token) -> the broken app
Patch = Callable[[pytest.MonkeyPatch], None]


@dataclass(frozen=True)
class Variant:
    check_id: str  # the one check that must fail
    broken: str  # the guarantee broken, in words
    wrap: Wrap | None = None
    patch: Patch | None = None

    def apply(self, app: ASGIApp, token: str, monkeypatch: pytest.MonkeyPatch) -> ASGIApp:
        if self.patch is not None:
            self.patch(monkeypatch)
        return self.wrap(app, token) if self.wrap is not None else app


def _query(scope: Scope) -> dict[str, list[str]]:
    return parse_qs(bytes(scope.get("query_string") or b"").decode("latin-1"))


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope.get("headers") or [] if k.lower() == name), None)


async def _matches_as_service_account(app: ASGIApp, scope: Scope, token: str) -> int | None:
    """How many resources the same search matches for the MIS's service account (no count asked for)."""
    query = {k: vs for k, vs in _query(scope).items() if k not in ("_summary", "_total")}
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://inner.test") as inner:
        answer = await inner.get(str(scope["path"]), params=query, headers=auth)
    if answer.status_code != 200:
        return None
    return sum(1 for e in answer.json().get("entry") or [] if (e.get("search") or {}).get("mode", "match") == "match")


async def _discard(_message: Message) -> None:
    return


def counting_before_filtering(app: ASGIApp, token: str) -> ASGIApp:
    """ACC-02: ``_summary=count`` and ``_total=accurate`` count the search before the consent filter (the
    entries are filtered, the count is not): a gateway answering counts from the unfiltered search."""

    def applies(scope: Scope) -> bool:
        query = _query(scope)
        counted = query.get("_summary") == ["count"] or query.get("_total") == ["accurate"]
        return scope["method"] == "GET" and str(scope["path"]).startswith("/Observation") and counted

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not applies(scope):
            await app(scope, receive, send)
            return
        total = await _matches_as_service_account(app, scope, token)
        if _query(scope).get("_summary") == ["count"]:
            # the server still decides (and audits) the request; its answer is replaced by the count
            await app(scope, receive, _discard)
            count = {"resourceType": "Bundle", "type": "searchset", "total": total or 0}
            await JSONResponse(count, media_type="application/fhir+json")(scope, receive, send)
            return

        def with_total(bundle: Any) -> Any:
            if isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle" and total is not None:
                bundle["total"] = total
            return bundle

        await rewriting(app, lambda _: True, with_total)(scope, receive, send)

    return wrapped


def revincluding_unfiltered(app: ASGIApp, token: str) -> ASGIApp:
    """ACC-03: a search with ``_revinclude`` is run with the service account (the resources it brings in
    are not filtered by consent)."""
    return service_account_for(app, lambda scope: "_revinclude" in _query(scope), token)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def batch_reads_unfiltered(app: ASGIApp, token: str) -> ASGIApp:
    """ACC-04: a batch or transaction of GET entries only is run with the service account (its entries
    skip the checks the same requests get alone)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/":
            await app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            body.extend(message.get("body", b""))
            if not message.get("more_body"):
                break
        try:
            bundle = json.loads(bytes(body))
        except ValueError:
            bundle = None
        entries = bundle.get("entry") if isinstance(bundle, dict) else None
        reads = bool(entries) and all(((e or {}).get("request") or {}).get("method") == "GET"
                                      for e in entries or [])
        target = service_account_for(app, lambda _: True, token) if reads else app
        await target(scope, _replay(bytes(body), receive), send)

    return wrapped


def conditional_create_unfiltered(app: ASGIApp, token: str) -> ASGIApp:
    """ACC-05: the ``If-None-Exist`` criteria of a conditional create are evaluated with the service
    account, over data the caller may not see."""
    return service_account_for(
        app, lambda scope: scope["method"] == "POST" and _header(scope, b"if-none-exist") is not None, token)


def everything_unfiltered(app: ASGIApp, token: str) -> ASGIApp:
    """ACC-06: ``Patient/[id]/$everything`` is gathered with the service account."""
    return service_account_for(app, lambda scope: str(scope["path"]).endswith("/$everything"), token)


def exports_unfiltered(monkeypatch: pytest.MonkeyPatch) -> None:
    """ACC-07: a Bulk Data export keeps every resource it reads (no ``Action.EXPORT`` judgement per
    resource, security/session.py ``keep_visible``); every other path is judged as shipped."""
    from fhir_server.security.policy import Action
    from fhir_server.security.session import AUTHORIZED, AccessSession, Judged, patients_of

    keep_visible = AccessSession.keep_visible

    async def keep_all_exported(self: AccessSession, action: Action, items: Any) -> Any:
        if action is Action.EXPORT:
            return [(item, Judged(AUTHORIZED, patients_of(stored))) for item, stored in items]
        return await keep_visible(self, action, items)

    monkeypatch.setattr(AccessSession, "keep_visible", keep_all_exported)


def provenance_unfiltered(app: ASGIApp, token: str) -> ASGIApp:
    """ACC-08: Provenance is served with the service account, as if records about data were not data."""
    return service_account_for(
        app, lambda scope: scope["method"] == "GET" and str(scope["path"]).startswith("/Provenance"), token)


def dropping_break_glass(app: ASGIApp, _token: str) -> ASGIApp:
    """ACC-12: a gateway that forwards only the headers it knows, so the server never sees
    ``X-Break-Glass-Reason`` and an emergency is refused like any read without consent."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"x-break-glass-reason"]
            scope = {**scope, "headers": headers}
        await app(scope, receive, send)

    return wrapped


def revocations_stay_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """ACC-11: a Consent written inactive (a revocation) does not void the cached patient facts and
    decisions (security/facts_store.py, read_gate.py), so a permit outlives its revocation until the
    next fact-bearing write. Grants still take effect at once."""
    import fhir_server.interactions.executor as executor
    from fhir_server.security.session import Enforcer

    put_version, facts_changed = executor.put_version, Enforcer.facts_changed
    revoking = [False]

    def put_version_revoking(view: Any, services: Any, full: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        revoking[0] = full.get("resourceType") == "Consent" and full.get("status") != "active"
        try:
            return put_version(view, services, full, *args, **kwargs)
        finally:
            revoking[0] = False

    def facts_changed_unless_revoking(self: Enforcer, resource_type: str, view: Any) -> None:
        if not revoking[0]:
            facts_changed(self, resource_type, view)

    monkeypatch.setattr(executor, "put_version", put_version_revoking)
    monkeypatch.setattr(Enforcer, "facts_changed", facts_changed_unless_revoking)


def _changes_by_id(scope: Scope) -> bool:
    """Updates and patches, not deletes: a delete let through leaves ACC-09's batch nothing to probe, so
    the patient's log (ACC-21) could not show that access either."""
    return scope["method"] in ("PUT", "PATCH") and str(scope["path"]).startswith("/Observation/")


def _compartment_and_history(scope: Scope) -> bool:
    path = str(scope["path"])
    return (path.startswith("/Patient/") and path.endswith("/Observation")) or path in ("/_history",
                                                                                       "/Observation/_history")


def _encounters(scope: Scope) -> bool:
    return str(scope["path"]).startswith("/Encounter")


def _patients_clinical_reads(scope: Scope) -> bool:
    """A portal that checks the caller is a patient, then reads clinical data with its own account."""
    token = (_header(scope, b"authorization") or b"")[7:].decode("latin-1") or None
    clinical = str(scope["path"]).startswith(("/Observation", "/Patient")) and "$" not in str(scope["path"])
    return scope["method"] == "GET" and clinical and unverified_claims(token).get("role") == "patient"


def gateway_for(applies: Callable[[Scope], bool]) -> Wrap:
    """A gateway sending the requests ``applies`` to with the MIS's service account."""
    return lambda app, token: service_account_for(app, applies, token)


VARIANTS: tuple[Variant, ...] = (
    Variant("ACC-02", "counts (_summary=count, _total=accurate) taken before the consent filter",
            wrap=counting_before_filtering),
    Variant("ACC-03", "_revinclude not filtered by consent", wrap=revincluding_unfiltered),
    Variant("ACC-04", "batch and transaction GET entries not filtered by consent", wrap=batch_reads_unfiltered),
    Variant("ACC-05", "conditional create criteria evaluated over hidden data", wrap=conditional_create_unfiltered),
    Variant("ACC-06", "Patient/$everything not filtered by consent", wrap=everything_unfiltered),
    Variant("ACC-07", "Bulk Data $export not filtered by consent", patch=exports_unfiltered),
    Variant("ACC-08", "Provenance not filtered by consent", wrap=provenance_unfiltered),
    Variant("ACC-09", "update and patch by id not judged by consent", wrap=gateway_for(_changes_by_id)),
    Variant("ACC-11", "a revocation does not void cached permits", patch=revocations_stay_cached),
    Variant("ACC-12", "the break-glass declaration never reaches the server", wrap=dropping_break_glass),
    Variant("ACC-13", "the patient compartment and history listings not filtered",
            wrap=gateway_for(_compartment_and_history)),
    Variant("ACC-14", "Encounters not filtered by consent", wrap=gateway_for(_encounters)),
    Variant("ACC-15", "patients scoped by role, not by person", wrap=gateway_for(_patients_clinical_reads)),
)


# --- audit trails with a hole: the access checks pass, the record of them does not (AC-14, AC-24) ---------

def _audit_answers(scope: Scope) -> bool:
    """The answers an auditor and the patient read the trail from: AuditEvent searches and the access log."""
    path = str(scope["path"])
    return path.startswith("/AuditEvent") or "$access-log" in path


def _without(keep: Callable[[dict[str, Any]], bool]) -> Callable[[Any], Any]:
    def edit(body: Any) -> Any:
        if isinstance(body, dict) and body.get("resourceType") == "Bundle":
            body["entry"] = [e for e in body.get("entry") or [] if keep((e or {}).get("resource") or {})]
        return body

    return edit


def _succeeded(event: dict[str, Any]) -> bool:
    return event.get("resourceType") != "AuditEvent" or event.get("outcome") in (None, "0")


def refusals_unrecorded(app: ASGIApp, _token: str) -> ASGIApp:
    """A trail that records what was disclosed and changed, never what was refused: the probes of a
    patient's data without consent leave no trace for the auditor or in the patient's access log."""
    return rewriting(app, _audit_answers, _without(_succeeded))


_READ_SUBTYPES = {"read", "vread", "search-type", "search-system", "history-instance", "operation"}


def _not_a_read(event: dict[str, Any]) -> bool:
    return not {s.get("code") for s in event.get("subtype") or []} & _READ_SUBTYPES


def reads_unrecorded(app: ASGIApp, _token: str) -> ASGIApp:
    """A trail that records changes only (the common defect): no read, search or operation is on record."""
    return rewriting(app, _audit_answers, _without(_not_a_read))


@dataclass(frozen=True)
class AuditVariant:
    broken: str
    wrap: Wrap
    shown: str  # what ACC-20's message names
    fails: frozenset[str]  # exactly the checks that must fail
    skips: frozenset[str] = frozenset()  # skipped beyond the shipped server's skips, and why


#: each fails ACC-20 (the AuditEvents) and ACC-21 (the patient's access log), one trail feeding both; a trail
#: without reads also loses the emergency read, so ACC-12 ("allowed *and logged*", AC-02) fails with them
AUDIT_VARIANTS: tuple[AuditVariant, ...] = (
    AuditVariant("reads, searches and operations are not recorded", reads_unrecorded, "GET Patient/",
                 frozenset({"ACC-12", "ACC-20", "ACC-21"}),
                 # the newest AuditEvents, which VD-08 samples, are all the kit's own reads: none is left to judge
                 frozenset({"VD-08"})),
    AuditVariant("refused accesses are not recorded", refusals_unrecorded, "as unconsented Practitioner/",
                 frozenset({"ACC-20", "ACC-21"})),
)
