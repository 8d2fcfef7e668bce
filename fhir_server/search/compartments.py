"""Compartment membership from the R4 CompartmentDefinitions (FHIR R4 §3.2.1 compartmentdefinition).

A resource is in ``Patient/123``'s compartment when one of the parameters the Patient
CompartmentDefinition lists for its type references ``Patient/123``. The compartment's own resource
is a member of its own compartment (R4 compartments page: "the patient resource itself" is in the
patient compartment; ``{def}`` in the definitions means the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from fhir_server.definitions import core_resources


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
