"""ProfileRegistry: StructureDefinitions by canonical URL, each compiled once and cached."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from fhir_server.definitions import core_resources
from fhir_server.validation.profile.compiler import compile_structure, constraints_of
from fhir_server.validation.profile.model import CompiledProfile, Constraint, TypeRule
from fhir_server.validation.profile.snapshot import generate_snapshot

__all__ = ["CORE_DEFINITIONS", "CORE_PREFIX", "ProfileRegistry"]

CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
CORE_DEFINITIONS = ("profiles-types", "profiles-resources", "extension-definitions", "profiles-others")


class ProfileRegistry:
    """Holds R4 core StructureDefinitions plus any number of profile packages (the KZ IG by default).

    Snapshots missing from a registered profile are generated on first use (``snapshot.py``); compiled
    rule trees are cached per URL, so a profile is compiled once per process.
    """

    def __init__(self, extra: Iterable[dict[str, Any]] = (), *, include_kz: bool = True) -> None:
        self._sds: dict[str, dict[str, Any]] = {}
        self._compiled: dict[str, CompiledProfile] = {}
        self._type_constraints: dict[str, tuple[Constraint, ...]] = {}
        # What a walk derives from the compiled definitions and looks up on every element (walker.py: a type's
        # root rule, how ``_node`` treats a type code); emptied with them whenever a definition is added.
        self.derived: dict[Any, Any] = {}
        self._lock = threading.RLock()
        # The R4 core package: data types, resources, the core extension definitions and the core profiles
        # (vitalsigns, bodytemp, bp, ...), all known by URL without being declared anywhere.
        for name in CORE_DEFINITIONS:
            for sd in core_resources(name, "StructureDefinition"):
                self._sds[sd["url"]] = sd
        if include_kz:
            from profiles import load_package  # the KZ IG is data shipped in the `profiles` package

            for resource in load_package():
                if resource.get("resourceType") == "StructureDefinition":
                    self.add(resource)
        for sd in extra:
            self.add(sd)

    def add(self, sd: dict[str, Any]) -> None:
        """Register (or replace) a StructureDefinition; its compiled form is rebuilt on next use."""
        with self._lock:
            self._sds[sd["url"]] = sd
            self._compiled.clear()
            self._type_constraints.clear()
            self.derived.clear()

    def holds(self, sd: dict[str, Any]) -> bool:
        """Whether this very definition (ignoring meta, text and a generated snapshot) is registered."""
        known = self._sds.get(str(sd.get("url")))
        if known is None:
            return False
        ignored = ("meta", "text", "snapshot")
        return {k: v for k, v in known.items() if k not in ignored} == {k: v for k, v in sd.items() if k not in ignored}

    def urls(self) -> list[str]:
        return sorted(self._sds)

    def structure(self, url: str) -> dict[str, Any] | None:
        """The StructureDefinition for ``url`` (version suffix ignored), with a snapshot."""
        sd = self._sds.get(url.split("|")[0])
        if sd is not None and "snapshot" not in sd:
            with self._lock:
                sd = {**sd, "snapshot": {"element": generate_snapshot(sd, self.structure)}}
                self._sds[sd["url"]] = sd
        return sd

    def compiled(self, url: str) -> CompiledProfile | None:
        url = url.split("|")[0]
        found = self._compiled.get(url)
        if found is not None:
            return found
        sd = self.structure(url)
        if sd is None:
            return None
        with self._lock:
            found = compile_structure(sd, self.type_constraints)
            self._compiled[url] = found
        return found

    def core(self, type_name: str) -> CompiledProfile | None:
        """The compiled base definition of a resource or data type."""
        return self.compiled(CORE_PREFIX + type_name)

    def type_of(self, url: str) -> str | None:
        """The resource/data type a profile constrains (``StructureDefinition.type``)."""
        sd = self._sds.get(url.split("|")[0])
        return sd.get("type") if sd else None

    def is_resource_type(self, name: str) -> bool:
        sd = self._sds.get(CORE_PREFIX + name)
        return bool(sd and sd.get("kind") == "resource" and sd.get("derivation") == "specialization")

    def is_primitive(self, code: str) -> bool:
        sd = self._sds.get(CORE_PREFIX + code)
        return sd is None or sd.get("kind") == "primitive-type"

    def type_constraints(self, type_rule: TypeRule) -> tuple[Constraint, ...]:
        """Invariants every instance of the type (or its type profile) must meet (R4 §2.12.0.3)."""
        url = type_rule.profiles[0] if type_rule.profiles else CORE_PREFIX + type_rule.code
        found = self._type_constraints.get(url)
        if found is None:
            sd = self.structure(url)
            if sd is None or sd.get("kind") in ("resource", "primitive-type") or sd.get("type") == "Extension":
                # Resource invariants apply via the contained resource's own definition; primitive ones
                # are ele-1 only (already on the element); extension definitions are walked separately.
                found = ()
            else:
                found = constraints_of(sd["snapshot"]["element"][0])
            self._type_constraints[url] = found
        return found
