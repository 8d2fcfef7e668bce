"""The SearchParameter registry: R4 core definitions plus SearchParameter JSON files added as data.

Definitions are data (architecture, core decision 2): the 1,375 R4 core SearchParameters come from
the packaged ``search-parameters`` bundle; a Kazakhstan SearchParameter (IIN, BIN ...) is added by
dropping ``SearchParameter-*.json`` into ``profiles/package/`` (or another configured folder). A later
definition with the same code on the same base replaces the earlier one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from fhir_server.definitions import core_resources, get_definitions

log = logging.getLogger(__name__)

_ABSTRACT_BASES = frozenset({"Resource", "DomainResource"})
# Parameters with no expression or of type "special" cannot be indexed; the reason is published in
# the conformance statement (issue 3 item 1).
_STATIC_REASONS = {
    "near": "geographic 'near' search (type special) is not supported",
    "_text": "narrative full-text search is not supported",
    "_content": "full-text search over the whole resource is not supported",
    "_query": "named queries are not supported",
}


@dataclass(frozen=True, slots=True)
class Component:
    definition: str  # canonical URL of the component's SearchParameter
    expression: str


@dataclass(frozen=True, slots=True)
class SearchParamDef:
    """One search parameter as the engine needs it."""

    code: str
    url: str
    type: str  # number | date | string | token | reference | composite | quantity | uri | special
    expression: str | None
    base: tuple[str, ...]
    targets: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class Registry:
    by_type: dict[str, dict[str, SearchParamDef]]
    by_url: dict[str, SearchParamDef]
    unsupported: dict[str, str]  # url -> reason

    def get(self, resource_type: str, code: str) -> SearchParamDef | None:
        return self.by_type.get(resource_type, {}).get(code)

    def params_for(self, resource_type: str) -> dict[str, SearchParamDef]:
        return self.by_type.get(resource_type, {})


def _to_def(sp: dict[str, Any]) -> SearchParamDef:
    components = tuple(
        Component(c["definition"], c["expression"]) for c in sp.get("component", ()) if "expression" in c
    )
    return SearchParamDef(
        code=sp["code"],
        url=sp["url"],
        type=sp["type"],
        expression=sp.get("expression"),
        base=tuple(sp.get("base", ())),
        targets=tuple(sp.get("target", ())),
        components=components,
        description=sp.get("description", ""),
    )


def default_extra_dirs() -> list[Path]:
    """Folders holding added SearchParameters: the KZ implementation guide package, when present."""
    repo_root = Path(__file__).resolve().parents[2]
    return [p for p in (repo_root / "profiles" / "package",) if p.is_dir()]


def _load_dir(folder: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            log.warning("skipping unreadable SearchParameter file %s", path)
            continue
        if isinstance(data, dict) and data.get("resourceType") == "SearchParameter":
            out.append(data)
    return out


def build_registry(extra: Iterable[dict[str, Any]] = (), extra_dirs: Sequence[Path] = ()) -> Registry:
    """Build a registry from the core bundle, then ``extra_dirs`` files, then ``extra`` resources."""
    resource_types = get_definitions().resource_types
    sources = list(core_resources("search-parameters", "SearchParameter"))
    for folder in extra_dirs:
        sources.extend(_load_dir(folder))
    sources.extend(extra)
    by_type: dict[str, dict[str, SearchParamDef]] = {t: {} for t in resource_types}
    by_url: dict[str, SearchParamDef] = {}
    unsupported: dict[str, str] = {}
    for sp in sources:
        d = _to_def(sp)
        by_url[d.url] = d
        reason = _STATIC_REASONS.get(d.code)
        if reason is None and (d.type == "special" or not d.expression):
            reason = "no FHIRPath expression to index" if d.type != "special" else "type 'special'"
        if reason is not None:
            unsupported[d.url] = reason
        for base in d.base:
            targets = resource_types if base in _ABSTRACT_BASES else ({base} & resource_types)
            for t in targets:
                by_type[t][d.code] = d
    return Registry(by_type, by_url, unsupported)


@cache
def get_registry() -> Registry:
    """The process-wide registry (core + ``default_extra_dirs()``)."""
    return build_registry(extra_dirs=default_extra_dirs())
