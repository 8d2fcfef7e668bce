"""What the CapabilityStatement advertises for search, and what is documented as unsupported (issue 3
items 1 and 8)."""

from __future__ import annotations

from pathlib import Path

from fhir_server.definitions import core_resources
from fhir_server.search import capability_search_params, get_indexer, unsupported_params

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"


def test_capability_lists_every_searchable_parameter_with_definition_and_type() -> None:
    entries = {e["name"]: e for e in capability_search_params("Observation")}
    assert entries["code"] == {"name": "code", "definition": "http://hl7.org/fhir/SearchParameter/clinical-code",
                               "type": "token", "documentation": entries["code"]["documentation"]}
    assert {"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "patient", "subject", "date",
            "value-quantity", "code-value-quantity", "combo-code-value-quantity"} <= set(entries)
    assert "_text" not in entries and "_content" not in entries


def test_every_core_parameter_is_searchable_or_listed_as_unsupported() -> None:
    indexer = get_indexer()
    unsupported = {(t, u.code) for u in unsupported_params() for t in u.resource_types}
    for sp in core_resources("search-parameters", "SearchParameter"):
        for base in sp["base"]:
            if base in ("Resource", "DomainResource"):
                continue
            assert sp["code"] in indexer.searchable(base) or (base, sp["code"]) in unsupported, (base, sp["code"])


def test_unsupported_parameters_have_reasons_and_are_documented() -> None:
    listed = unsupported_params()
    assert {u.code for u in listed} == {"near", "_text", "_content", "_query", "composition", "message"}
    text = DOC.read_text(encoding="utf-8")
    for u in listed:
        assert u.reason
        assert u.url in text, f"{u.url} missing from {DOC.name}"
