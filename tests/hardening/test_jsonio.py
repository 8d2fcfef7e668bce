"""The JSON reader refuses what later stages cannot carry, and says where (issue 12, docs/limits.md)."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_server import jsonio
from fhir_server.jsonio import BigInt, JsonInputError, dumps, loads, reload


def refused(raw: bytes) -> JsonInputError:
    with pytest.raises(JsonInputError) as info:
        loads(raw)
    return info.value


def test_a_member_with_an_empty_name_is_refused_at_its_object() -> None:
    err = refused(b'{"resourceType":"Patient","name":[{"":1}]}')
    assert "empty name" in str(err) and err.expression == "Patient.name[0]"


def test_a_duplicate_member_is_refused_naming_it() -> None:
    err = refused(b'{"resourceType":"Patient","gender":"male","gender":"female"}')
    assert "twice" in str(err) and err.expression == "Patient.gender"


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "x\\udc00y"])
def test_a_lone_surrogate_in_a_value_is_refused_with_its_path(escape: str) -> None:
    err = refused(b'{"resourceType":"Patient","name":[{"given":["a","' + escape.encode() + b'"]}]}')
    assert "surrogate" in str(err) and err.expression == "Patient.name[0].given[1]"


def test_a_lone_surrogate_in_a_member_name_is_refused() -> None:
    assert "surrogate" in str(refused(b'{"resourceType":"Patient","\\ud800":1}'))


def test_a_surrogate_pair_is_one_character_and_accepted() -> None:
    assert loads(b'{"a":"\\ud83d\\ude00"}') == {"a": "\U0001f600"}


def test_an_escaped_backslash_before_u_d800_is_plain_text() -> None:
    assert loads(b'{"a":"\\\\ud800"}') == {"a": "\\ud800"}


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1" + "0" * 400, "-" + "9" * 5000])
def test_numbers_beyond_a_double_are_refused_with_their_path(literal: str) -> None:
    err = refused(b'{"resourceType":"Observation","valueQuantity":{"value":' + literal.encode() + b"}}")
    assert "beyond the range" in str(err) and err.expression == "Observation.valueQuantity.value"


@pytest.mark.parametrize("literal", ["18446744073709551616", "-9223372036854775809", "9" * 300])
def test_integers_beyond_64_bits_are_kept_exactly(literal: str) -> None:
    doc = loads(b'{"value":' + literal.encode() + b"}")
    assert isinstance(doc["value"], BigInt) and doc["value"] == int(literal)
    assert dumps(doc) == b'{"value":' + literal.encode() + b"}"
    assert reload(dumps(doc)) == doc and dumps(reload(dumps(doc))) == dumps(doc)
    assert orjson.loads(dumps(doc))["value"] == float(literal)  # every stored byte stays readable by orjson


def test_64_bit_integers_stay_plain_ints() -> None:
    doc = loads(b"[18446744073709551615, -9223372036854775808, 5]")
    assert [type(v) for v in doc] == [int, int, int]


def test_nesting_past_the_limit_is_refused_at_the_deepest_allowed_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonio, "MAX_DEPTH", 4)
    assert loads(b'{"a":[{"b":[]}]}') == {"a": [{"b": []}]}
    err = refused(b'{"resourceType":"X","a":[{"b":[{}]}]}')
    assert "nested deeper than 4" in str(err) and err.expression == "X.a[0].b[0]"


def test_nesting_beyond_the_interpreter_stack_is_refused_without_recursion_error() -> None:
    err = refused(b"[" * 100_000 + b"]" * 100_000)
    assert "nested deeper" in str(err)


def test_decimals_keep_their_literal() -> None:
    assert dumps(loads(b'{"v":1.50,"w":-0.0,"x":1e-400}')) == b'{"v":1.50,"w":-0.0,"x":1e-400}'


def test_text_input_with_a_literal_surrogate_is_refused() -> None:
    with pytest.raises(JsonInputError):
        loads('{"a":"\ud800"}')


def test_not_json_is_a_plain_value_error() -> None:
    for raw in (b"{", b"NaN", b'{"a":Infinity}', b"\xff"):
        with pytest.raises(ValueError):
            loads(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(min_size=1), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_value_with_named_members_reads_back_equal(value: object) -> None:
    raw = json.dumps(value).encode()
    assert json.loads(dumps(loads(raw))) == value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_read_or_refused_with_a_value_error(raw: bytes) -> None:
    try:
        doc = loads(raw)
    except ValueError:
        return
    dumps(doc)  # whatever is accepted can be written back


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str) | st.sampled_from(["1.50", "-0.0", "1e-3",
                                                                                                 "6.02E23", "0.10"]))
def test_a_decimal_keeps_its_literal_through_pickle(text: str) -> None:
    """The $import workers hand parsed resources back pickled: a decimal must come back as written."""
    import pickle

    value = loads(f'{{"v": {text}}}')["v"]
    back = pickle.loads(pickle.dumps(value, protocol=5))
    assert type(back) is type(value) and back == value
    assert dumps({"v": back}) == dumps({"v": value})
