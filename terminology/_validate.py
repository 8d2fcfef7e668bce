"""$validate-code against a ValueSet or a CodeSystem (R4 ValueSet §4.9.9, CodeSystem §4.8.15.3).

Three outcomes: valid, invalid, and "cannot tell" (the code system is not held, or only a fragment of it is).
R4 has no third value for ``result``, so "cannot tell" is ``result = false`` with a message and, when a code
system is missing, the ``x-caused-by-unknown-system`` parameter used by HL7 terminology servers.
"""

from __future__ import annotations

from typing import Any

from fhir_server.definitions.codesystem import CodeSystemIndex
from fhir_server.definitions.membership import MembershipIndex
from terminology._registry import Registry
from terminology._text import normalise
from terminology.errors import TerminologyError


def outcome(result: bool, message: str | None = None, display: str | None = None) -> dict[str, Any]:
    params: list[dict[str, Any]] = [{"name": "result", "valueBoolean": result}]
    if message:
        params.append({"name": "message", "valueString": message})
    if display:
        params.append({"name": "display", "valueString": display})
    return {"resourceType": "Parameters", "parameter": params}


def unknown_system(system: str, message: str) -> dict[str, Any]:
    out = outcome(False, message)
    out["parameter"].append({"name": "x-caused-by-unknown-system", "valueCanonical": system})
    return out


def against_code_system(registry: Registry, system: str, code: str, display: str | None) -> dict[str, Any]:
    cs = registry.code_system(system)
    if cs is None:
        return unknown_system(system, f"cannot validate: code system {system} is not held by this server")
    concept = cs.get(code)
    if concept is None:
        if not cs.complete:
            return outcome(False, f"cannot validate: {code!r} is not in the {cs.content} of {system} held here")
        return outcome(False, f"code {code!r} is not in code system {system}")
    return _with_display(cs, concept.code, display)


def against_value_set(
    registry: Registry, url: str, index: MembershipIndex, system: str | None, code: str, display: str | None
) -> dict[str, Any]:
    if system is None:
        # A bare code (``code`` datatype): the system is the one of the ValueSet that has it.
        systems = [s for s, codes in index.members.items() if code in codes]
        if len(systems) > 1:
            raise TerminologyError("invalid", f"code {code!r} is ambiguous in ValueSet {url}; give a system")
        if not systems:
            if index.check(None, code) is None:
                return outcome(False, f"cannot validate {code!r} against {url}: it uses code systems not held here")
            return outcome(False, f"code {code!r} is not in ValueSet {url}")
        system = systems[0]
    member = index.check(system, code)
    if member is False:
        return outcome(False, f"code {system}|{code} is not in ValueSet {url}")
    cs = registry.code_system(system)
    if member is None:
        if cs is None:
            return unknown_system(system, f"cannot validate against {url}: code system {system} is not held")
        return outcome(False, f"cannot validate: {code!r} is not in the {cs.content} of {system} held here")
    return _with_display(cs, code, display) if cs else outcome(True)


def _with_display(cs: CodeSystemIndex, code: str, display: str | None) -> dict[str, Any]:
    concept = cs.get(code)
    preferred = concept.display if concept else None
    if display is None or concept is None:
        return outcome(True, display=preferred)
    valid = {normalise(" ".join(v.split())) for v in [concept.display or "", *(d.value for d in concept.designations)]}
    if normalise(" ".join(display.split())) in valid:
        return outcome(True, display=preferred)
    return outcome(False, f"display {display!r} is not a display of {cs.url}|{code}; expected {preferred!r}", preferred)
