"""Steps every write shares: check and validate the content, then store a version with its indexes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fhir_server.errors import FhirError
from fhir_server.i18n import msg
from fhir_server.interactions.base import Services, with_meta
from fhir_server.jsonio import dumps
from fhir_server.search.compartments import patient_compartment, patients_text, with_patients
from fhir_server.storage.protocols import StoredResource, TxView
from fhir_server.validation.issues import Issue
from fhir_server.validation.on_write import merge


def require_resource(body: Any, resource_type: str) -> dict[str, Any]:
    """The body must be a resource of the type in the URL (FHIR R4 http.html §3.1.0.4/3.1.0.8: 400)."""
    if not isinstance(body, dict):
        raise FhirError("invalid", msg("write.body_not_object"), code="structure")
    actual = body.get("resourceType")
    if actual != resource_type:
        raise FhirError("invalid", msg("write.type_mismatch", actual=actual, type=resource_type),
                        code="invalid", expression="resourceType")
    return body


def validate(services: Services, resource: dict[str, Any], *, mode: str = "create") -> list[Issue]:
    """Base structural validation, then every configured profile validator; errors give 422."""
    if not services.settings.validate_on_write:
        return []
    issues = services.validator.validate(resource)
    if not any(i.is_error for i in issues):  # profiles assume a structurally sound resource
        for extra in services.extra_validators:
            issues.extend(extra(resource, mode))
    issues = merge(issues)
    errors = [i for i in issues if i.is_error]
    if errors:  # the reasons first: invariant warnings (dom-6 narrative) would otherwise lead the outcome
        raise FhirError("unprocessable", errors[0].diagnostics, issues=errors + [i for i in issues if not i.is_error])
    return issues


def stamp(view: TxView, services: Services, resource: dict[str, Any], resource_type: str, resource_id: str,
          version: int) -> tuple[dict[str, Any], Any]:
    """The version as stored (id and meta set by the server) and its search index rows."""
    full = with_meta(resource, resource_type, resource_id, version, view.timestamp)
    return full, services.indexer.extract(full) if services.indexer is not None else None


def put_version(view: TxView, services: Services, full: dict[str, Any], rows: Any, patients: set[str],
                method: str, *, data: bytes | None = None) -> StoredResource:
    """Store a stamped version with its index rows and its patients (one compartment computation:
    search/compartments.py), then run the write and change hooks inside the same unit. ``data``: ``full``
    as ``dumps`` writes it, when the caller has it already."""
    resource_type, resource_id, version = full["resourceType"], full["id"], int(full["meta"]["versionId"])
    if rows is not None:
        rows = with_patients(rows, patients)
    previous = view.current(resource_type, resource_id) if services.change_hooks and version > 1 else None
    stored = view.put(resource_type, resource_id, version, dumps(full) if data is None else data, rows, method,
                      patients_text(patients))
    if services.enforcer is not None:
        services.enforcer.facts_changed(resource_type, view)
    for hook in services.write_hooks:
        hook(view, services, full, stored)
    for change in services.change_hooks:
        change(view, services, previous.data if previous is not None and not previous.deleted else None, full,
               stored)
    return stored


def store_version(view: TxView, services: Services, resource: dict[str, Any], resource_type: str,
                  resource_id: str, version: int, method: str) -> StoredResource:
    """Stamp and store one version whose patients follow from its own content and what it references
    (for resources the server writes itself inside a unit: Provenance of a signed record, alerts)."""
    full, rows = stamp(view, services, resource, resource_type, resource_id, version)
    return put_version(view, services, full, rows, patient_compartment(full, rows, view.patients), method)


def parse_criteria(services: Services, resource_type: str, criteria: str) -> Any:
    """A conditional interaction's search criteria (``identifier=x&active=true``) as a search query.

    Criteria are parsed strictly: an unknown parameter would silently widen the match (FHIR R4
    http.html §3.1.0.8 conditional update relies on exact criteria).
    """
    from fhir_server.search import SearchError, parse_search

    params = parse_qsl(criteria.lstrip("?"), keep_blank_values=True)
    if not params:
        raise FhirError("invalid", msg("write.conditional_without_criteria"), code="required")
    try:
        return parse_search(resource_type, params, strict=True)
    except SearchError as exc:
        raise FhirError("invalid", f"invalid criteria {criteria!r}: {exc}", code="invalid") from exc


def next_version(current: StoredResource | None) -> int:
    return 1 if current is None else current.version + 1
