"""The shipped terminology data: KZ code systems with ru/kk displays, ICD-10 structure, concept maps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import terminology
from terminology import TerminologyService

DATA = Path(terminology.__file__).parent / "data"
KZ_FILES = sorted((DATA / "kz").glob("CodeSystem-*.json"))


def _walk(concepts: list[dict]) -> list[dict]:
    out = []
    for c in concepts:
        out.append(c)
        out.extend(_walk(c.get("concept", [])))
    return out


@pytest.mark.parametrize("path", KZ_FILES, ids=lambda p: p.stem)
def test_every_kz_concept_has_english_russian_and_kazakh_displays(path: Path) -> None:
    cs = json.loads(path.read_text(encoding="utf-8"))
    assert cs["url"] == f"https://fhir.kzfhir.kz/CodeSystem/{cs['id']}"
    concepts = _walk(cs["concept"])
    assert cs["count"] == len(concepts)
    for concept in concepts:
        languages = {d["language"] for d in concept["designation"]}
        assert concept["display"] and languages == {"ru", "kk"}, concept["code"]


@pytest.mark.parametrize("path", KZ_FILES, ids=lambda p: p.stem)
def test_every_kz_code_system_has_a_value_set_with_all_its_codes(path: Path, service: TerminologyService) -> None:
    cs = json.loads(path.read_text(encoding="utf-8"))
    expansion = service.expand(cs["valueSet"])["expansion"]
    assert expansion["total"] == cs["count"]


def test_service_sample_is_marked_as_a_sample() -> None:
    cs = json.loads((DATA / "kz" / "CodeSystem-kz-service.json").read_text(encoding="utf-8"))
    assert cs["content"] == "example"
    assert "NOT THE NATIONAL TARIFF CLASSIFIER" in cs["description"]


def test_icd10_fragment_has_22_chapters_and_well_formed_blocks() -> None:
    cs = json.loads((DATA / "icd10" / "CodeSystem-icd-10.json").read_text(encoding="utf-8"))
    assert cs["content"] == "fragment"
    assert [c["code"] for c in cs["concept"]][:3] == ["I", "II", "III"] and len(cs["concept"]) == 22
    concepts = _walk(cs["concept"])
    blocks = [c for c in concepts if {"code": "kind", "valueCode": "block"} in c["property"]]
    assert len(blocks) > 240
    assert all(re.fullmatch(r"[A-Z]\d\d-[A-Z]\d\d", b["code"]) for b in blocks)
    assert all(any(d["language"] == "ru" for d in c["designation"]) for c in concepts)
    for code in ("I10", "E11.9", "J06.9", "J18.9", "J45.9", "I25.9", "I50.9", "K29.7", "N39.0", "M54.5", "F32.9",
                 "F41.1", "Z00.0", "U07.1"):  # fmt: skip
        assert any(c["code"] == code for c in concepts), code


def test_concept_maps_refer_to_shipped_kz_code_systems(service: TerminologyService) -> None:
    for path in sorted((DATA / "conceptmaps").glob("*.json")):
        cmap = json.loads(path.read_text(encoding="utf-8"))
        for group in cmap["group"]:
            held = service.registry.code_system(group["source"])
            assert held is not None, group["source"]
            for element in group["element"]:
                assert held.get(element["code"]) is not None, element["code"]
