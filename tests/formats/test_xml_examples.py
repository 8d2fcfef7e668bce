"""Every official R4 example converts JSON → XML → JSON unchanged, pretty-printed or not (issue 14 item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from fhir_server.formats import FHIR_NS, resource_from_xml, resource_to_xml
from fhir_server.jsonio import loads
from tests.formats.exact import exact


@pytest.mark.parametrize("pretty", [False, True], ids=["compact", "pretty"])
def test_every_official_example_round_trips_json_xml_json_unchanged(example_files: list[Path], pretty: bool):
    changed = []
    for path in example_files:
        original = loads(path.read_bytes())
        back = resource_from_xml(resource_to_xml(original, pretty=pretty))
        if exact(back) != exact(original):
            changed.append(path.name)
    assert len(example_files) > 300
    assert changed == []


def test_every_example_xml_is_a_fhir_document_that_converts_back_to_the_same_xml(example_files: list[Path]):
    for path in example_files:
        xml = resource_to_xml(loads(path.read_bytes()))
        root = etree.fromstring(xml)
        assert root.tag == f"{{{FHIR_NS}}}{loads(path.read_bytes())['resourceType']}", path.name
        assert resource_to_xml(resource_from_xml(xml)) == xml, path.name
