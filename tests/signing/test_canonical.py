"""FHIR canonical JSON (R4 §2.6.2.6) with RFC 8785 serialisation: the bytes JSON signatures cover."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signing.canonical import (
    CANONICAL_JSON,
    CANONICAL_XML,
    DATA,
    DOCUMENT,
    NARRATIVE,
    STATIC,
    CanonicalizationError,
    canonicalize,
    format_number,
    method_from_target_format,
    prune,
    serialize,
    target_format,
)

pytestmark = pytest.mark.req("AC-25")

# JSON values as FHIR carries them: strings, integers, finite floats, booleans, nested objects and arrays.
_scalars = st.one_of(
    st.text(max_size=12),
    st.integers(-(2**31), 2**31),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(min_size=1, max_size=8), json_values, min_size=1, max_size=5)


def test_serialize_matches_rfc8785_reference_example() -> None:
    text = (
        '{"numbers": [1E30, 4.50, 6, 2e-3, 0.000000000000000000000000001], '
        '"escaping": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", '
        '"other": [null, true, false]}'
    )
    expected = (
        '{"escaping":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/","numbers":[1e+30,4.5,6,0.002,1e-27],'
        '"other":[null,true,false]}'
    )
    assert serialize(json.loads(text)).decode() == expected


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (-5.0, "-5"),
        (0.0, "0"),
        (-0.0, "0"),
        (1e-7, "1e-7"),
        (1e-6, "0.000001"),
        (123.456, "123.456"),
        (5e-324, "5e-324"),
        (0.1 + 0.2, "0.30000000000000004"),
    ],
)
def test_numbers_print_as_ecmascript_does(number: float, text: str) -> None:
    assert format_number(number) == text


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is a surrogate pair (D83D ...) and sorts before U+FFFD in UTF-16 (RFC 8785 §3.2.3).
    assert serialize({"\ufffd": 1, "\U0001f600": 2}).decode() == '{"\U0001f600":2,"\ufffd":1}'


def test_nan_and_infinity_are_refused() -> None:
    with pytest.raises(CanonicalizationError):
        serialize({"x": float("nan")})


def test_document_method_drops_bundle_id_meta_and_signature_only() -> None:
    bundle = {
        "resourceType": "Bundle",
        "id": "b",
        "meta": {"versionId": "3"},
        "signature": {"data": "x"},
        "type": "document",
        "entry": [{"resource": {"resourceType": "Patient", "id": "p", "meta": {}}}],
    }
    pruned = prune(bundle, DOCUMENT)
    assert set(pruned) == {"resourceType", "type", "entry"}
    assert pruned["entry"][0]["resource"]["meta"] == {}  # nested resources are signed as they are
    assert "signature" not in prune(bundle, CANONICAL_JSON) and "id" in prune(bundle, CANONICAL_JSON)
    assert bundle["id"] == "b"  # input untouched


def test_data_static_and_narrative_methods_select_the_r4_parts() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "meta": {"versionId": "1"},
        "text": {"status": "generated", "div": "<div/>"},
        "active": True,
    }
    assert set(prune(patient, DATA)) == {"resourceType", "id", "meta", "active"}
    assert set(prune(patient, STATIC)) == {"resourceType", "id", "active"}
    assert set(prune(patient, NARRATIVE)) == {"resourceType", "id", "text"}
    assert prune(patient, CANONICAL_XML + "#static") == prune(patient, STATIC)


def test_unknown_method_is_refused() -> None:
    with pytest.raises(CanonicalizationError):
        prune({"resourceType": "Patient"}, "http://example.org/c14n")


def test_target_format_round_trips_the_method() -> None:
    fmt = target_format(DOCUMENT)
    assert fmt == "application/fhir+json;canonicalization=http://hl7.org/fhir/canonicalization/json#document"
    assert method_from_target_format(fmt, "Bundle") == DOCUMENT
    assert method_from_target_format(None, "Bundle") == DOCUMENT
    assert method_from_target_format("application/fhir+json", "Patient") == CANONICAL_JSON
    assert method_from_target_format(None, "Bundle", xml=True) == CANONICAL_XML + "#document"


def _shuffle_keys(value: Any, rng: Any) -> Any:
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _shuffle_keys(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [_shuffle_keys(v, rng) for v in value]
    return value


@settings(max_examples=150, deadline=None)
@given(obj=json_objects, rng=st.randoms(use_true_random=False))
def test_canonical_form_ignores_key_order(obj: dict[str, Any], rng: Any) -> None:
    assert serialize(_shuffle_keys(obj, rng)) == serialize(obj)


@settings(max_examples=150, deadline=None)
@given(
    obj=json_objects,
    indent=st.sampled_from([None, 0, 1, 2, 4, "\t"]),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")]),
)
def test_canonical_form_ignores_insignificant_whitespace(
    obj: dict[str, Any], indent: Any, separators: tuple[str, str]
) -> None:
    text = json.dumps(obj, indent=indent, separators=separators, ensure_ascii=bool(indent))
    assert serialize(json.loads(text)) == serialize(obj)


@settings(max_examples=150, deadline=None)
@given(obj=json_objects, key_index=st.integers(min_value=0), new_value=json_values)
def test_canonical_form_changes_when_any_value_changes(
    obj: dict[str, Any], key_index: int, new_value: Any
) -> None:
    key = list(obj)[key_index % len(obj)]
    changed = {**obj, key: new_value}
    # Values equal as JSON (1 and 1.0, True never equals 1 in JSON) produce equal bytes; all others differ.
    same = json.dumps(obj[key], sort_keys=True) == json.dumps(new_value, sort_keys=True) or (
        _json_equal(obj[key], new_value)
    )
    assert (serialize(changed) == serialize(obj)) == same


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_string_values_keep_their_whitespace() -> None:
    assert canonicalize({"resourceType": "Basic", "a": " two  spaces "}) != canonicalize(
        {"resourceType": "Basic", "a": "two spaces"}
    )
