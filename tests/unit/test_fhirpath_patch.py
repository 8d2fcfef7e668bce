"""FHIRPath Patch (FHIR R4 fhirpatch.html): the operations on the spec's own kind of examples, type
checks against the definitions, exact decimals, aligned primitive arrays, and every error naming
``Parameters.parameter[i]`` (400 for a malformed document, 422 for an operation that cannot apply)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.errors import FhirError
from fhir_server.interactions.fhirpath_patch import apply_fhirpath_patch
from fhir_server.jsonio import Decimal, dumps, loads
from tests.unit.fhirpath_patch_parts import operation, patch

PATIENT: dict[str, Any] = {
    "resourceType": "Patient", "id": "p1", "birthDate": "1970-03-30",
    "identifier": [{"system": "https://fhir.kzfhir.kz/sid/iin", "value": "700330300011"},
                   {"system": "urn:oid:1.2.398.7.1.9.1", "value": "A-1"}],
    "name": [{"family": "Ахметов", "given": ["Ерлан", "Серик"], "_given": [None, {"id": "g2"}]}],
    "contact": [{"name": {"text": "Айгерим"}}],
}


def _error(resource: dict[str, Any], document: dict[str, Any], status: int) -> FhirError:
    with pytest.raises(FhirError) as info:
        apply_fhirpath_patch(resource, document)
    assert info.value.status == status, info.value.message
    return info.value


def test_add_puts_a_value_on_an_absent_element_or_at_the_end_of_a_list():
    out = apply_fhirpath_patch(PATIENT, patch(
        operation("add", "Patient", name="gender", value={"valueCode": "male"}),
        operation("add", "Patient.name[0]", name="given", value={"valueString": "Нурлан"}),
        operation("add", "Patient", name="telecom", value={"valueContactPoint": {"system": "phone", "value": "+7"}})))
    assert out["gender"] == "male" and out["telecom"] == [{"system": "phone", "value": "+7"}]
    assert out["name"][0]["given"] == ["Ерлан", "Серик", "Нурлан"]
    assert out["name"][0]["_given"] == [None, {"id": "g2"}, None]


def test_add_builds_a_backbone_element_from_parts():
    contact = {"part": [{"name": "name", "valueHumanName": {"text": "Бауыржан"}},
                        {"name": "telecom", "valueContactPoint": {"system": "phone", "value": "1"}},
                        {"name": "telecom", "valueContactPoint": {"system": "email", "value": "b@kz"}}]}
    out = apply_fhirpath_patch(PATIENT, patch(operation("add", "Patient", name="contact", value=contact)))
    assert out["contact"][1] == {"name": {"text": "Бауыржан"}, "telecom": [
        {"system": "phone", "value": "1"}, {"system": "email", "value": "b@kz"}]}


def test_add_an_extension_to_a_primitive_goes_to_its_underscore_object():
    ext = {"part": [{"name": "url", "valueUri": "http://hl7.org/fhir/StructureDefinition/patient-birthTime"},
                    {"name": "value", "valueDateTime": "1970-03-30T06:00:00+06:00"}]}
    out = apply_fhirpath_patch(PATIENT, patch(operation("add", "Patient.birthDate", name="extension", value=ext)))
    assert out["birthDate"] == "1970-03-30"
    assert out["_birthDate"] == {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                                                "valueDateTime": "1970-03-30T06:00:00+06:00"}]}


def test_insert_delete_and_move_keep_the_underscore_array_aligned():
    out = apply_fhirpath_patch(PATIENT, patch(
        operation("insert", "Patient.name[0].given", index=0, value={"valueString": "А", "_valueString": {"id": "g0"}}),
        operation("move", "Patient.name[0].given", source=2, destination=0)))
    assert out["name"][0]["given"] == ["Серик", "А", "Ерлан"]
    assert out["name"][0]["_given"] == [{"id": "g2"}, {"id": "g0"}, None]
    out = apply_fhirpath_patch(out, patch(operation("delete", "Patient.name[0].given[1]")))
    assert out["name"][0]["given"] == ["Серик", "Ерлан"] and out["name"][0]["_given"] == [{"id": "g2"}, None]
    out = apply_fhirpath_patch(out, patch(operation("delete", "Patient.name[0].given[0]")))
    assert out["name"][0]["given"] == ["Ерлан"] and "_given" not in out["name"][0]


def test_replace_selects_with_where_and_a_choice_element_may_change_type():
    out = apply_fhirpath_patch(PATIENT, patch(operation(
        "replace", "Patient.identifier.where(system='urn:oid:1.2.398.7.1.9.1').value", value={"valueString": "A-2"})))
    assert out["identifier"][1]["value"] == "A-2"
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "bp"}, "valueQuantity": {"value": 1}}
    out = apply_fhirpath_patch(obs, patch(operation("replace", "Observation.value", value={"valueString": "n/a"})))
    assert "valueQuantity" not in out and out["valueString"] == "n/a"


def test_delete_of_nothing_changes_nothing_and_delete_prunes_emptied_objects():
    assert apply_fhirpath_patch(PATIENT, patch(operation("delete", "Patient.deceased"))) == PATIENT
    out = apply_fhirpath_patch(PATIENT, patch(operation("delete", "Patient.contact[0].name.text")))
    assert "contact" not in out


def test_decimals_keep_their_exact_literal():
    document = loads(b'{"resourceType": "Parameters", "parameter": [{"name": "operation", "part": ['
                     b'{"name": "type", "valueCode": "replace"},'
                     b' {"name": "path", "valueString": "Observation.value.value"},'
                     b' {"name": "value", "valueDecimal": 70.50}]}]}')
    obs = loads(b'{"resourceType":"Observation","status":"final","code":{"text":"w"},"valueQuantity":{"value":1.0}}')
    out = apply_fhirpath_patch(obs, document)
    assert isinstance(out["valueQuantity"]["value"], Decimal) and b'"value":70.50' in dumps(out)


def test_the_input_resource_is_never_changed():
    before = dumps(PATIENT)
    apply_fhirpath_patch(PATIENT, patch(operation("delete", "Patient.identifier[0]"),
                                        operation("add", "Patient.name[0]", name="given", value={"valueString": "x"})))
    assert dumps(PATIENT) == before


@pytest.mark.parametrize(("op", "message"), [
    (operation("add", "Patient", name="birthDate", value={"valueDate": "1980-01-01"}), "already has a value"),
    (operation("add", "Patient", name="colour", value={"valueString": "blue"}), "no element 'colour'"),
    (operation("add", "Patient", name="gender", value={"valueBoolean": True}), "boolean value does not fit"),
    (operation("replace", "Patient.birthDate", value={"valueString": "1980"}), "string value does not fit"),
    (operation("replace", "Patient.identifier", value={"valueIdentifier": {}}), "exactly one element, not 2"),
    (operation("replace", "Patient.deceased", value={"valueBoolean": True}), "exactly one element, not 0"),
    (operation("delete", "Patient.identifier"), "at most one element"),
    (operation("delete", "Patient"), "at most one element"),
    (operation("insert", "Patient.identifier", index=3, value={"valueIdentifier": {}}), "past the end"),
    (operation("insert", "Patient.birthDate", index=0, value={"valueDate": "1980-01-01"}), "does not repeat"),
    (operation("move", "Patient.identifier", source=0, destination=2), "must be below 2"),
    (operation("add", "Patient.contact[0]", name="name", value={"part": [{"name": "text", "valueString": "x"}]}),
     "already has a value"),
])
def test_operations_that_cannot_apply_are_422_naming_the_operation(op: dict[str, Any], message: str):
    error = _error(PATIENT, patch(operation("delete", "Patient.deceased"), op), 422)
    assert error.issues[0].expression == "Parameters.parameter[1]" and message in error.message


@pytest.mark.parametrize(("document", "expression"), [
    ({"resourceType": "Bundle"}, "Parameters"),
    ({"resourceType": "Parameters", "parameter": {"name": "operation"}}, "Parameters.parameter"),
    (patch({"name": "op", "part": []}), "Parameters.parameter[0]"),
    (patch(operation("upsert", "Patient")), "Parameters.parameter[0]"),
    (patch(operation("add", "Patient", value={"valueCode": "male"})), "Parameters.parameter[0]"),
    (patch(operation("delete", "Patient.birthDate", index=1)), "Parameters.parameter[0]"),
    (patch(operation("move", "Patient.identifier", source=-1, destination=0)), "Parameters.parameter[0].part[2]"),
    (patch(operation("replace", "Patient.gender", value={"valueCode": "a", "valueString": "b"})),
     "Parameters.parameter[0].part[2]"),
    (patch(operation("delete", "Patient.name[0")), "Parameters.parameter[0]"),
    (patch(operation("delete", "Patient.managingOrganization.resolve().name")), "Parameters.parameter[0]"),
    (patch({"name": "operation", "part": [{"name": "type", "valueCode": "delete"},
                                           {"name": "type", "valueCode": "delete"}]}),
     "Parameters.parameter[0].part[1]"),
])
def test_malformed_patch_documents_are_400_naming_the_part(document: dict[str, Any], expression: str):
    assert _error(PATIENT, document, 400).issues[0].expression == expression


def test_narrative_div_is_found_although_div_is_a_fhirpath_operator():
    resource = {"resourceType": "Basic", "code": {"text": "x"},
                "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">a</div>'}}
    new = '<div xmlns="http://www.w3.org/1999/xhtml">b</div>'
    out = apply_fhirpath_patch(resource, patch(operation("replace", "Basic.text.div", value={"valueString": new})))
    assert out["text"]["div"] == new


def test_an_element_holding_only_extensions_can_be_replaced():
    absent = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                             "valueCode": "unknown"}]}
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "t"}, "valueQuantity": absent}
    replace = operation("replace", "Observation.value", value={"valueQuantity": {"value": 5}})
    out = apply_fhirpath_patch(obs, patch(replace))
    assert out["valueQuantity"] == {"value": 5}


def test_a_contained_resource_without_a_type_cannot_be_patched_into():
    resource = {"resourceType": "Patient", "contained": [{"id": "x"}]}
    op = operation("add", "Patient.contained[0]", name="active", value={"valueBoolean": True})
    assert _error(resource, patch(op), 422).issues[0].expression == "Parameters.parameter[0]"
