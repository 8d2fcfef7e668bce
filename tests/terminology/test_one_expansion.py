"""ValueSet expansion lives once (issue 10 §7): every user answers from fhir_server/definitions/expansion.py."""

from __future__ import annotations

import ast
from pathlib import Path

from fhir_server.definitions import required_codes
from fhir_server.definitions.expansion import core_source
from fhir_server.validation.profile.coreterm import core_membership
from terminology import TerminologyService

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("fhir_server", "terminology", "profiles")
EXPANSION = ROOT / "fhir_server" / "definitions" / "expansion.py"


def test_only_the_expansion_module_reads_valueset_compose() -> None:
    """A second copy of ValueSet.compose evaluation would have to read ``compose``; only one module may."""
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path == EXPANSION:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value == "compose":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_structure_profile_and_service_agree_on_every_core_value_set(service: TerminologyService) -> None:
    """required_codes (structure validator), core_membership (profile validator) and the service's membership
    index give the same members for every R4 core ValueSet the core package enumerates."""
    checked = 0
    for key in list(core_source()._by_type["ValueSet"]):
        if "|" in key:
            continue
        known = required_codes(key)
        if known is None:
            continue
        pairs = known[1]
        expanded = {(c["system"], c["code"]) for c in _all_contains(service, key)}
        assert pairs == expanded, key
        for system, code in pairs:
            answer = service.check_membership(key, system, code)
            assert core_membership(key, system, code) is answer, (key, system, code)
        assert core_membership(key, next(iter(pairs))[0] if pairs else "urn:x", "no-such-code-xyz") is False
        checked += 1
    assert checked > 300  # most core value sets are enumerable from the package


def _all_contains(service: TerminologyService, url: str) -> list[dict[str, str]]:
    expansion = service.expand(url)["expansion"]
    return list(expansion.get("contains", []))
