"""Compartment membership from the R4 CompartmentDefinitions (FHIR R4 §3.2.1 compartmentdefinition).

A resource is in ``Patient/123``'s compartment when one of the parameters the Patient
CompartmentDefinition lists for its type references ``Patient/123``. The compartment's own resource
is a member of its own compartment (R4 compartments page: "the patient resource itself" is in the
patient compartment; ``{def}`` in the definitions means the same).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import orjson

from fhir_server.definitions import core_resources
from fhir_server.search.rows import IndexRows


@dataclass(frozen=True, slots=True)
class Compartments:
    # compartment type (Patient, Encounter, ...) -> resource type -> search parameter codes
    params: dict[str, dict[str, tuple[str, ...]]]

    def types_in(self, compartment_type: str) -> tuple[str, ...]:
        """Resource types that can be members of a compartment of this type."""
        return tuple(sorted(self.params.get(compartment_type, {})))

    def membership_params(self, resource_type: str) -> dict[str, tuple[str, ...]]:
        """For one resource type: compartment type -> the parameters that decide membership."""
        out: dict[str, tuple[str, ...]] = {}
        for comp, by_type in self.params.items():
            codes = by_type.get(resource_type)
            if codes is not None:
                out[comp] = codes
        return out


@cache
def get_compartments() -> Compartments:
    params: dict[str, dict[str, tuple[str, ...]]] = {}
    for cd in core_resources("profiles-resources", "CompartmentDefinition"):
        by_type: dict[str, tuple[str, ...]] = {}
        for entry in cd.get("resource", ()):
            codes = tuple(p for p in entry.get("param", ()) if p != "{def}")
            if codes or entry["code"] == cd["code"]:
                by_type[entry["code"]] = codes
        params[cd["code"]] = by_type
    return Compartments(params)


# -- the patient compartment of a resource: ONE computation for search, history, policy and export ---------

_LITERAL = re.compile(r"(?:^|/)([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")
#: (type, id) -> the patients of that stored resource ("" none), or None when it is not stored.
Resolve = Callable[[str, str], "str | None"]


def literal_target(reference: object) -> tuple[str, str] | None:
    """(type, id) of a relative or absolute literal reference; None for ``#contained``, URNs, canonicals."""
    if not isinstance(reference, str) or reference.startswith(("#", "urn:")):
        return None
    match = _LITERAL.search(reference.strip())
    return (match.group(1), match.group(2)) if match else None


def _walk(node: Any, targets: set[tuple[str, str]], embedded: list[dict[str, Any]]) -> None:
    """Every literal reference of a resource into ``targets``; resources embedded in it (contained,
    Bundle entries, Parameters values) into ``embedded``, to be judged as resources of their own.
    (A loop over a stack of containers: every write walks its whole resource here.)"""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            reference = current.get("reference")
            if reference is not None:
                target = literal_target(reference)
                if target is not None:
                    targets.add(target)
            values: Any = current.values()
        else:
            values = current
        for value in values:
            if isinstance(value, dict):
                if "resourceType" in value:
                    embedded.append(value)
                else:
                    stack.append(value)
            elif isinstance(value, list):
                stack.append(value)


# In compact JSON (orjson, as jsonio.dumps writes) a member ``"reference"`` with a string value: inside a string
# every ``"`` is escaped, so this cannot match within a value; the value's escapes are undone with a JSON parse.
# A member name follows ``{`` or ``,``: an escaped quote in an odd name (``x\"reference``) follows a backslash.
_REFERENCE_MEMBER = re.compile(rb'(?<=[{,])"reference":"([^"\\]*(?:\\.[^"\\]*)*)"')
_RESOURCE_MEMBER = b'"resourceType":'


def _scan(data: bytes, resource: dict[str, Any], targets: set[tuple[str, str]], embedded: list[dict[str, Any]]
          ) -> bool:
    """The literal targets of a serialised resource and the resources embedded in it, as ``_walk`` finds them,
    when every embedded resource is a ``contained`` one (each ``resourceType`` member in the bytes beyond the
    resource's own is then one of those); False: walk the resource. The references of the contained resources
    are among those found, as the walk finds them through ``compartment_parts`` of each."""
    count = data.count(_RESOURCE_MEMBER)
    if count != 1:
        contained = resource.get("contained")
        if not (type(contained) is list and len(contained) == count - 1
                and all(type(item) is dict and "resourceType" in item for item in contained)):
            return False
        embedded.extend(contained)
    for match in _REFERENCE_MEMBER.finditer(data):
        raw = match.group(1)
        target = literal_target(orjson.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode())
        if target is not None:
            targets.add(target)
    return True


