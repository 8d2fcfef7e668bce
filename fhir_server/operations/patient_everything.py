"""``Patient/{id}/$everything`` (FHIR R4 operation-patient-everything): the patient and every
resource in their compartment (R4 CompartmentDefinition ``patient``), plus the resources those
reference (practitioners, organizations, medications ...), paged like a search.

Supported parameters: ``_since`` (only resources updated at or after that instant), ``_type``
(comma-separated resource types), ``_count`` and the paging ``_cursor``. ``start`` / ``end``
(care dates) are not supported and are reported in an OperationOutcome entry.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

from fhir_server.interactions.base import FhirResponse
from fhir_server.interactions.search_bundle import searchset
from fhir_server.jsonio import dumps
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.search import parse_search
from fhir_server.search.parse_values import parse_date
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action
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


@operation("everything", levels=("instance",), types=("Patient",))
async def everything_operation(call: OperationCall) -> FhirResponse:
    """One page of the patient's record. The Patient must be one the caller may see: an unknown and a
    hidden patient both answer 404 (hidden means absent); every resource of the page passes the policy."""
    assert call.resource_id is not None
    patient_id = call.resource_id
    target = AuditTarget("operation", "Patient", patient_id, query="$everything")
    start = call.start
    await call.access.read("Patient", patient_id, action=Action.OPERATION, interaction="operation", record=False)
    params = call.query
    query = parse_search(None, _search_params(params), strict=True, compartment=("Patient", patient_id))
    ignored = [Issue("warning", "not-supported", f"Parameter '{n}' is not supported by $everything; ignored", n)
               for n, _ in params if n not in _KNOWN]
    query = replace(query, warnings=(*query.warnings, *ignored))
    result = await call.access.search(query, target, start)
    base_url = call.base_url
    path = f"{base_url.rstrip('/')}/Patient/{quote(patient_id, safe='')}/$everything"
    link_params = [(n, v) for n, v in params if n in _KNOWN and n != "_cursor"]
    current = next((v for n, v in params if n == "_cursor"), None)
    return FhirResponse(200, dumps(searchset(query, result, base_url=base_url, path=path, current_cursor=current,
                                             link_params=link_params)))
