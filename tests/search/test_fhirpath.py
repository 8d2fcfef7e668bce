"""The compiled FHIRPath subset: every R4 core search expression compiles, the known errata are
handled on purpose, and the full engine takes over where the subset stops (issue 3 item 1)."""

from __future__ import annotations

from typing import Any

from fhir_server.definitions import core_resources
from fhir_server.search import Indexer, build_registry
from fhir_server.search.fhirpath import compile_expression, compile_relative, parse, walk
from fhir_server.search.fhirpath.compiler import GET, REFTYPE, CompiledPath
from tests.data import errata


def _shape(paths: list[CompiledPath]) -> set[tuple[Any, ...]]:
    """What a compiled path selects, without its (unhashable) filter functions."""
    return {(tuple(op if op[0] in (GET, REFTYPE) else (op[0],) for op in p.ops), p.leaf_type) for p in paths}


def test_every_core_search_expression_compiles_for_every_base() -> None:
    compiled = 0
    for sp in core_resources("search-parameters", "SearchParameter"):
        if not sp.get("expression"):
            continue
        ast = parse(sp["expression"])
        for base in sp["base"]:
            target = "Patient" if base in ("Resource", "DomainResource") else base
            paths = compile_expression(ast, target)
            assert paths, f"{sp['id']} selects nothing on {base}"
            compiled += 1
            for comp in sp.get("component", []):
                for p in paths:
                    assert compile_relative(parse(comp["expression"]), target, p.leaf_type, p.node), sp["id"]
    assert compiled > 1600


def test_core_parameters_need_no_fallback_engine() -> None:
    indexer = Indexer()
    for resource_type in ("Observation", "Patient", "Encounter", "Condition", "MedicationRequest", "Claim"):
        indexer.plans(resource_type)
    assert indexer.fallback_params == set()


def test_as_in_r4_expressions_means_of_type() -> None:
    """The errata file lists expressions where R4 wrote `X as T` for `X.ofType(T)`; both compile alike."""
    entries = errata()["by_file"]["search-parameters.json"]
    by_id = {sp["id"]: sp for sp in core_resources("search-parameters", "SearchParameter")}
    checked = 0
    for entry in entries:
        for diff in entry.get("diffs", []):
            official, fixed = diff["official"], diff["medplum"]
            truncated = str(fixed).startswith('"') or str(fixed).endswith("...")  # long ones are cut in the listing
            if diff["path"] != "/expression" or "ofType" not in str(fixed) or truncated:
                continue
            sp = by_id[entry["resource"].split("/", 1)[1]]
            for base in sp["base"]:
                as_written = compile_expression(parse(official), base)
                assert _shape(as_written) == _shape(compile_expression(parse(fixed), base))
                checked += 1
    assert checked > 50


def test_choice_type_filter_picks_the_typed_json_property() -> None:
    paths = compile_expression(parse("(Observation.value as Quantity)"), "Observation")
    assert [(p.ops, p.leaf_type) for p in paths] == [(((GET, "valueQuantity"),), "Quantity")]
    lower_case = compile_expression(parse("Observation.value.as(DateTime)"), "Observation")  # R4 erratum spelling
    assert [p.leaf_type for p in lower_case] == ["dateTime"]


def test_resolve_is_type_filters_references_by_their_target() -> None:
    (path,) = compile_expression(parse("Observation.subject.where(resolve() is Patient)"), "Observation")
    obs = {"resourceType": "Observation", "subject": {"reference": "Patient/1"}}
    group = {"resourceType": "Observation", "subject": {"reference": "Group/1"}}
    contained = {"resourceType": "Observation", "subject": {"reference": "#p"},
                 "contained": [{"resourceType": "Patient", "id": "p"}]}
    assert walk(path.ops, obs, obs) == [{"reference": "Patient/1"}]
    assert walk(path.ops, group, group) == []
    assert walk(path.ops, contained, contained) == [{"reference": "#p"}]


def test_where_extension_index_and_resource_root() -> None:
    patient = {"resourceType": "Patient",
               "telecom": [{"system": "email", "value": "a@b"}, {"system": "phone", "value": "1"}],
               "extension": [{"url": "http://x/nat", "valueCode": "KZ"}], "name": [{"family": "A"}, {"family": "B"}]}
    (phone,) = compile_expression(parse("Patient.telecom.where(system='phone')"), "Patient")
    assert walk(phone.ops, patient, patient) == [{"system": "phone", "value": "1"}]
    paths = compile_expression(parse("Patient.extension('http://x/nat').value"), "Patient")
    assert [v for p in paths for v in walk(p.ops, patient, patient)] == ["KZ"]
    (first,) = compile_expression(parse("Patient.name.first().family"), "Patient")
    assert walk(first.ops, patient, patient) == ["A"]
    (root,) = compile_relative(parse("%resource.name[1].family"), "Patient", "HumanName", "HumanName")
    assert walk(root.ops, patient["name"][0], patient) == ["B"]


def test_expression_outside_the_subset_uses_the_full_engine() -> None:
    sp = {"resourceType": "SearchParameter", "url": "http://example.org/sp/family-lower", "code": "family-lower",
          "base": ["Patient"], "type": "string", "expression": "Patient.name.family.lower()"}
    indexer = Indexer(build_registry(extra=[sp]))
    rows = indexer.extract({"resourceType": "Patient", "id": "x", "name": [{"family": "ÁBC"}]})
    assert ("family-lower", 0, "abc", "ábc") in rows.strings
    assert ("Patient", "family-lower") in indexer.fallback_params
