"""Deliberate handling of known errors in the official R4 4.0.1 definitions.

Each entry names the invariant (key + the exact official expression, so a corrected future package is
not patched twice) and what we do instead. The list is mirrored in docs/kz-ig-validation.md. Sources:
``shared/data/fhir-r4/known-errata-medplum-patches.json`` and the FHIR R4 technical-correction tracker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["BINDING_ERRATA", "INVARIANT_ERRATA", "InvariantErratum", "corrected_expression"]


@dataclass(frozen=True, slots=True)
class InvariantErratum:
    key: str  # "*" = every invariant with this exact expression (one text shared by many resources)
    official: str
    replacement: str | None  # None = the invariant is not evaluated
    why: str


INVARIANT_ERRATA: tuple[InvariantErratum, ...] = (
    InvariantErratum(
        "app-4",
        "Appointment.cancelationReason.exists() implies (Appointment.status='no-show' or "
        "Appointment.status='cancelled')",
        "Appointment.cancelationReason.exists() implies (Appointment.status='noshow' or "
        "Appointment.status='cancelled')",
        "the AppointmentStatus code is 'noshow'; 'no-show' never matches, so a no-show with a reason "
        "would be rejected",
    ),
    InvariantErratum(
        "bdl-8",
        "fullUrl.contains('/_history/').not()",
        "fullUrl.exists() implies fullUrl.contains('/_history/').not()",
        "written without a guard; we evaluate empty results as 'not violated' anyway, the guard makes "
        "the intent explicit",
    ),
    InvariantErratum(
        "que-7",
        "operator = 'exists' implies (answer is Boolean)",
        "operator = 'exists' implies (answer is FHIR.boolean)",
        "'Boolean' is System.Boolean; a FHIR boolean answer is FHIR.boolean, so the official text rejects "
        "every valid 'exists' condition (official example Questionnaire-bb)",
    ),
    InvariantErratum(
        "*",
        "name.matches('[A-Z]([A-Za-z0-9_]){0,254}')",
        "name.exists() implies name.matches('[A-Z]([A-Za-z0-9_]){0,254}')",
        "the xxx-0 'computable name' warnings of canonical resources fire when name is absent; guarded as "
        "in R5 (cnl-0)",
    ),
    InvariantErratum(
        "ras-2",
        "probability is decimal implies (probability as decimal) <= 100",
        "probability.empty() or ((probability is decimal) implies ((probability as decimal) <= 100))",
        "operator precedence: 'is' binds looser than 'implies' in some engines; parenthesised as meant",
    ),
)

# (StructureDefinition url, element path) -> corrected ValueSet url.
BINDING_ERRATA: dict[tuple[str, str], str] = {
    (
        "http://hl7.org/fhir/StructureDefinition/DetectedIssue",
        "DetectedIssue.status",
    ): "http://hl7.org/fhir/ValueSet/detectedissue-status",
}

_BY_KEY: dict[tuple[str, str], InvariantErratum] = {(e.key, e.official): e for e in INVARIANT_ERRATA}


def corrected_expression(key: str, expression: str) -> str | None:
    """The expression to evaluate for an official invariant: itself, a correction, or None (skip)."""
    erratum = _BY_KEY.get((key, expression)) or _BY_KEY.get(("*", expression))
    if erratum is None:
        return expression
    return erratum.replacement


def describe() -> list[dict[str, Any]]:
    """The errata table as data (for docs and the $validate operation's diagnostics)."""
    return [
        {"key": e.key, "official": e.official, "replacement": e.replacement, "why": e.why}
        for e in INVARIANT_ERRATA
    ]
