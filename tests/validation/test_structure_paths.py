"""The base structural validator names each problem's element exactly (it writes a path out only where it
needs one, so these pin the expressions of every kind of issue it reports on a field)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.validation.structure import StructureValidator

CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"resourceType": "Patient", "birthDate": "1990-13-01"}, "value", "Patient.birthDate"),
    ({"resourceType": "Patient", "name": [{"given": ["A", 5]}]}, "value", "Patient.name[0].given[1]"),
    ({"resourceType": "Patient", "name": [{"family": "A"}, None]}, "structure", "Patient.name[1]"),
    ({"resourceType": "Patient", "gender": None}, "structure", "Patient.gender"),
    ({"resourceType": "Patient", "gender": "robot"}, "code-invalid", "Patient.gender"),
    ({"resourceType": "Patient", "name": {"family": "A"}}, "structure", "Patient.name"),
    ({"resourceType": "Patient", "name": []}, "structure", "Patient.name"),
    ({"resourceType": "Patient", "gender": ["male"]}, "structure", "Patient.gender"),
    ({"resourceType": "Patient", "contact": [{"name": {"family": 1}}]}, "value", "Patient.contact[0].name.family"),
    ({"resourceType": "Patient", "managingOrganization": "Organization/1"}, "structure",
     "Patient.managingOrganization"),
    ({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": "1"}},
     "value", "Observation.valueQuantity.value"),
]


@pytest.mark.parametrize(("resource", "code", "expression"), CASES)
def test_issue_expressions(resource: dict[str, Any], code: str, expression: str) -> None:
    issues = StructureValidator().validate(resource)
    assert (code, expression) in [(i.code, i.expression) for i in issues], issues
