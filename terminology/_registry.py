"""Where CodeSystems, ValueSets and ConceptMaps come from: the R4 core package plus terminology/data.

Resources are indexed by canonical URL and by ``url|version``; CodeSystem indexes are built lazily, on first
use, because most of the 495 core code systems are never touched by a given deployment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from typing import Any

from fhir_server.definitions import core_resources
from terminology._codesystem import CodeSystemIndex
from terminology._icd10_structure import ICD10_CODE, ICD10_URL, icd10_anchor
from terminology.errors import TerminologyError

# Shape of a code, to tell "not in the fragment we hold" from "malformed"; and where an unknown code would sit.
_CODE_SYNTAX: dict[str, re.Pattern[str]] = {ICD10_URL: ICD10_CODE}
_ANCHORS: dict[str, Callable[[CodeSystemIndex, str], str | None]] = {ICD10_URL: icd10_anchor}
# Code systems whose definitions say they are not enumerated here (SNOMED CT stub in the core package).
_NOT_ENUMERATED = ("not-present", "supplement")


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


class Registry:
    """Canonical resources by URL; the latest registration of a URL wins (so a full ICD-10 replaces the fragment)."""

    def __init__(self, items: Iterable[dict[str, Any]] = ()) -> None:
        self._by_type: dict[str, dict[str, dict[str, Any]]] = {"CodeSystem": {}, "ValueSet": {}, "ConceptMap": {}}
        self._indexes: dict[str, CodeSystemIndex] = {}
        for item in items:
            self.register(item)

    @classmethod
    def default(cls) -> Registry:
        return cls([*core_terminology(), *shipped_resources()])

    def register(self, resource: dict[str, Any]) -> None:
        table = self._by_type.get(resource.get("resourceType", ""))
        url = resource.get("url")
        if table is None or not isinstance(url, str):
            raise TerminologyError("invalid", "only a CodeSystem, ValueSet or ConceptMap with a url can be registered")
        table[url] = resource
        if resource.get("version"):
            table[f"{url}|{resource['version']}"] = resource
        self._indexes = {k: v for k, v in self._indexes.items() if k.split("|", 1)[0] != url}

    def _find(self, kind: str, url: str, version: str | None = None) -> dict[str, Any] | None:
        table = self._by_type[kind]
        if version is None and "|" in url:
            url, version = url.split("|", 1)
        if version is not None:
            return table.get(f"{url}|{version}")
        return table.get(url)

    def value_set(self, url: str) -> dict[str, Any] | None:
        return self._find("ValueSet", url)

    def concept_map(self, url: str) -> dict[str, Any] | None:
        return self._find("ConceptMap", url)

    def concept_maps(self) -> list[dict[str, Any]]:
        return [m for key, m in self._by_type["ConceptMap"].items() if "|" not in key]

    def code_system(self, url: str, version: str | None = None) -> CodeSystemIndex | None:
        """The held, enumerated code system, or None (unknown, other version, or content not-present)."""
        resource = self._find("CodeSystem", url, version)
        if resource is None or resource.get("content") in _NOT_ENUMERATED:
            return None
        key = f"{resource['url']}|{resource.get('version', '')}"
        index = self._indexes.get(key)
        if index is None:
            index = CodeSystemIndex(resource)
            self._indexes[key] = index
        return index

    @staticmethod
    def code_syntax(system: str) -> re.Pattern[str] | None:
        return _CODE_SYNTAX.get(system)

    def anchor_locator(self, system: str) -> Callable[[str], str | None] | None:
        """For partly held systems with a known code structure: the held concept an unknown code falls under."""
        locate = _ANCHORS.get(system)
        cs = self.code_system(system)
        if locate is None or cs is None:
            return None
        return lambda code: locate(cs, code)
