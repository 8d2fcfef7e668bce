"""Parsing search requests: unknown parameters (lenient vs strict), unparseable values and modifiers
give 400 naming the parameter (FHIR R4 search §3.1.1.1, issue 3 item 7)."""

from __future__ import annotations

import pytest

from fhir_server.search import SearchError, parse_search
from fhir_server.search.parse_values import split_escaped, unescape
from fhir_server.search.query import DateValue, ParamClause, QuantityValue, TokenValue


def test_unknown_parameter_is_ignored_with_a_warning_when_lenient() -> None:
    query = parse_search("Patient", [("shoe-size", "42"), ("gender", "male")], strict=False)
    assert len(query.clauses) == 1
    assert [w.expression for w in query.warnings] == ["shoe-size"]
    assert ("shoe-size", "42") not in query.used_params and ("gender", "male") in query.used_params


def test_unknown_parameter_is_rejected_when_strict() -> None:
    with pytest.raises(SearchError) as err:
        parse_search("Patient", [("shoe-size", "42")], strict=True)
    assert err.value.status == 400 and err.value.param == "shoe-size"
    assert err.value.outcome()["issue"][0]["expression"] == ["shoe-size"]


@pytest.mark.parametrize(
    ("resource_type", "name", "value"),
    [
        ("Patient", "birthdate", "1985-13-01"),
        ("Patient", "birthdate", "yesterday"),
        ("Patient", "birthdate", "ge2021-02-29"),
        ("Observation", "value-quantity", "abc|http://unitsofmeasure.org|kg"),
        ("Observation", "value-quantity", "5|http://unitsofmeasure.org"),
        ("RiskAssessment", "probability", "1.2.3"),
        ("Patient", "gender:missing", "maybe"),
        ("Patient", "identifier:of-type", "http://sys|NI"),
        ("Observation", "component-code-value-quantity", "8480-6"),
        ("Patient", "_count", "-1"),
        ("Patient", "_count", "ten"),
        ("Patient", "_total", "lots"),
        ("Patient", "_summary", "brief"),
        ("Patient", "_cursor", "not-a-cursor"),
        ("Patient", "_include", "Patient"),
        ("Patient", "_type", "Patient,Unicorn"),
    ],
)
def test_unparseable_values_give_400_naming_the_parameter(resource_type: str, name: str, value: str) -> None:
    with pytest.raises(SearchError) as err:
        parse_search(resource_type, [(name, value)], strict=False)
    assert err.value.status == 400
    assert err.value.param.split(":")[0] == name.split(":")[0]


@pytest.mark.parametrize("name", ["gender:exact", "birthdate:text", "name:below", "subject:contains", "_id:exact"])
def test_unsupported_modifier_is_rejected_even_when_lenient(name: str) -> None:
    resource_type = "Observation" if name.startswith("subject") else "Patient"
    with pytest.raises(SearchError):
        parse_search(resource_type, [(name, "x")], strict=False)


def test_summary_and_elements_values_are_kept() -> None:
    query = parse_search("Patient", [("_summary", "text"), ("_elements", "name,gender"), ("_count", "5")], strict=True)
    assert query.summary == "text" and query.elements == ("name", "gender") and query.count == 5


def test_count_is_capped() -> None:
    assert parse_search("Patient", [("_count", "100000")], strict=True).count == 1000


def test_prefixes_are_parsed_for_ordered_types() -> None:
    query = parse_search("Observation", [("date", "sa2020"), ("value-quantity", "ap5.4|http://u|mg")], strict=True)
    date, quantity = (c for c in query.clauses if isinstance(c, ParamClause))
    assert isinstance(date.values[0], DateValue) and date.values[0].prefix == "sa"
    assert isinstance(quantity.values[0], QuantityValue) and quantity.values[0].number.prefix == "ap"
    assert quantity.values[0].system == "http://u" and quantity.values[0].code == "mg"


def test_escaped_separators_stay_in_values() -> None:
    assert split_escaped(r"a\,b,c", ",") == [r"a\,b", "c"]
    assert unescape(r"a\,b\|c\$d\\e") == "a,b|c$d\\e"
    query = parse_search("Patient", [("identifier", r"http://x|a\|b,c")], strict=True)
    clause = query.clauses[0]
    assert isinstance(clause, ParamClause)
    assert clause.values == (TokenValue("http://x", "a|b", any_system=False), TokenValue(None, "c"))


def test_empty_values_are_ignored() -> None:
    assert parse_search("Patient", [("gender", "")], strict=True).clauses == ()


def test_chain_on_a_non_reference_is_an_error() -> None:
    with pytest.raises(SearchError):
        parse_search("Patient", [("gender.name", "x")], strict=True)


def test_unknown_chain_target_parameter_follows_handling() -> None:
    lenient = parse_search("Observation", [("subject:Patient.shoe-size", "42")], strict=False)
    assert lenient.clauses == () and lenient.warnings
    with pytest.raises(SearchError):
        parse_search("Observation", [("subject:Patient.shoe-size", "42")], strict=True)


def test_unsupported_near_parameter_is_reported() -> None:
    query = parse_search("Location", [("near", "42.3|-71.0|10|km")], strict=False)
    assert query.clauses == () and "near" in query.warnings[0].diagnostics


def test_system_search_only_accepts_common_parameters() -> None:
    assert parse_search(None, [("_id", "a")], strict=True).clauses
    with pytest.raises(SearchError):
        parse_search(None, [("gender", "male")], strict=True)


def test_unknown_resource_type_is_not_found() -> None:
    with pytest.raises(SearchError) as err:
        parse_search("Unicorn", [], strict=True)
    assert err.value.status == 404


def test_compartment_rejects_types_outside_it() -> None:
    with pytest.raises(SearchError):
        parse_search("Organization", [], strict=True, compartment=("Patient", "p1"))
    assert "Observation" in parse_search(None, [], strict=True, compartment=("Patient", "p1")).resource_types


def test_sort_on_unknown_parameter_follows_handling() -> None:
    assert parse_search("Patient", [("_sort", "shoe-size,birthdate")], strict=False).sort[0].code == "birthdate"
    with pytest.raises(SearchError):
        parse_search("Patient", [("_sort", "shoe-size")], strict=True)


def test_cursor_from_another_sort_is_rejected() -> None:
    from fhir_server.search import Cursor, encode_cursor

    token = encode_cursor(Cursor("next", ("a",), "Patient", "p1"))
    assert parse_search("Patient", [("_sort", "family"), ("_cursor", token)], strict=True).cursor is not None
    with pytest.raises(SearchError) as err:
        parse_search("Patient", [("_cursor", token)], strict=True)
    assert err.value.param == "_cursor"
