"""MD-D 6 (diagnoses), 7 (doctor's note), 8 (conclusion) and 9 (management plan)."""

from __future__ import annotations

from mappings._build import Build
from mappings._fhir import Cursor
from mappings._links import linked, narrative_text, section
from mappings.codes import (
    EXT_DIAGNOSIS_KIND,
    EXT_DIAGNOSIS_TYPE,
    EXT_DISEASE_CHARACTER,
    EXT_NEXT_VISIT,
    ICD10_SYSTEM,
)
from mappings.model import Coded, Diagnosis, DoctorNote, Indicator, JsonScalar, Plan

_VALUE_TYPES = ("String", "Boolean", "Integer")


def _ext_coded(b: Build, key: str, dx: Cursor, url: str, what: str) -> Coded | None:
    value = dx.ext_coding(url)
    return b.coded(key, value, f"MD-D 6 {what}") if value is not None else None


def _diagnosis(b: Build, n: int, dx: Cursor) -> Diagnosis | None:
    condition = b.resources.resolve(dx.child("condition"))
    if condition is None or condition.resource_type != "Condition":
        b.missing(6, f"{dx.path}.condition does not resolve to a Condition in the input")
        return None
    code = condition.child("code")
    icd = code.coding(ICD10_SYSTEM) if code is not None else None
    if icd is None:
        b.missing(6, f"{condition.reference} has no Condition.code coding with system {ICD10_SYSTEM}")
        return None
    key = f"diagnoses[{n}]"
    icd10 = b.coded(f"{key}.icd10", icd, "MD-D 6 ICD-10 diagnosis")
    kind = _ext_coded(b, f"{key}.kind", dx, EXT_DIAGNOSIS_KIND, "diagnosis kind")
    type_ = _ext_coded(b, f"{key}.type", dx, EXT_DIAGNOSIS_TYPE, "diagnosis type")
    character = _ext_coded(b, f"{key}.character", dx, EXT_DISEASE_CHARACTER, "disease character")
    for value, label in ((kind, "kind"), (type_, "type")):
        if value is None:
            b.missing(6, f"{dx.path} has no diagnosis {label} extension")
    if character is None:
        b.warn(f"MD-D 6: {dx.path} has no disease character (kz-disease-character)", dx.path)
    rank_node = dx.child("rank")
    rank = int(b.take(f"{key}.rank", rank_node)) if rank_node is not None and isinstance(rank_node.node, int) else None
    return Diagnosis(condition.reference, icd10, kind, type_, character, rank)


def diagnoses(b: Build, encounter: Cursor) -> tuple[Diagnosis, ...]:
    entries = encounter.children("diagnosis")
    if not entries:
        b.missing(6, "Encounter.diagnosis is empty")
    found: list[Diagnosis] = []
    for dx in entries:  # numbered by position in the record, so the trace keys match the tuple
        if (diagnosis := _diagnosis(b, len(found), dx)) is not None:
            found.append(diagnosis)
    if found and not any(d.kind is not None and d.kind.code == "main" for d in found):
        b.warn("MD-D 6: no diagnosis has kind 'main'", "Encounter.diagnosis")
    return tuple(found)


def _observation_value(b: Build, key: str, obs: Cursor) -> tuple[JsonScalar | None, str | None]:
    quantity = obs.child("valueQuantity")
    number = quantity.child("value") if quantity is not None else None
    if quantity is not None and number is not None:
        value = b.take(f"{key}.value", number)
        unit_node = quantity.child("unit") or quantity.child("code")
        return value, b.text(f"{key}.unit", unit_node)
    concept = obs.child("valueCodeableConcept")
    if concept is not None:  # the concept's text, else its first coding's display, else its code
        coding = concept.child("coding")
        label = concept.child("text") or (coding.child("display") or coding.child("code") if coding else None)
        return (b.take(f"{key}.value", label) if label is not None else None), None
    scalar = next((v for t in _VALUE_TYPES if (v := obs.child(f"value{t}")) is not None), None)
    return (b.take(f"{key}.value", scalar) if scalar is not None else None), None


def _indicator(b: Build, n: int, obs: Cursor) -> Indicator | None:
    key = f"note.indicators[{n}]"
    code = b.concept(f"{key}.code", obs.child("code"), "observation code")
    if code is None:
        return None
    value, unit = _observation_value(b, key, obs)
    effective = b.text(f"{key}.effective", obs.child("effectiveDateTime") or obs.child("effectivePeriod", "start"))
    interpretation = b.concept(f"{key}.interpretation", obs.child("interpretation"), "interpretation")
    return Indicator(obs.reference, code, value, unit, effective, interpretation)


def note(b: Build, encounter: Cursor, patient_key: str | None, compositions: list[Cursor]) -> DoctorNote | None:
    """MD-D 7: Composition section 7, else ClinicalImpression.description, else an 'additional' Encounter.text."""
    text = narrative_text(b, "note.text", (sec := section(compositions, 7)) and sec.child("text"))
    if text is None:
        impression = next(iter(linked(b, "ClinicalImpression", encounter, patient_key)), None)
        text = b.text("note.text", impression.child("description")) if impression is not None else None
    if text is None and encounter.text("text", "status") == "additional":
        # R4 Narrative.status "additional": the narrative holds content beyond the structured data.
        text = narrative_text(b, "note.text", encounter.child("text"))
    observations = linked(b, "Observation", encounter, patient_key)
    found: list[Indicator] = []
    for obs in observations:
        if (indicator := _indicator(b, len(found), obs)) is not None:
            found.append(indicator)
    indicators = tuple(found)
    if text is None and not indicators:
        b.missing(7, "no Composition section 7, ClinicalImpression.description, 'additional' Encounter.text "
                     "or Observation of the service")
        return None
    if text is None:
        b.warn("MD-D 7: indicators are present but the doctor's note text is missing", "Composition.section")
    return DoctorNote(text, indicators)


def conclusion(b: Build, encounter: Cursor, patient_key: str | None, compositions: list[Cursor]) -> str | None:
    text = narrative_text(b, "conclusion", (sec := section(compositions, 8)) and sec.child("text"))
    if text is None:
        impression = next(iter(linked(b, "ClinicalImpression", encounter, patient_key)), None)
        text = b.text("conclusion", impression.child("summary")) if impression is not None else None
    if text is None:
        b.missing(8, "no Composition section 8 text and no ClinicalImpression.summary")
    return text


def plan(b: Build, encounter: Cursor, patient_key: str | None, compositions: list[Cursor]) -> Plan | None:
    """MD-D 9: plan text (section 9 or CarePlan.description) and the next examination date."""
    care_plans = linked(b, "CarePlan", encounter, patient_key)
    text = narrative_text(b, "plan.text", (sec := section(compositions, 9)) and sec.child("text"))
    if text is None and care_plans:
        text = b.text("plan.text", care_plans[0].child("description"))
    next_visit = b.text("plan.next_visit", encounter.ext_value(EXT_NEXT_VISIT, "Date", "DateTime"))
    for care_plan in care_plans:
        for activity in care_plan.children("activity"):
            if next_visit is None:
                next_visit = b.text("plan.next_visit", activity.child("detail", "scheduledPeriod", "start"))
    if text is None and next_visit is None:
        b.missing(9, "no plan text (Composition section 9, CarePlan.description) and no next visit date")
        return None
    if next_visit is None:
        b.warn("MD-D 9: the plan has no date of the next examination", "Encounter.extension")
    return Plan(text, next_visit)
