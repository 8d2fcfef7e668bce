"""Which patients a resource belongs to, and when its data happened — from the R4 definitions.

Patient membership follows the R4 patient CompartmentDefinition: for each resource type it names
search parameters, whose expressions (core ``search-parameters``) say which references make a
resource part of a patient's compartment. Two gaps of R4 are closed deliberately, because a
resource that holds a patient's data must never be treated as patient-free "directory" data:

* types the CompartmentDefinition does not list (Task, Device, Binary, ...) belong to every
  patient they reference anywhere (``Task.for``, ``Device.patient``, ``Binary.securityContext``);
* a Bundle (a stored document or message) belongs to the patients of all its entries.

The clinical date used for ``Consent.provision.dataPeriod`` is read through the type's date search
parameters (``CLINICAL_DATE_CODES``: R4 ``clinical-date`` such as ``Observation.effective``, then
``Condition.onset``/``recordedDate``, ``authoredOn``, ``issued``, ``created`` ...), else
``meta.lastUpdated``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from fhir_server.definitions import core_resources
from fhir_server.security.fhirtime import first_instant
from fhir_server.security.policy.paths import ElementPath, compile_union, evaluate
from fhir_server.security.refs import ref_id, ref_type, relative_ref


@cache
def _expressions() -> dict[tuple[str, str], str]:
    table: dict[tuple[str, str], str] = {}
    for parameter in core_resources("search-parameters", "SearchParameter"):
        expression = parameter.get("expression")
        if expression:
            for base in parameter.get("base", []):
                table[(base, parameter["code"])] = expression
    return table


@cache
def compartment_paths() -> dict[str, tuple[ElementPath, ...]]:
    """Resource type -> the element paths that place it in a patient's compartment."""
    definition = next(
        item for item in core_resources("profiles-resources", "CompartmentDefinition") if item.get("code") == "Patient"
    )
    expressions = _expressions()
    table: dict[str, tuple[ElementPath, ...]] = {}
    for entry in definition.get("resource", []):
        paths = [
            path
            for param in entry.get("param", [])
            if param != "{def}" and (entry["code"], param) in expressions
            for path in compile_union(expressions[(entry["code"], param)], entry["code"])
        ]
        if paths or entry["code"] == "Patient":
            table[entry["code"]] = tuple(paths)
    return table


#: Date search parameters that say when a resource's data happened, most clinical first. The
#: expressions come from the core package; R4's ``clinical-date`` ("date") misses e.g. Condition.
CLINICAL_DATE_CODES = ("date", "onset-date", "recorded-date", "occurrence", "authored", "issued", "created", "period")


@cache
def _clinical_date_paths() -> dict[str, tuple[ElementPath, ...]]:
    table: dict[str, list[ElementPath]] = {}
    for code in CLINICAL_DATE_CODES:
        for (base, param), expression in _expressions().items():
            if param == code:
                table.setdefault(base, []).extend(compile_union(expression, base))
    return {base: tuple(paths) for base, paths in table.items() if paths}


def _patient_refs(values: list[Any]) -> Iterator[str]:
    for value in values:
        if isinstance(value, dict):
            ref = relative_ref(value.get("reference"))
            if ref_type(ref) == "Patient":
                yield ref_id(ref) or ""


def _deep_patient_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield from _patient_refs([node])
        for value in node.values():
            yield from _deep_patient_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _deep_patient_refs(item)


def patient_ids_of(resource: dict[str, Any]) -> set[str]:
    """Ids of the patients whose compartment the resource is in (empty: not patient data)."""
    resource_type = resource.get("resourceType")
    ids: set[str] = set()
    if resource_type == "Patient" and resource.get("id"):
        ids.add(resource["id"])
    if resource_type == "Bundle":
        for entry in resource.get("entry", []) or []:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                ids |= patient_ids_of(entry["resource"])
        return ids
    paths = compartment_paths().get(str(resource_type))
    if paths is None:
        ids.update(_deep_patient_refs({k: v for k, v in resource.items() if k != "contained"}))
    else:
        for path in paths:
            ids.update(_patient_refs(evaluate(path, resource)))
    for contained in resource.get("contained", []) or []:
        if isinstance(contained, dict):
            ids |= patient_ids_of(contained)
    ids.discard("")
    return ids


def clinical_instant(resource: dict[str, Any]) -> float | None:
    """When the resource's data happened (start of its clinical date), else its lastUpdated."""
    for path in _clinical_date_paths().get(str(resource.get("resourceType")), ()):
        for value in evaluate(path, resource):
            instant = first_instant(value)
            if instant is not None:
                return instant
    meta = resource.get("meta")
    return first_instant(meta.get("lastUpdated")) if isinstance(meta, dict) else None
