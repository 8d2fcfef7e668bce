"""How each JSON construct looks in FHIR XML and comes back (FHIR R4 xml.html, json.html)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from fhir_server.formats import resource_from_xml, resource_to_xml
from fhir_server.jsonio import Decimal, loads
from tests.formats.exact import exact

NS = 'xmlns="http://hl7.org/fhir"'
XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'


def _xml(resource: dict[str, Any]) -> str:
    return resource_to_xml(resource).decode()


def _back(xml: str) -> dict[str, Any]:
    return resource_from_xml(xml.encode())


def test_primitive_value_id_and_extension_come_from_the_underscore_sibling():
    patient = {"resourceType": "Patient", "birthDate": "1970-03-30",
               "_birthDate": {"id": "b1", "extension": [
                   {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                    "valueDateTime": "1970-03-30T08:30:00+06:00"}]}}
    xml = _xml(patient)
    assert ('<birthDate value="1970-03-30" id="b1"><extension url="http://hl7.org/fhir/StructureDefinition/'
            'patient-birthTime"><valueDateTime value="1970-03-30T08:30:00+06:00"/></extension></birthDate>') in xml
    assert _back(xml) == patient


def test_arrays_of_primitives_align_with_nulls_both_ways():
    ext = {"extension": [{"url": "http://example.org/x", "valueString": "e"}]}
    patient = {"resourceType": "Patient", "name": [{"given": ["Ерлан", None, "Серик"], "_given": [None, ext, None]}]}
    xml = _xml(patient)
    assert ('<given value="Ерлан"/><given><extension url="http://example.org/x"><valueString value="e"/>'
            '</extension></given><given value="Серик"/>') in xml
    assert _back(xml) == patient


def test_an_array_with_extensions_only_has_no_value_array():
    patient = {"resourceType": "Patient", "name": [{"_given": [{"id": "g"}]}]}
    assert _back(_xml(patient)) == patient


def test_decimals_keep_their_exact_literal_both_ways():
    obs = loads(b'{"resourceType": "Observation", "status": "final", "code": {"text": "t"},'
                b' "valueQuantity": {"value": 1.50}, "referenceRange": [{"low": {"value": 0.000}},'
                b' {"low": {"value": 1e3}}, {"low": {"value": 100}}]}')
    xml = _xml(obs)
    assert '<value value="1.50"/>' in xml
    assert '<value value="0.000"/>' in xml and '<value value="1e3"/>' in xml and '<value value="100"/>' in xml
    back = _back(xml)
    assert exact(back) == exact(obs)
    assert isinstance(back["valueQuantity"]["value"], Decimal) and back["valueQuantity"]["value"].text == "1.50"
    assert type(back["referenceRange"][2]["low"]["value"]) is int


def test_booleans_and_integers_become_json_booleans_and_numbers():
    xml = (f'<Patient {NS}><active value="true"/><multipleBirthInteger value="2"/></Patient>')
    back = _back(xml)
    assert back["active"] is True and type(back["multipleBirthInteger"]) is int


def test_element_id_and_extension_url_are_attributes_but_the_resource_id_is_an_element():
    patient = {"resourceType": "Patient", "id": "p1",
               "name": [{"id": "n1", "family": "A"}],
               "extension": [{"url": "http://example.org/e", "valueBoolean": False}]}
    xml = _xml(patient)
    assert '<id value="p1"/>' in xml and '<name id="n1">' in xml and '<extension url="http://example.org/e">' in xml
    assert _back(xml) == patient


def test_choice_elements_keep_their_type_suffix():
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "t"},
           "effectivePeriod": {"start": "2024-01-01"}, "valueCodeableConcept": {"text": "v"}}
    xml = _xml(obs)
    assert "<effectivePeriod><start value=\"2024-01-01\"/></effectivePeriod>" in xml
    assert _back(xml) == obs


def test_contained_entry_and_parameter_resources_are_wrapped_in_their_element():
    practitioner = {"resourceType": "Practitioner", "id": "pr"}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "contained": [practitioner],
                                               "generalPractitioner": [{"reference": "#pr"}]}},
        {"resource": {"resourceType": "Parameters", "parameter": [{"name": "r", "resource": practitioner}]}}]}
    xml = _xml(bundle)
    assert "<resource><Patient><contained><Practitioner><id value=\"pr\"/></Practitioner></contained>" in xml
    assert "<parameter><name value=\"r\"/><resource><Practitioner>" in xml
    assert _back(xml) == bundle


def test_narrative_is_xhtml_in_xml_and_the_same_string_in_json():
    div = f'<div {XHTML}><p>a &quot;b&quot; &amp; c</p><td></td><br/>\r\n<img src="x.png" alt="a &gt; b"/></div>'
    patient = {"resourceType": "Patient", "text": {"status": "generated", "div": div}}
    xml = _xml(patient)
    assert f"<text><status value=\"generated\"/>{div}</text>" in xml
    tree = etree.fromstring(xml.encode())
    assert tree.find(".//{http://www.w3.org/1999/xhtml}p").text == 'a "b" & c'
    assert _back(xml) == patient


def test_narrative_from_foreign_xml_is_its_own_source_text():
    xml = (f'<Patient {NS}><text><status value="additional"/>\n  <div {XHTML}>\n    <p>Hello <b>there</b></p>\n'
           '    <!-- a note -->\n  </div>\n</text></Patient>')
    assert _back(xml)["text"]["div"] == f'<div {XHTML}>\n    <p>Hello <b>there</b></p>\n    <!-- a note -->\n  </div>'


def test_narrative_with_an_inherited_prefix_is_serialised_standing_alone():
    xml = ('<f:Patient xmlns:f="http://hl7.org/fhir" xmlns:h="http://www.w3.org/1999/xhtml"><f:text>'
           '<f:status value="generated"/><h:div><h:p>x</h:p></h:div></f:text></f:Patient>')
    div = _back(xml)["text"]["div"]
    root = etree.fromstring(div.encode())
    assert root.tag == "{http://www.w3.org/1999/xhtml}div" and root[0].text == "x"


def test_comments_processing_instructions_and_schema_hints_carry_no_data():
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- header -->\n<Patient {NS} '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir x.xsd">'
           '<?app hint?><!-- c --><gender value="female"/></Patient>')
    assert _back(xml) == {"resourceType": "Patient", "gender": "female"}


def test_a_utf8_bom_is_tolerated():
    assert _back("\ufeff" + f'<Patient {NS}><gender value="male"/></Patient>')["gender"] == "male"


def test_attribute_whitespace_survives_as_character_references():
    patient = {"resourceType": "Patient", "name": [{"text": "line1\nline2\ttab\r\n \"q\" <&>"}]}
    xml = _xml(patient)
    assert 'value="line1&#10;line2&#9;tab&#13;&#10; &quot;q&quot; &lt;&amp;&gt;"' in xml
    assert _back(xml) == patient


def test_pretty_printing_indents_fhir_elements_but_not_the_narrative():
    div = f"<div {XHTML}><p>a</p><p>b</p></div>"
    xml = resource_to_xml({"resourceType": "Patient", "text": {"status": "generated", "div": div},
                           "gender": "male"}, pretty=True).decode()
    assert xml.splitlines()[1:] == [f"<Patient {NS}>", "  <text>", '    <status value="generated"/>', f"    {div}",
                                    "  </text>", '  <gender value="male"/>', "</Patient>"]
