"""terminology.icd10.load_full: WHO ClaML and simple CSV imports of the full classification."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from terminology import TerminologyService
from terminology.icd10 import load_full

ParamReader = Callable[[dict[str, Any], str], Any]

ICD10 = "http://hl7.org/fhir/sid/icd-10"

CLAML = """<?xml version="1.0" encoding="UTF-8"?>
<ClaML version="2.0.0">
  <Meta name="lang" value="en"/>
  <Identifier authority="WHO" uid="icd10"/>
  <Title name="ICD-10" version="2019">International Classification of Diseases</Title>
  <ClassKinds><ClassKind name="chapter"/><ClassKind name="block"/><ClassKind name="category"/></ClassKinds>
  <RubricKinds><RubricKind name="preferred"/><RubricKind name="inclusion"/></RubricKinds>
  <Class code="X" kind="chapter">
    <SubClass code="J09-J18"/>
    <Rubric kind="preferred"><Label xml:lang="en">Diseases of the respiratory system</Label></Rubric>
  </Class>
  <Class code="J09-J18" kind="block">
    <SuperClass code="X"/><SubClass code="J18"/>
    <Rubric kind="preferred"><Label xml:lang="en">Influenza and pneumonia</Label></Rubric>
  </Class>
  <Class code="J18" kind="category">
    <SuperClass code="J09-J18"/><SubClass code="J18.0"/><SubClass code="J18.9"/>
    <Rubric kind="preferred"><Label xml:lang="en">Pneumonia, organism unspecified</Label></Rubric>
    <Rubric kind="inclusion"><Label xml:lang="en">bronchopneumonia <Reference>J18.0</Reference></Label></Rubric>
  </Class>
  <Class code="J18.0" kind="category">
    <SuperClass code="J18"/>
    <Rubric kind="preferred"><Label xml:lang="en">Bronchopneumonia,
      unspecified</Label></Rubric>
  </Class>
  <Class code="J18.9" kind="category">
    <SuperClass code="J18"/>
    <Rubric kind="preferred"><Label xml:lang="en">Pneumonia, <Fragment>unspecified</Fragment></Label></Rubric>
  </Class>
</ClaML>
"""


@pytest.fixture
def claml_file(tmp_path: Path) -> Path:
    path = tmp_path / "icd10.xml"
    path.write_text(CLAML, encoding="utf-8")
    return path


def test_claml_classes_become_a_complete_nested_code_system(claml_file: Path) -> None:
    cs = load_full(claml_file)
    assert cs["url"] == ICD10 and cs["content"] == "complete" and cs["version"] == "2019"
    assert cs["count"] == 5
    [chapter] = cs["concept"]
    block = chapter["concept"][0]
    category = block["concept"][0]
    assert (chapter["code"], block["code"], category["code"]) == ("X", "J09-J18", "J18")
    assert [c["display"] for c in category["concept"]] == ["Bronchopneumonia, unspecified", "Pneumonia, unspecified"]
    assert {"code": "notSelectable", "valueBoolean": True} in block["property"]


def test_registered_full_classification_replaces_the_fragment(claml_file: Path) -> None:
    svc = TerminologyService()
    svc.register(load_full(claml_file))
    vs = "https://fhir.kzfhir.kz/ValueSet/icd-10"
    assert svc.check_membership(vs, ICD10, "J18.9") is True
    assert svc.check_membership(vs, ICD10, "I10") is False  # complete now: absent means not a code
    inline = {"resourceType": "ValueSet", "compose": {"include": [{"system": ICD10, "filter": [
        {"property": "concept", "op": "is-a", "value": "J09-J18"}]}]}}  # fmt: skip
    codes = [c["code"] for c in svc.expand(valueset=inline)["expansion"]["contains"]]
    assert codes == ["J09-J18", "J18", "J18.0", "J18.9"]


def test_csv_with_russian_displays_is_loaded_with_ru_designations(tmp_path: Path, param: ParamReader) -> None:
    path = tmp_path / "mkb10.csv"
    path.write_text(
        "code;display;parent\nI10-I15;Болезни, характеризующиеся повышенным кровяным давлением;\n"
        "I10;Эссенциальная [первичная] гипертензия;I10-I15\nI11;Гипертензивная болезнь сердца;I10-I15\n",
        encoding="utf-8",
    )
    cs = load_full(path, language="ru", version="kz-2024")
    svc = TerminologyService()
    svc.register(cs)
    out = svc.lookup(ICD10, "I11", display_language="ru")
    assert param(out, "display") == "Гипертензивная болезнь сердца"
    assert param(out, "version") == "kz-2024"
    assert {
        "name": "property",
        "part": [{"name": "code", "valueCode": "parent"}, {"name": "value", "valueCode": "I10-I15"}],
    } in out["parameter"]


def test_claml_loader_does_not_resolve_external_entities(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    path = tmp_path / "evil.xml"
    path.write_text(
        f'<?xml version="1.0"?><!DOCTYPE c [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<ClaML><Class code="A00" kind="category"><Rubric kind="preferred"><Label>&x;</Label></Rubric></Class></ClaML>',
        encoding="utf-8",
    )
    cs = load_full(path)
    assert "TOP-SECRET" not in str(cs)