def patient_compartment(resource: dict[str, Any], rows: IndexRows | None = None, resolve: Resolve | None = None
                        ) -> set[str]:
    """The ids of the patients whose data this resource is (empty: not patient data).

    R4 defines the patient compartment by the CompartmentDefinition's search parameters (the Patient
    itself by its id; ``Observation.subject`` ...). A resource that holds or points at a patient's data
    must never be treated as patient-free "directory" data, so three gaps of R4 are closed here
    (docs/security.md "Whose data is it", docs/conformance.md):

    * a literal reference to ``Patient/x`` anywhere in the resource places it in x's compartment (a
      Task ``for``, an Observation ``focus``, a Device ``patient``, an extension);
    * a reference to another resource places it in the compartments of that resource (``resolve``): a
      Provenance of an Observation, a List of Conditions, a DocumentReference ``context.related``, a
      Communication ``about`` — resources *about* a patient's data are that patient's;
    * resources embedded in it (contained resources, the entries of a stored document or message Bundle,
      a Parameters value) add their own patients.

    Membership is computed once, when a version is written, and stored with it (``resources.patients``,
    ``history.patients`` and the Patient rows of the compartment index).
    """
    ids, others = compartment_parts(resource, rows)
    if resolve is not None:
        for target_type, target_id in others:
            found = resolve(target_type, target_id)
            if found:
                ids.update(found.split())
    ids.discard("")
    return ids


def compartment_parts(resource: dict[str, Any], rows: IndexRows | None = None, data: bytes | None = None
                      ) -> tuple[set[str], set[tuple[str, str]]]:
    """What ``patient_compartment`` needs of a resource's content, computed in one walk: the patient ids
    it names itself (its own id as a Patient, the compartment parameters, literal ``Patient/x``
    references, the same of the resources embedded in it) and the other literal targets whose patients
    it inherits. Membership is the first set plus the patients of each target, so a write plan can walk
    every resource once and resolve the targets as often as its fixed point needs (executor.py).

    ``data``: the resource as ``jsonio.dumps`` wrote it (a write has it anyway), so that its literal
    references are found by one scan of the bytes instead of a walk of every element (``_scan``)."""
    resource_type = resource.get("resourceType")
    ids: set[str] = set()
    if resource_type == "Patient" and isinstance(resource.get("id"), str):
        ids.add(resource["id"])
    if rows is not None:
        ids |= {comp_id for comp_type, comp_id in rows.compartments if comp_type == "Patient"}
    elif "Patient" in get_compartments().membership_params(str(resource_type)):
        from fhir_server.search.indexer import get_indexer

        ids |= {comp_id for comp_type, comp_id in get_indexer().extract(resource).compartments
                if comp_type == "Patient"}
    targets: set[tuple[str, str]] = set()
    embedded: list[dict[str, Any]] = []
    if data is None or not _scan(data, resource, targets, embedded):
        _walk(resource, targets, embedded)
    others: set[tuple[str, str]] = set()
    for target_type, target_id in targets:
        if target_type == "Patient":
            ids.add(target_id)
        else:
            others.add((target_type, target_id))
    for inner in embedded:
        inner_ids, inner_others = compartment_parts(inner, None)
        ids |= inner_ids
        others |= inner_others
    return ids, others


def with_patients(rows: IndexRows, patients: set[str]) -> IndexRows:
    """The index rows with the Patient compartment rows replaced by ``patient_compartment``'s answer, so
    compartment search and ``$everything`` see the same membership as the policy."""
    kept = tuple(row for row in rows.compartments if row[0] != "Patient")
    return replace(rows, compartments=kept + tuple(("Patient", pid) for pid in sorted(patients)))


def patients_text(patients: set[str]) -> str:
    """The stored form of a membership: ids separated by spaces ("" none)."""
    return " ".join(sorted(patients))
