"""Where CodeSystems, ValueSets and ConceptMaps come from: the R4 core package plus terminology/data.

Lookup by canonical URL and ``url|version`` and lazy CodeSystem indexing are
``fhir_server.definitions.expansion.CanonicalSource``'s; this adds ConceptMaps, the shipped data and ICD-10's
code structure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

from fhir_server.definitions import core_resources
from fhir_server.definitions.codesystem import CodeSystemIndex
from fhir_server.definitions.expansion import CanonicalSource, ExpansionError
from terminology._icd10_structure import ICD10_CODE, ICD10_URL, icd10_anchor
from terminology.errors import TerminologyError

# Shape of a code, to tell "not in the fragment we hold" from "malformed"; and where an unknown code would sit.
_CODE_SYNTAX: dict[str, re.Pattern[str]] = {ICD10_URL: ICD10_CODE}
_ANCHORS: dict[str, Callable[[CodeSystemIndex, str], str | None]] = {ICD10_URL: icd10_anchor}


def shipped_resources() -> Iterator[dict[str, Any]]:
    """The JSON resources under terminology/data (kz/, icd10/, conceptmaps/)."""
    root = resources.files("terminology").joinpath("data")
    for folder in sorted(root.iterdir(), key=lambda f: f.name):
        if not folder.is_dir():
            continue
        for item in sorted(folder.iterdir(), key=lambda f: f.name):
            if item.name.endswith(".json"):
                yield json.loads(item.read_text(encoding="utf-8"))


def core_terminology() -> Iterator[dict[str, Any]]:
    """CodeSystems and ValueSets of the R4 core package, and its ConceptMaps when the package carries them."""
    for res in core_resources("valuesets"):
        if res.get("resourceType") in ("CodeSystem", "ValueSet", "ConceptMap"):
            yield res


class Registry(CanonicalSource):
    """CodeSystems, ValueSets and ConceptMaps by URL; the latest registration of a URL wins (so a full ICD-10
    replaces the fragment). Knows the code structure of the partly held systems it ships (ICD-10)."""

    KINDS = ("CodeSystem", "ValueSet", "ConceptMap")

    @classmethod
    def default(cls) -> Registry:
        return cls([*core_terminology(), *shipped_resources()])

    def register(self, resource: dict[str, Any]) -> None:
        try:
            super().register(resource)
        except ExpansionError as exc:
            raise TerminologyError(exc.code, exc.message) from exc

    def concept_map(self, url: str) -> dict[str, Any] | None:
        return self._find("ConceptMap", url)

    def concept_maps(self) -> list[dict[str, Any]]:
        return [m for key, m in self._by_type["ConceptMap"].items() if "|" not in key]

    def code_syntax(self, system: str) -> re.Pattern[str] | None:
        return _CODE_SYNTAX.get(system)

    def anchor_locator(self, system: str) -> Callable[[str], str | None] | None:
        """For partly held systems with a known code structure: the held concept an unknown code falls under."""
        locate = _ANCHORS.get(system)
        cs = self.code_system(system)
        if locate is None or cs is None:
            return None
        return lambda code: locate(cs, code)
