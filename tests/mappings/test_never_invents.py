"""Property: the mappings never invent data — every output value traces back to an input path.

For random valid service sets (random names, IINs, BINs, codes, texts, optional resources):

* every record value whose source has no derivation rule equals the input value at that source;
* every derived value's source exists in the input;
* every leaf of the NEHP JSON message is an input value, a terminology display of an input code,
  an input key, or one of the message's own constants and derived ids;
* every claim-line value has a source, and copied values equal the input.
"""

from __future__ import annotations

import html
import re
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings

from mappings import RemoteServiceRecord, build_record
from mappings.nehp import SCHEMA_ID, document_id, get_adapter
from mappings.payment import COLUMNS, claim_line_from_record
from mappings.trace import record_value, resolve_source
from tests.mappings.strategies import service_sets

Resources = dict[str, dict[str, Any]]


def _same(out: Any, source: Any) -> bool:
    if isinstance(out, Decimal) or (isinstance(out, int | float) and not isinstance(out, bool)):
        return Decimal(str(out)) == Decimal(str(source))
    return bool(out == source)


def _leaves(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _leaves(value)]
    if isinstance(node, list):
        return [leaf for value in node for leaf in _leaves(value)]
    return [node]


def _allowed(resources: Resources, record: RemoteServiceRecord) -> set[Any]:
    allowed = set(_leaves(resources)) | set(resources)
    allowed |= {resolve_source(resources, s) for s in record.trace.values() if s.reference == "terminology"}
    allowed |= {SCHEMA_ID, "1.0.0", record.version, record.record_id, document_id(record)}
    if record.note is not None and record.note.text is not None:
        allowed.add(record.note.text)  # narrative XHTML reduced to text (rule checked in the record test)
    allowed |= {record.conclusion, record.plan.text if record.plan else None}
    return allowed


@pytest.mark.req("MD-D")
@settings(max_examples=100, deadline=None)
@given(resources=service_sets())
def test_every_record_value_traces_to_its_input(resources: Resources) -> None:
    record = build_record(resources)
    assert record.ok, record.issues
    for key, source in record.trace.items():
        found = resolve_source(resources, source)  # raises if the source does not exist
        if source.rule is None:
            assert _same(record_value(record, key), found), (key, str(source))
        elif "narrative" in source.rule:
            words = html.unescape(re.sub(r"<[^>]+>", " ", str(found))).split()
            assert str(record_value(record, key)).split() == words


@pytest.mark.req("TM-11")
@settings(max_examples=100, deadline=None)
@given(resources=service_sets())
def test_nehp_json_message_holds_only_input_values(resources: Resources) -> None:
    record = build_record(resources)
    assert _invented(resources, record, orjson.loads(get_adapter("json").to_message(record))) == []


def _invented(resources: Resources, record: RemoteServiceRecord, message: dict[str, Any]) -> list[Any]:
    allowed = _allowed(resources, record)
    return [leaf for leaf in _leaves(message) if leaf not in allowed]


def test_the_check_catches_a_value_that_is_not_in_the_input(service_set: Resources) -> None:
    record = build_record(service_set)
    message = orjson.loads(get_adapter("json").to_message(record))
    assert _invented(service_set, record, message) == []
    message["patient"]["given"] = "Иван"
    message["diagnoses"][0]["rank"] = 7
    assert sorted(map(str, _invented(service_set, record, message))) == ["7", "Иван"]


@pytest.mark.req("TM-19")
@settings(max_examples=100, deadline=None)
@given(resources=service_sets())
def test_every_claim_line_value_has_a_source_in_the_input(resources: Resources) -> None:
    result = claim_line_from_record(build_record(resources))
    assert result.line is not None, result.issues
    for name in COLUMNS:
        value = getattr(result.line, name)
        values = value if isinstance(value, tuple) else (value,)
        for n, item in enumerate(values):
            if item is None:
                continue
            source = result.sources[f"{name}[{n}]" if isinstance(value, tuple) else name]
            found = resolve_source(resources, source)
            if source.rule is None:
                assert _same(item, found), (name, str(source))
