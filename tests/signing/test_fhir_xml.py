"""FHIR JSON -> XML (R4 §2.5) for XMLDSig: element order from the definitions, primitives, narrative."""

from __future__ import annotations

import gzip
import json

import pytest
from lxml import etree

from fhir_server.definitions import load_core
from signing.fhir_xml import FHIR_NS, XHTML_NS, FhirXmlError, to_xml, to_xml_bytes
from signing.fhir_xml_order import TABLE_PATH, build_order_table

NS = {"f": FHIR_NS}


def _children(elem: etree._Element) -> list[str]:
    return [etree.QName(c).localname for c in elem]


def test_elements_follow_definition_order_not_json_order() -> None:
    patient = {
        "birthDate": "1985-03-15",
        "name": [{"given": ["Иван"], "family": "Иванов"}],
        "active": True,
        "id": "p1",
        "resourceType": "Patient",
        "meta": {"versionId": "2"},
    }
    root = to_xml(patient)
    assert etree.QName(root).localname == "Patient" and root.nsmap[None] == FHIR_NS
    assert _children(root) == ["id", "meta", "active", "name", "birthDate"]
    assert _children(root.find("f:name", NS)) == ["family", "given"]


def test_primitive_values_are_attributes_and_underscore_siblings_merge() -> None:
    patient = {
        "resourceType": "Patient",
        "birthDate": "1985-03-15",
        "_birthDate": {"id": "bd", "extension": [{"url": "http://example.org/x", "valueBoolean": True}]},
        "name": [
            {
                "given": ["A", None],
                "_given": [
                    None,
                    {"extension": [{"url": "http://example.org/y", "valueString": "only-extension"}]},
                ],
            }
        ],
    }
    root = to_xml(patient)
    birth = root.find("f:birthDate", NS)
    assert birth.get("value") == "1985-03-15" and birth.get("id") == "bd"
    ext = birth.find("f:extension", NS)
    assert ext.get("url") == "http://example.org/x" and ext.find("f:valueBoolean", NS).get("value") == "true"
    given = root.findall("f:name/f:given", NS)
    assert [g.get("value") for g in given] == ["A", None] and given[1].find("f:extension", NS) is not None


def test_element_id_is_an_attribute_but_resource_id_is_an_element() -> None:
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"id": "c", "text": "t"},
        "valueQuantity": {"value": 36.6, "unit": "Cel"},
    }
    root = to_xml(obs)
    assert root.find("f:id", NS).get("value") == "o1"
    assert root.find("f:code", NS).get("id") == "c"
    assert root.find("f:valueQuantity/f:value", NS).get("value") == "36.6"


def test_bundle_entries_wrap_resources_and_keep_entry_order() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "document",
        "entry": [
            {"resource": {"resourceType": "Composition", "id": "c"}, "fullUrl": "urn:uuid:c"},
            {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}},
        ],
    }
    root = to_xml(bundle)
    entries = root.findall("f:entry", NS)
    assert [_children(e) for e in entries] == [["fullUrl", "resource"], ["fullUrl", "resource"]]
    assert _children(entries[0].find("f:resource", NS)) == ["Composition"]


def test_narrative_div_is_embedded_xhtml() -> None:
    root = to_xml(
        {
            "resourceType": "Basic",
            "text": {
                "div": '<div xmlns="http://www.w3.org/1999/xhtml"><b>x</b></div>',
                "status": "generated",
            },
        }
    )
    text = root.find("f:text", NS)
    assert _children(text) == ["status", "div"] and text[1].tag == f"{{{XHTML_NS}}}div"


def test_invalid_narrative_and_missing_resource_type_are_errors() -> None:
    with pytest.raises(FhirXmlError):
        to_xml({"resourceType": "Basic", "text": {"status": "generated", "div": "<div>unclosed"}})
    with pytest.raises(FhirXmlError):
        to_xml({"id": "x"})


def test_unknown_properties_are_kept_after_known_ones() -> None:
    root = to_xml({"resourceType": "Patient", "zzz": "kept", "active": False})
    assert _children(root) == ["active", "zzz"]


def test_output_is_deterministic_and_whitespace_free() -> None:
    resource = {"resourceType": "Patient", "id": "p", "name": [{"family": "X"}]}
    assert to_xml_bytes(resource) == to_xml_bytes(dict(reversed(list(resource.items()))))
    assert b"\n" not in etree.tostring(to_xml(resource))


def test_shipped_order_table_matches_the_r4_definitions() -> None:
    """The table is generated from the R4 core definitions the package ships (fhir_server/definitions)."""
    bundles = [load_core(name) for name in ("profiles-types", "profiles-resources")]
    shipped = json.loads(gzip.decompress(TABLE_PATH.read_bytes()))
    assert shipped == build_order_table(bundles)
