"""Deliberate handling of known errors in the official R4 4.0.1 definitions.

Each entry names the invariant (key + the exact official expression, so a corrected future package is
not patched twice) and what we do instead. The list is mirrored in docs/kz-ig-validation.md. Sources:
``shared/data/fhir-r4/known-errata-medplum-patches.json`` and the FHIR R4 technical-correction tracker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from fhir_server.validation.issues import Issue

__all__ = [
    "BINDING_ERRATA",
    "EXAMPLE_ERRATA",
    "INVARIANT_ERRATA",
    "ExampleErratum",
    "InvariantErratum",
    "apply_example_errata",
    "corrected_expression",
]


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


@dataclass(frozen=True, slots=True)
class ExampleErratum:
    """One official R4 example that breaks a rule the HL7 reference validator also enforces.

    Matched exactly: the resource's type and id, the issue's expression (a regular expression, matched in
    full) and the start of its message. The rule stays an error for every other resource; for this one it is
    downgraded to a warning, so that the official examples keep round-tripping
    (tests/integration/test_examples_roundtrip.py). Mirrored in docs/validation.md.
    """

    resource_type: str
    resource_id: str
    expression: str
    message: str
    why: str


EXAMPLE_ERRATA: tuple[ExampleErratum, ...] = (
    ExampleErratum(
        "DeviceMetric", "example", r"DeviceMetric\.parent", "DeviceMetric.parent: a reference to DeviceDefinition",
        "DeviceMetric.parent is Reference(Device); the example points at a DeviceDefinition",
    ),
    ExampleErratum(
        "Observation", "clinical-gender", r"Observation\.performer\[0\]", "Observation.performer: a reference to "
        "Encounter", "an Encounter is not among Observation.performer's target types",
    ),
    ExampleErratum(
        "Observation", "f202", r"Observation\.effective", "Observation.effective[x]: minimum required = 1",
        "a body temperature (LOINC 8310-5) without effective[x], which the bodytemp profile R4 requires of it",
    ),
    ExampleErratum(
        "Basic", "referral", r"Basic\.modifierExtension\[\d+\]",
        "Unknown extension http://example.org/do-not-use/fhir-extensions/referral#",
        "modifier extensions in example.org that no package defines",
    ),
    ExampleErratum(
        "Bundle", "lri-example", r"Bundle\.entry\[\d+\]\.fullUrl", "The fullUrl 'http://test.fhir.org/r4/Observation/lri-",
        "the entries' fullUrls say lri-gramstain1 ... while the resources' ids are gramstain1 ...",
    ),
    ExampleErratum(
        "Bundle", "10bb101f-a121-4264-a920-67be9cb82c74", r"Bundle\.entry\[2\]\.fullUrl",
        "The fullUrl 'http://acme.com/ehr/fhir/Patient/pat12'", "the entry's fullUrl says pat12, the resource is pat2",
    ),
    ExampleErratum(
        "Bundle", "10bb101f-a121-4264-a920-67be9cb82c74", r"Bundle\.entry\[\d+\]\.resource\..+", "Reference '",
        "a message whose MessageHeader and Patients point at a Practitioner and Organizations it does not carry",
    ),
    ExampleErratum(
        "Bundle", "types",
        r"Bundle\.entry\[\d+\]\.resource\.(snapshot|differential)\.element\[\d+\](\.type\[\d+\])?\.extension\[\d+\]",
        "Extension http://hl7.org/fhir/StructureDefinition/",
        "R4's own type definitions carry structuredefinition-fhir-type, -normative-version and regex outside the "
        "contexts those extensions declare (ElementDefinition.type.code, StructureDefinition, ...)",
    ),
)


def apply_example_errata(resource: dict[str, Any], issues: list[Issue]) -> list[Issue]:
    """``issues`` with the errors an :data:`EXAMPLE_ERRATA` entry names downgraded to warnings."""
    matching = [e for e in EXAMPLE_ERRATA
                if e.resource_type == resource.get("resourceType") and e.resource_id == resource.get("id")]
    if not matching:
        return issues
    out = []
    for issue in issues:
        erratum = next((e for e in matching if issue.is_error and issue.diagnostics.startswith(e.message)
                        and re.fullmatch(e.expression, issue.expression or "")), None)
        if erratum is not None:
            issue = replace(issue, severity="warning", diagnostics=f"{issue.diagnostics} (R4 example errata: "
                            f"{erratum.why})")
        out.append(issue)
    return out
