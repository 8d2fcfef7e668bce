"""Input checks of the mappings: IIN/BIN (``profiles.identifiers``) and codes (``terminology``).

Each check returns :class:`Issue` values instead of raising, so one bad code does not hide the rest of
the record. Displays come from the terminology service in Russian, the language of the national forms
(kz-domain.md §6.1 "Код МКБ-10"); a code the service cannot judge (ICD-10 fragment, the ``kz-service``
sample, kz-domain.md §6.2) is reported as a warning, not an error.
"""

from __future__ import annotations

from functools import lru_cache

from fhir_server.validation.issues import Issue
from mappings.codes import ICD10_SYSTEM, ICD10_VALUESET, valueset_of
from profiles.identifiers import validate_bin, validate_iin
from terminology import TerminologyError, default_service


def check_iin(value: str, where: str, what: str, *, relaxed: bool = False) -> list[Issue]:
    """IIN problems as errors; ``relaxed`` keeps the 12-digit rule only (NCA test PKI, kz-domain.md §1.3)."""
    return [Issue("error", "value", f"{what}: {problem}", where) for problem in validate_iin(value, relaxed=relaxed)]


def check_bin(value: str, where: str, what: str, *, relaxed: bool = False) -> list[Issue]:
    return [Issue("error", "value", f"{what}: {problem}", where) for problem in validate_bin(value, relaxed=relaxed)]


def check_code(system: str, code: str, where: str, what: str) -> list[Issue]:
    """The code against the all-codes ValueSet of its system (ICD-10 or a KZ code system)."""
    valueset = ICD10_VALUESET if system == ICD10_SYSTEM else valueset_of(system)
    tx = default_service()
    if not tx.has_valueset(valueset):
        return [Issue("warning", "not-supported", f"{what}: no value set {valueset} to check {code!r}", where)]
    known = tx.check_membership(valueset, system, code)
    if known is False:
        return [Issue("error", "code-invalid", f"{what}: {code!r} is not a code of {system}", where)]
    if known is None:
        return [Issue("warning", "code-invalid", f"{what}: {code!r} cannot be checked against {system} "
                      "(the code system held here is a fragment or a sample)", where)]
    return []


@lru_cache(maxsize=4096)
def ru_display(system: str, code: str) -> str | None:
    """The Russian display of a code (falls back to English in the service), or None when unknown."""
    try:
        parameters = default_service().lookup(system, code, display_language="ru")
    except TerminologyError:
        return None
    return next((p.get("valueString") for p in parameters.get("parameter", []) if p.get("name") == "display"), None)
