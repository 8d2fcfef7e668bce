"""``Patient/{id}/$everything`` (FHIR R4 operation-patient-everything): the patient and every
resource in their compartment (R4 CompartmentDefinition ``patient``), plus the resources those
reference (practitioners, organizations, medications ...), paged like a search.

Supported parameters: ``_since`` (only resources updated at or after that instant), ``_type``
(comma-separated resource types), ``_count`` and the paging ``_cursor``. ``start`` / ``end``
(care dates) are not supported and are reported in an OperationOutcome entry.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote

from fhir_server.errors import FhirError
from fhir_server.interactions.access import Action, AuditTarget, session
from fhir_server.interactions.base import FhirResponse
from fhir_server.interactions.search_access import guard_result
from fhir_server.interactions.search_bundle import searchset
from fhir_server.jsonio import dumps
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.search import parse_search
from fhir_server.search.parse_values import parse_date
from fhir_server.security.enforcement import AccessSession
from fhir_server.security.policy import Verdict
from fhir_server.validation.issues import Issue

_KNOWN = frozenset({"_since", "_type", "_count", "_cursor", "_format", "_pretty"})


def _search_params(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = [("_include", "*")]
    for name, value in params:
        if name == "_since" and value:
            parse_date("_since", value)  # 400 naming _since if it is not an instant
            out.append(("_lastUpdated", "ge" + value))
        elif name in ("_type", "_count", "_cursor") and value:
            out.append((name, value))
    return out


async def _require_patient(store: Any, patient_id: str) -> None:
    query = parse_search("Patient", [("_id", patient_id), ("_summary", "count")], strict=True)
    result = await store.search(query)
    if not result.total:
        raise FhirError("not_found", f"Patient/{patient_id} is not known", code="not-found")


@operation("everything", levels=("instance",), types=("Patient",))
async def everything_operation(call: OperationCall) -> FhirResponse:
    assert call.resource_id is not None
    access = session(call.services, call.ctx)
    target = AuditTarget("operation", "Patient", call.resource_id)
    start = await access.start(Action.OPERATION, "Patient", target, operation="everything", instance_level=True)
    body = await handle(call.services.store, call.resource_id, call.query, call.base_url, access=access, start=start)
    return FhirResponse(200, body)


async def handle(store: Any, patient_id: str, params: list[tuple[str, str]], base_url: str, *,
                 access: AccessSession | None = None, start: Verdict | None = None) -> bytes:
    """The searchset Bundle of one page of the patient's record; 404 for an unknown patient, 400
    (``SearchError``) for a bad ``_since`` / ``_type`` / ``_count``. With an access session every
    resource of the page passes the policy (issue 5 §2)."""
    await _require_patient(store, patient_id)
    query = parse_search(None, _search_params(params), strict=True, compartment=("Patient", patient_id))
    ignored = [Issue("warning", "not-supported", f"Parameter '{n}' is not supported by $everything; ignored", n)
               for n, _ in params if n not in _KNOWN]
    query = replace(query, warnings=(*query.warnings, *ignored))
    result = await store.search(query)
    if access is not None and start is not None:
        result = await guard_result(access, start, result, AuditTarget("operation", "Patient", patient_id))
        await access.flush()
    path = f"{base_url.rstrip('/')}/Patient/{quote(patient_id, safe='')}/$everything"
    link_params = [(n, v) for n, v in params if n in _KNOWN and n != "_cursor"]
    current = next((v for n, v in params if n == "_cursor"), None)
    return dumps(searchset(query, result, base_url=base_url, path=path, current_cursor=current,
                           link_params=link_params))
