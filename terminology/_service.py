"""The terminology service: $expand, $lookup, $validate-code, $translate and fast membership checks.

Pure Python; the HTTP layer wires the operations and maps :class:`TerminologyError` to OperationOutcome.
Expansions and membership sets are computed lazily per ValueSet and cached until a resource is registered.
"""

from __future__ import annotations

import threading
from typing import Any

from fhir_server.definitions.expansion import ComposeResult, Entry, ExpansionError, evaluate
from fhir_server.definitions.membership import MembershipIndex
from terminology._expand import check_expandable, render_expansion
from terminology._lookup import lookup as lookup_concept
from terminology._registry import Registry
from terminology._translate import translate as translate_code
from terminology._validate import against_code_system, against_value_set
from terminology.errors import TerminologyError


class TerminologyService:
    """Facade over one :class:`Registry` of CodeSystems, ValueSets and ConceptMaps."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else Registry.default()
        self._lock = threading.Lock()
        self._compose: dict[str, ComposeResult] = {}
        self._entries: dict[str, list[Entry]] = {}
        self._membership: dict[str, MembershipIndex | None] = {}

    def register(self, resource: dict[str, Any]) -> None:
        """Add or replace a CodeSystem, ValueSet or ConceptMap (e.g. the full ICD-10 from icd10.load_full)."""
        with self._lock:
            self.registry.register(resource)
            self._compose, self._entries, self._membership = {}, {}, {}

    def has_valueset(self, url: str) -> bool:
        return self.registry.value_set(url) is not None

    # -- ValueSet/$expand ---------------------------------------------------------------------------------
    def expand(
        self,
        url: str | None = None,
        *,
        filter: str | None = None,
        offset: int = 0,
        count: int | None = None,
        display_language: str | None = None,
        valueset: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A ValueSet with ``expansion`` (total, offset, contains); ``filter`` matches code/display/designations."""
        vs = self._value_set(url, valueset)
        result = self._evaluate(vs, cache=valueset is None)
        check_expandable(vs.get("url", "(inline ValueSet)"), result)
        entries = self._entries.get(vs["url"]) if valueset is None else None
        if entries is None:
            entries = list(result.entries.values())
            if valueset is None:
                self._entries[vs["url"]] = entries
        return render_expansion(
            vs, entries, text_filter=filter, offset=offset, count=count, display_language=display_language
        )

    # -- CodeSystem/$lookup -------------------------------------------------------------------------------
    def lookup(
        self, system: str, code: str, *, version: str | None = None, display_language: str | None = None
    ) -> dict[str, Any]:
        """Parameters with name, version, display (in ``display_language`` if available), designations, properties."""
        return lookup_concept(self.registry, system, code, version, display_language)

    # -- $validate-code -----------------------------------------------------------------------------------
    def validate_code(
        self,
        url: str | None = None,
        *,
        system: str | None,
        code: str,
        display: str | None = None,
        valueset: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Against ValueSet ``url`` (or an inline ``valueset``), else against CodeSystem ``system``."""
        if url is None and valueset is None:
            if system is None:
                raise TerminologyError("invalid", "$validate-code needs a ValueSet (url) or a system")
            return against_code_system(self.registry, system, code, display)
        vs = self._value_set(url, valueset)
        index = self._membership.get(vs["url"]) if valueset is None else None
        if index is None:
            index = MembershipIndex.build(self._evaluate(vs, cache=valueset is None), self.registry)
            if valueset is None:
                self._membership[vs["url"]] = index
        return against_value_set(self.registry, vs.get("url", "(inline ValueSet)"), index, system, code, display)

    # -- ConceptMap/$translate ----------------------------------------------------------------------------
    def translate(
        self,
        *,
        url: str | None = None,
        system: str,
        code: str,
        source: str | None = None,
        target: str | None = None,
        target_system: str | None = None,
    ) -> dict[str, Any]:
        """Parameters with result, message and one ``match`` per target concept found."""
        return translate_code(
            self.registry, url=url, system=system, code=code, source=source, target=target,
            target_system=target_system,
        )  # fmt: skip

    # -- hot path -------------------------------------------------------------------------------------------
    def check_membership(self, valueset_url: str, system: str | None, code: str) -> bool | None:
        """Is ``system|code`` in the ValueSet? None when that cannot be told (code system or ValueSet not held)."""
        try:
            index = self._membership[valueset_url]
        except KeyError:
            index = self._build_membership(valueset_url)
        return None if index is None else index.check(system, code)

    def _build_membership(self, valueset_url: str) -> MembershipIndex | None:
        vs = self.registry.value_set(valueset_url)
        index = None
        if vs is not None:
            try:
                index = MembershipIndex.build(self._evaluate(vs, cache=True), self.registry)
            except TerminologyError:
                index = None  # e.g. an import we do not hold: membership cannot be told
        self._membership[valueset_url] = index
        return index

    # -- helpers --------------------------------------------------------------------------------------------
    def _value_set(self, url: str | None, valueset: dict[str, Any] | None) -> dict[str, Any]:
        if valueset is not None:
            if valueset.get("resourceType") != "ValueSet":
                raise TerminologyError("invalid", "the valueSet parameter must be a ValueSet resource")
            return valueset
        if url is None:
            raise TerminologyError("invalid", "a ValueSet url or resource is required")
        found = self.registry.value_set(url)
        if found is None:
            raise TerminologyError("not-found", f"ValueSet {url} is not known")
        return found

    def _evaluate(self, vs: dict[str, Any], *, cache: bool) -> ComposeResult:
        if not cache:
            return _evaluate(self.registry, vs)
        key = f"{vs['url']}|{vs.get('version', '')}"
        result = self._compose.get(key)
        if result is None:
            result = _evaluate(self.registry, vs)
            self._compose[key] = result
        return result


def _evaluate(registry: Registry, vs: dict[str, Any]) -> ComposeResult:
    """The one expansion (fhir_server.definitions.expansion), its errors as TerminologyError."""
    try:
        return evaluate(registry, vs)
    except TerminologyError:
        raise
    except ExpansionError as exc:
        raise TerminologyError(exc.code, exc.message) from exc
