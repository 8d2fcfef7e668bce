"""Hypothesis: JSON ↔ XML round-trips for random resources built from the R4 definitions."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from lxml import etree

from fhir_server.formats import FHIR_NS, resource_from_xml, resource_to_xml
from fhir_server.formats.xml_schema import get_schema
from tests.formats import strategies
from tests.formats.exact import exact

_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_FHIR = f"{{{FHIR_NS}}}"


@_SETTINGS
@given(strategies.resource())
def test_random_resources_round_trip_json_xml_json_exactly(resource: dict[str, Any]):
    xml = resource_to_xml(resource)
    assert exact(resource_from_xml(xml)) == exact(resource)
    assert exact(resource_from_xml(resource_to_xml(resource, pretty=True))) == exact(resource)
    assert resource_to_xml(resource_from_xml(xml)) == xml


def _in_definition_order(element: etree._Element, node_key: str) -> None:
    node = get_schema().nodes[node_key]
    orders = []
    for child in element:
        if not isinstance(child.tag, str) or not child.tag.startswith(_FHIR):
            continue
        name = child.tag[len(_FHIR):]
        f = node.fields[name]
        orders.append(f.order)
        if f.kind.value == "complex":
            _in_definition_order(child, str(f.node))
        elif f.kind.value == "resource":
            inner = next(c for c in child if isinstance(c.tag, str))
            _in_definition_order(inner, inner.tag[len(_FHIR):])
    assert orders == sorted(orders), node_key


@_SETTINGS
@given(strategies.resource())
def test_elements_come_out_in_definition_order_whatever_the_json_key_order(resource: dict[str, Any]):
    shuffled = dict(reversed(list(resource.items())))
    xml = resource_to_xml(shuffled)
    assert xml == resource_to_xml(resource)
    root = etree.fromstring(xml)
    _in_definition_order(root, resource["resourceType"])
