"""Bad FHIR XML (and JSON that XML cannot carry) is a FhirError naming the element, never a crash."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.errors import FhirError
from fhir_server.formats import resource_from_xml, resource_to_xml

NS = 'xmlns="http://hl7.org/fhir"'


def _read_error(xml: str) -> FhirError:
    with pytest.raises(FhirError) as info:
        resource_from_xml(xml.encode())
    assert info.value.status == 400
    return info.value


@pytest.mark.parametrize(("xml", "expression"), [
    (f'<Patient {NS}><colour value="blue"/></Patient>', "Patient.colour"),
    (f'<Patient {NS} colour="blue"/>', "Patient.colour"),
    (f'<Patient {NS}><name><family value="A"/><nick value="B"/></name></Patient>', "Patient.name[0].nick"),
    (f'<Patient {NS}><gender value="male"/><gender value="female"/></Patient>', "Patient.gender"),
    (f'<Patient {NS}><active value="yes"/></Patient>', "Patient.active"),
    (f'<Patient {NS}><multipleBirthInteger value="1.5"/></Patient>', "Patient.multipleBirthInteger"),
    (f'<Observation {NS}><valueQuantity><value value="1,5"/></valueQuantity></Observation>',
     "Observation.valueQuantity.value"),
    (f'<Patient {NS}><name>Smith</name></Patient>', "Patient.name[0]"),
    (f'<Patient {NS}><gender/></Patient>', "Patient.gender"),
    (f'<Patient {NS}><gender xmlns="urn:other" value="male"/></Patient>', "Patient.gender"),
    (f'<Patient {NS}><text><status value="generated"/><div><p/></div></text></Patient>', "Patient.text.div"),
    (f'<Patient {NS}><contained><Practitioner/><Practitioner/></contained></Patient>', "Patient.contained[0]"),
    (f'<Patient {NS}><contained><Spaceship/></contained></Patient>', "Patient.contained[0]"),
    (f'<Patient {NS}><contained value="x"/></Patient>', "Patient.contained[0]"),
])
def test_unknown_repeated_or_mistyped_content_names_the_element(xml: str, expression: str):
    error = _read_error(xml)
    assert error.issues[0].expression == expression, error.message


@pytest.mark.parametrize("xml", ["<Patient/>", f"<HumanName {NS}/>", f"<Spaceship {NS}/>", "not xml", "<Patient",
                                 f"<Patient {NS}></Patient><Patient {NS}/>", ""])
def test_a_document_that_is_not_one_fhir_resource_is_refused(xml: str):
    _read_error(xml)


@pytest.mark.parametrize(("resource", "expression"), [
    ({"resourceType": "Patient", "colour": "blue"}, "Patient.colour"),
    ({"resourceType": "Patient", "_name": [{}]}, "Patient._name"),
    ({"resourceType": "Patient", "name": [None]}, "Patient.name[0]"),
    ({"resourceType": "Patient", "name": {"family": "A"}}, "Patient.name"),
    ({"resourceType": "Patient", "gender": ["male"]}, "Patient.gender"),
    ({"resourceType": "Patient", "active": "true"}, "Patient.active"),
    ({"resourceType": "Patient", "multipleBirthInteger": "2"}, "Patient.multipleBirthInteger"),
    ({"resourceType": "Patient", "name": [{"given": ["a", "b"], "_given": [None]}]}, "Patient.name[0].given"),
    ({"resourceType": "Patient", "name": [{"given": [None]}]}, "Patient.name[0].given[0]"),
    ({"resourceType": "Patient", "_gender": {"value": "x"}}, "Patient.gender"),
    ({"resourceType": "Patient", "name": [{"text": "bell \x07"}]}, "Patient.name[0].text"),
    ({"resourceType": "Patient", "text": {"status": "generated", "div": "<div>no namespace</div>"}},
     "Patient.text.div"),
    ({"resourceType": "Patient", "text": {"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'>"}},
     "Patient.text.div"),
    ({"resourceType": "Patient", "contained": [{"id": "x"}]}, "Patient.contained[0]"),
])
def test_json_that_fhir_xml_cannot_carry_names_the_element(resource: dict[str, Any], expression: str):
    with pytest.raises(FhirError) as info:
        resource_to_xml(resource)
    assert info.value.issues[0].expression == expression, info.value.message


def test_a_resource_without_a_known_type_cannot_be_written():
    with pytest.raises(FhirError):
        resource_to_xml({"resourceType": "Spaceship"})
