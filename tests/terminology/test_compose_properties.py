"""Property tests of the one ValueSet expansion (fhir_server/definitions/expansion.py) against an oracle
written from the R4 text (ValueSet §4.9.5): within one include the system, concept, filter and valueSet parts
are intersected; includes are united; excludes are subtracted; imports nest; cycles and runaway depth are
refused. The same generated resources are then asked through every user of the expansion: the terminology
service ($expand, $validate-code, check_membership) and the search modifiers ``:in`` / ``:below`` / ``:above``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_server.definitions.expansion import MAX_DEPTH, CanonicalSource, ExpansionError, evaluate
from fhir_server.search import terminology as search_terminology
from terminology import Registry, TerminologyError, TerminologyService

SYSTEMS = ("http://example.org/cs-a", "http://example.org/cs-b")
VS_BASE = "http://example.org/vs/"
UNDEFINED = "zz-not-defined"

Pair = tuple[str, str]


@dataclass
class CodeSystemModel:
    url: str
    parents: dict[str, str | None]  # code -> parent code

    def below(self, code: str) -> set[str]:
        """Strict descendants of ``code``, by walking the parent map (independent of CodeSystemIndex)."""
        out: set[str] = set()
        frontier = {code}
        while frontier:
            frontier = {c for c, p in self.parents.items() if p in frontier} - out
            out |= frontier
        return out

    def resource(self) -> dict[str, Any]:
        def nest(parent: str | None) -> list[dict[str, Any]]:
            return [
                {"code": c, "display": f"Display {c}", **({"concept": nest(c)} if nest(c) else {})}
                for c, p in self.parents.items()
                if p == parent
            ]

        return {"resourceType": "CodeSystem", "url": self.url, "status": "active", "content": "complete",
                "concept": nest(None)}  # fmt: skip


@st.composite
def code_systems(draw: st.DrawFn, url: str) -> CodeSystemModel:
    n = draw(st.integers(1, 10))
    parents: dict[str, str | None] = {}
    for i in range(n):
        parent = draw(st.none() | st.integers(0, i - 1)) if i else None
        parents[f"{url[-1]}{i}"] = None if parent is None else f"{url[-1]}{parent}"
    return CodeSystemModel(url, parents)


@st.composite
def filters(draw: st.DrawFn, cs: CodeSystemModel) -> dict[str, str]:
    value = draw(st.sampled_from([*cs.parents, UNDEFINED]))
    prop, op = draw(st.sampled_from([("concept", "is-a"), ("concept", "descendent-of"), ("code", "="),
                                     ("concept", "is-not-a")]))  # fmt: skip
    return {"property": prop, "op": op, "value": value}


@st.composite
def includes(draw: st.DrawFn, systems: list[CodeSystemModel], earlier: list[str]) -> dict[str, Any]:
    inc: dict[str, Any] = {}
    with_system = not earlier or draw(st.booleans())
    if with_system:
        cs = draw(st.sampled_from(systems))
        inc["system"] = cs.url
        if draw(st.booleans()):
            codes = draw(st.lists(st.sampled_from([*cs.parents, UNDEFINED]), min_size=1, max_size=5, unique=True))
            inc["concept"] = [{"code": c} for c in codes]
        if draw(st.booleans()):
            inc["filter"] = draw(st.lists(filters(cs), min_size=1, max_size=2))
    if earlier and (not with_system or draw(st.booleans())):
        inc["valueSet"] = draw(st.lists(st.sampled_from(earlier), min_size=1, max_size=2, unique=True))
    return inc


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[CodeSystemModel], list[dict[str, Any]]]:
    """Code systems and a chain of ValueSets, each importing only earlier ones (acyclic); the last is asked."""
    systems = [draw(code_systems(url)) for url in SYSTEMS]
    value_sets: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 4))):
        earlier = [vs["url"] for vs in value_sets]
        compose: dict[str, Any] = {"include": draw(st.lists(includes(systems, earlier), min_size=1, max_size=3))}
        if draw(st.booleans()):
            compose["exclude"] = draw(st.lists(includes(systems, earlier), min_size=1, max_size=2))
        value_sets.append({"resourceType": "ValueSet", "url": f"{VS_BASE}{i}", "status": "active",
                           "compose": compose})  # fmt: skip
    return systems, value_sets


# -- the oracle (R4 §4.9.5, written from the text) ------------------------------------------------------------


def oracle_filter(cs: CodeSystemModel, flt: dict[str, str]) -> set[str]:
    value, op = flt["value"], flt["op"]
    own = {value} if value in cs.parents else set()
    below = cs.below(value) if own else set()
    if op == "is-a":
        return own | below
    if op == "descendent-of":
        return below
    if op == "=":
        return own
    return set(cs.parents) - own - below  # is-not-a


def oracle_include(
    inc: dict[str, Any], systems: dict[str, CodeSystemModel], vs: dict[str, dict[str, Any]]
) -> set[Pair]:
    parts: list[set[Pair]] = [oracle(vs[url], systems, vs) for url in inc.get("valueSet", [])]
    if "system" in inc:
        cs = systems[inc["system"]]
        codes = set(cs.parents)
        if "concept" in inc:
            codes &= {c["code"] for c in inc["concept"]}  # a listed code the (complete) system lacks is no member
        for flt in inc.get("filter", []):
            codes &= oracle_filter(cs, flt)
        parts.append({(cs.url, c) for c in codes})
    result = parts[0]
    for other in parts[1:]:
        result = result & other  # intersected, never united
    return result


def oracle(valueset: dict[str, Any], systems: dict[str, CodeSystemModel], vs: dict[str, dict[str, Any]]) -> set[Pair]:
    included = set().union(*(oracle_include(i, systems, vs) for i in valueset["compose"]["include"]))
    excluded = set().union(*(oracle_include(e, systems, vs) for e in valueset["compose"].get("exclude", [])))
    return included - excluded


def _resources(systems: list[CodeSystemModel], value_sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*(cs.resource() for cs in systems), *value_sets]


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(worlds())
def test_expansion_matches_the_r4_composition_rules(world: tuple[list[CodeSystemModel], list[dict[str, Any]]]) -> None:
    systems, value_sets = world
    source = CanonicalSource(_resources(systems, value_sets))
    by_url = {vs["url"]: vs for vs in value_sets}
    models = {cs.url: cs for cs in systems}
    for vs in value_sets:
        result = evaluate(source, vs)
        assert result.enumerated
        assert set(result.entries) == oracle(vs, models, by_url), vs["compose"]


@PROPERTY
@given(worlds())
def test_every_user_of_the_expansion_agrees(world: tuple[list[CodeSystemModel], list[dict[str, Any]]]) -> None:
    """Search (:in), $expand, $validate-code and check_membership give the codes of the one expansion."""
    systems, value_sets = world
    items = _resources(systems, value_sets)
    stored = {(r["resourceType"], r["url"]): r for r in items}
    service = TerminologyService(Registry(items))
    models = {cs.url: cs for cs in systems}
    by_url = {vs["url"]: vs for vs in value_sets}
    target = value_sets[-1]
    expected = oracle(target, models, by_url)

    searched = search_terminology.expand_valueset(target["url"], lambda kind, url: stored.get((kind, url)))
    assert searched == expected

    expansion = service.expand(target["url"])["expansion"]
    assert {(c["system"], c["code"]) for c in expansion.get("contains", [])} == expected
    assert expansion["total"] == len(expected)

    for cs in systems:
        for code in [*cs.parents, UNDEFINED]:
            member = (cs.url, code) in expected
            assert service.check_membership(target["url"], cs.url, code) is member
            answer = service.validate_code(target["url"], system=cs.url, code=code)
            assert answer["parameter"][0]["valueBoolean"] is member


@PROPERTY
@given(st.builds(lambda a: a, code_systems(SYSTEMS[0])), st.data())
def test_search_subsumption_follows_the_hierarchy(cs: CodeSystemModel, data: st.DataObject) -> None:
    stored = {("CodeSystem", cs.url): cs.resource()}
    code = data.draw(st.sampled_from(list(cs.parents)))
    lookup = lambda kind, url: stored.get((kind, url))  # noqa: E731
    assert search_terminology.below(cs.url, code, lookup) == {code} | cs.below(code)
    ancestors = {c for c in cs.parents if code in cs.below(c)}
    assert search_terminology.above(cs.url, code, lookup) == {code} | ancestors


def _chain(n: int, *, cycle: bool) -> list[dict[str, Any]]:
    """ValueSets 0..n-1, each importing the next; the last imports the first when ``cycle``, else a system."""
    out = []
    for i in range(n):
        last = i == n - 1
        include: dict[str, Any] = (
            {"valueSet": [f"{VS_BASE}{(i + 1) % n}"]} if not last or cycle else {"system": SYSTEMS[0]}
        )
        out.append({"resourceType": "ValueSet", "url": f"{VS_BASE}{i}", "status": "active",
                    "compose": {"include": [include]}})  # fmt: skip
    return out


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6))
def test_an_import_cycle_is_refused_not_followed(n: int) -> None:
    chain = _chain(n, cycle=True)
    source = CanonicalSource(chain)
    with pytest.raises(ExpansionError) as caught:
        evaluate(source, chain[0])
    assert caught.value.code == "invalid"
    # the service answers the same as a TerminologyError; membership "cannot tell"
    service = TerminologyService(Registry(chain))
    with pytest.raises(TerminologyError):
        service.expand(chain[0]["url"])
    assert service.check_membership(chain[0]["url"], SYSTEMS[0], "a0") is None
    assert search_terminology.expand_valueset(chain[0]["url"], lambda kind, url: source.value_set(url)) is None


def test_nesting_is_bounded() -> None:
    cs = CodeSystemModel(SYSTEMS[0], {"a0": None}).resource()
    deep = _chain(MAX_DEPTH + 1, cycle=False)
    with pytest.raises(ExpansionError) as caught:
        evaluate(CanonicalSource([cs, *deep]), deep[0])
    assert caught.value.code == "too-costly"
    shallow = _chain(MAX_DEPTH, cycle=False)
    assert set(evaluate(CanonicalSource([cs, *shallow]), shallow[0]).entries) == {(SYSTEMS[0], "a0")}


def test_an_include_with_a_system_and_a_value_set_is_their_intersection() -> None:
    """The bug this module replaced: two of four copies united the parts of one include."""
    cs = CodeSystemModel(SYSTEMS[0], {"a0": None, "a1": "a0", "a2": None}).resource()
    inner = {"resourceType": "ValueSet", "url": f"{VS_BASE}inner", "status": "active",
             "compose": {"include": [{"system": SYSTEMS[0], "concept": [{"code": "a1"}, {"code": "a2"}]}]}}
    outer = {"resourceType": "ValueSet", "url": f"{VS_BASE}outer", "status": "active",
             "compose": {"include": [{"system": SYSTEMS[0], "filter": [{"property": "concept", "op": "is-a",
                                                                          "value": "a0"}],
                                      "valueSet": [inner["url"]]}]}}  # fmt: skip
    stored = {("CodeSystem", SYSTEMS[0]): cs, ("ValueSet", inner["url"]): inner, ("ValueSet", outer["url"]): outer}
    assert search_terminology.expand_valueset(outer["url"], lambda k, u: stored.get((k, u))) == {(SYSTEMS[0], "a1")}
    assert TerminologyService(Registry(stored.values())).check_membership(outer["url"], SYSTEMS[0], "a2") is False
