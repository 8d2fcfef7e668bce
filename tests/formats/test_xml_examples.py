"""Every official R4 example converts JSON → XML → JSON unchanged, pretty-printed or not (issue 14 item 3)."""

from __future__ import annotations

import pytest
from lxml import etree

from fhir_server.formats import FHIR_NS, resource_from_xml, resource_to_xml
from fhir_server.jsonio import loads
from tests.data import r4_examples
from tests.formats.exact import exact


@pytest.mark.parametrize("pretty", [False, True], ids=["compact", "pretty"])
def test_every_official_example_round_trips_json_xml_json_unchanged(pretty: bool):
    changed = []
    for name, raw in r4_examples().items():
        original = loads(raw)
        back = resource_from_xml(resource_to_xml(original, pretty=pretty))
        if exact(back) != exact(original):
            changed.append(name)
    assert len(r4_examples()) == 361
    assert changed == []


def test_every_example_xml_is_a_fhir_document_that_converts_back_to_the_same_xml():
    for name, raw in r4_examples().items():
        resource = loads(raw)
        xml = resource_to_xml(resource)
        assert etree.fromstring(xml).tag == f"{{{FHIR_NS}}}{resource['resourceType']}", name
        assert resource_to_xml(resource_from_xml(xml)) == xml, name
