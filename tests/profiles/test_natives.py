"""Each native invariant agrees with fhirpathpy on its exact expression (the contract in natives.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fhirpathpy.engine.nodes import ResourceNode

from fhir_server.validation.profile.fhirpath import _compiled
from fhir_server.validation.profile.natives import NATIVES, Env

VERSIONED = {"versionId": "1"}
LABELLED = {"security": [{"code": "R"}]}
DIV_OK = '<div xmlns="http://www.w3.org/1999/xhtml"><p>text</p></div>'
CASES: list[tuple[str, str, Any]] = [
    ("ele-1", "Identifier", {"value": "1"}),
    ("ele-1", "Identifier", {"id": "only-id"}),
    ("ext-1", "Extension", {"url": "u", "valueString": "a"}),
    ("ext-1", "Extension", {"url": "u"}),
    ("ext-1", "Extension", {"url": "u", "valueString": "a", "extension": [{"url": "v", "valueString": "b"}]}),
    ("dom-2", "Patient", {"resourceType": "Patient", "contained": [{"resourceType": "Patient", "id": "a"}]}),
    ("dom-2", "Patient", {"resourceType": "Patient"}),
    ("dom-4", "Patient", {"resourceType": "Patient", "contained": [{"resourceType": "Patient", "meta": VERSIONED}]}),
    ("dom-5", "Patient", {"resourceType": "Patient", "contained": [{"resourceType": "Patient", "meta": LABELLED}]}),
    ("dom-6", "Patient", {"resourceType": "Patient"}),
    ("dom-6", "Patient", {"resourceType": "Patient", "text": {"status": "generated", "div": DIV_OK}}),
    ("cpt-2", "ContactPoint", {"value": "1"}),
    ("cpt-2", "ContactPoint", {"value": "1", "system": "phone"}),
    ("qty-3", "Quantity", {"code": "kg"}),
    ("sqty-1", "Quantity", {"comparator": "<"}),
    ("ref-1", "Reference", {"reference": "#a"}),
    ("ref-1", "Reference", {"reference": "Patient/1"}),
]


@pytest.mark.parametrize(("key", "type_path", "focus"), CASES)
def test_native_matches_fhirpath_engine(key: str, type_path: str, focus: Any) -> None:
    (expression,) = [e for k, e in NATIVES if k == key]
    env = Env(focus if "resourceType" in focus else {"resourceType": "Patient"},
              focus if "resourceType" in focus else {"resourceType": "Patient", "contained": [{"id": "a"}]})
    native = NATIVES[(key, expression)](focus, env)
    node = focus if "resourceType" in focus else ResourceNode.create_node(focus, type_path)
    engine = _compiled(expression, False)(node, {"resource": env.resource, "rootResource": env.root})
    assert native == (engine == [True])


@pytest.mark.parametrize(
    ("div", "ok"),
    [(DIV_OK, True), ('<div xmlns="http://www.w3.org/1999/xhtml"><script>x</script></div>', False),
     ('<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="x()">a</p></div>', False),
     ("<div>no namespace</div>", False), ("not xml", False)],
)
def test_narrative_checks_follow_the_r4_xhtml_rules(div: str, ok: bool) -> None:
    (expression,) = [e for k, e in NATIVES if k == "txt-1"]
    assert NATIVES[("txt-1", expression)](div, Env({}, {})) is ok


def test_narrative_without_text_fails_txt2() -> None:
    (expression,) = [e for k, e in NATIVES if k == "txt-2"]
    empty = '<div xmlns="http://www.w3.org/1999/xhtml"> </div>'
    assert NATIVES[("txt-2", expression)](empty, Env({}, {})) is False
