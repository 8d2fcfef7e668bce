"""Hypothesis strategies: random but valid remote-service input sets, and random claim lines."""

from __future__ import annotations

import html
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from mappings.codes import (
    BIN_SYSTEM,
    CS_CHANNEL,
    CS_DIAGNOSIS_KIND,
    CS_DIAGNOSIS_TYPE,
    CS_DISEASE_CHARACTER,
    CS_FORM,
    CS_FUNDING,
    CS_MDD_ITEM,
    CS_SERVICE,
    EXT_CHANNEL,
    EXT_DIAGNOSIS_KIND,
    EXT_DIAGNOSIS_TYPE,
    EXT_DISEASE_CHARACTER,
    EXT_FORM,
    EXT_FUNDING,
    EXT_NEXT_VISIT,
    EXT_PATRONYMIC,
    ICD10_SYSTEM,
    IIN_SYSTEM,
)
from mappings.payment import ClaimLine
from profiles.identifiers import iin_check_digit

FUNDING = ("gobmp", "osms", "paid", "vhi", "other")
SERVICES = ("tm-consult-gp", "tm-consult-cardiologist", "tm-monitoring-diabetes", "A01.001.000", "B02.005.001")
ICD10 = ("J06.9", "I10", "E11.9", "I50.0", "J45.0", "K29.7", "E10.9", "I20.0")
NAME = st.text(alphabet="АБВГДЕЖЗИКЛМНОПРСТУФЭЮЯабвгдежзиклмнопрстуфэюяӘәҒғҚқҢңӨөҰұҮүІі-", min_size=2, max_size=12)
TEXT = st.text(alphabet="абвгдежзиклмнопрстуфэюя АБВ.,;:0123456789()ӘәҚқ", min_size=3, max_size=40).map(
    lambda s: " ".join(s.split())).filter(lambda s: len(s) >= 3)
INSTANT = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)).map(
    lambda d: d.replace(microsecond=0).isoformat() + "+05:00")


@st.composite
def iins(draw: st.DrawFn) -> str:
    while True:
        born = draw(st.dates(min_value=date(1930, 1, 1), max_value=date(2024, 12, 31)))
        century = "3" if born.year < 2000 else "5"
        first = f"{born:%y%m%d}{century}{draw(st.integers(0, 9999)):04d}"
        check = iin_check_digit(first)
        if check is not None:
            return first + str(check)


@st.composite
def bins(draw: st.DrawFn) -> str:
    while True:
        first = f"{draw(st.integers(0, 99)):02d}{draw(st.integers(1, 12)):02d}40{draw(st.integers(0, 99999)):05d}"
        check = iin_check_digit(first)
        if check is not None:
            return first + str(check)


def _coding(system: str, code: str) -> dict[str, Any]:
    return {"system": system, "code": code}


def _ext(url: str, system: str, code: str) -> dict[str, Any]:
    return {"url": url, "valueCoding": _coding(system, code)}


@st.composite
def _person(draw: st.DrawFn, resource_type: str, rid: str) -> dict[str, Any]:
    name: dict[str, Any] = {"family": draw(NAME), "given": [draw(NAME)]}
    if draw(st.booleans()):
        name["extension"] = [{"url": EXT_PATRONYMIC, "valueString": draw(NAME)}]
    return {"resourceType": resource_type, "id": rid, "identifier": [{"system": IIN_SYSTEM, "value": draw(iins())}],
            "name": [name]}


def _div(text: str) -> dict[str, str]:
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{html.escape(text)}</div>'}


@st.composite
def _diagnosis(draw: st.DrawFn, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    extensions = [_ext(EXT_DIAGNOSIS_KIND, CS_DIAGNOSIS_KIND, "main" if n == 0 else "concomitant"),
                  _ext(EXT_DIAGNOSIS_TYPE, CS_DIAGNOSIS_TYPE, draw(st.sampled_from(("preliminary", "final"))))]
    if draw(st.booleans()):
        extensions.append(_ext(EXT_DISEASE_CHARACTER, CS_DISEASE_CHARACTER,
                               draw(st.sampled_from(("acute", "chronic-new", "chronic-known")))))
    condition = {"resourceType": "Condition", "id": f"c{n}", "subject": {"reference": "Patient/p"},
                 "code": {"coding": [_coding(ICD10_SYSTEM, draw(st.sampled_from(ICD10)))]}}
    return {"extension": extensions, "condition": {"reference": f"Condition/c{n}"}, "rank": n + 1}, condition


def _encounter(draw: st.DrawFn, start: str, diagnoses: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Encounter", "id": "e", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
        "extension": [
            _ext(EXT_FORM, CS_FORM, draw(st.sampled_from(("consultation", "consilium", "remote-monitoring")))),
            _ext(EXT_CHANNEL, CS_CHANNEL, draw(st.sampled_from(("video", "audio", "text", "wearable")))),
            _ext(EXT_FUNDING, CS_FUNDING, draw(st.sampled_from(FUNDING))),
            {"url": EXT_NEXT_VISIT, "valueDate": start[:10]},
        ],
        "serviceType": {"coding": [{**_coding(CS_SERVICE, draw(st.sampled_from(SERVICES))), "display": draw(TEXT)}]},
        "subject": {"reference": "Patient/p"}, "participant": [{"individual": {"reference": "Practitioner/d"}}],
        "serviceProvider": {"reference": "Organization/o"}, "period": {"start": start, "end": start},
        "diagnosis": diagnoses,
    }


def _note(draw: st.DrawFn) -> dict[str, Any]:
    sections = [{"code": {"coding": [_coding(CS_MDD_ITEM, str(n))]}, "text": _div(draw(TEXT))} for n in (7, 8, 9)]
    return {"resourceType": "Composition", "id": "note", "status": "final", "type": {"text": "note"},
            "subject": {"reference": "Patient/p"}, "encounter": {"reference": "Encounter/e"}, "date": "2026-01-01",
            "author": [{"reference": "Practitioner/d"}], "title": "note", "section": sections}


def _optional(draw: st.DrawFn, start: str) -> list[dict[str, Any]]:
    extra: list[dict[str, Any]] = []
    if draw(st.booleans()):
        extra.append({"resourceType": "Observation", "id": "obs", "status": "final",
                      "subject": {"reference": "Patient/p"}, "code": {"text": draw(TEXT)}, "effectiveDateTime": start,
                      "valueQuantity": {"value": draw(st.integers(30, 250)), "unit": draw(TEXT)}})
    if draw(st.booleans()):
        extra.append({"resourceType": "MedicationRequest", "id": "mr", "status": "active", "intent": "order",
                      "subject": {"reference": "Patient/p"}, "medicationCodeableConcept": {"text": draw(TEXT)},
                      "dosageInstruction": [{"text": draw(TEXT)}], "authoredOn": start})
    if draw(st.booleans()):
        extra.append({"resourceType": "ServiceRequest", "id": "sr", "status": "active", "intent": "order",
                      "subject": {"reference": "Patient/p"}, "category": [{"text": draw(TEXT)}],
                      "code": {"coding": [_coding(CS_SERVICE, draw(st.sampled_from(SERVICES)))]},
                      "reasonCode": [{"coding": [_coding(ICD10_SYSTEM, draw(st.sampled_from(ICD10)))]}]})
    if draw(st.booleans()):
        extra.append({"resourceType": "ChargeItem", "id": "ch", "status": "billable", "code": {"text": "x"},
                      "subject": {"reference": "Patient/p"}, "context": {"reference": "Encounter/e"},
                      "quantity": {"value": draw(st.integers(1, 5))},
                      "priceOverride": {"value": draw(st.integers(100, 10**7)) / 100, "currency": "KZT"}})
    return extra


@st.composite
def service_sets(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """A complete, valid input set for one remote service with random names, IINs, codes and texts."""
    start = draw(INSTANT)
    pairs = [draw(_diagnosis(n)) for n in range(draw(st.integers(1, 3)))]
    org = {"resourceType": "Organization", "id": "o", "identifier": [{"system": BIN_SYSTEM, "value": draw(bins())}],
           "name": draw(TEXT)}
    resources = [_encounter(draw, start, [d for d, _ in pairs]), draw(_person("Patient", "p")),
                 draw(_person("Practitioner", "d")), org, _note(draw), *(c for _, c in pairs), *_optional(draw, start)]
    return {f"{r['resourceType']}/{r['id']}": r for r in resources}


# FHIR string (R4 regex [ \r\n\t\S]+: no other control characters) and code (single inner spaces).
FREE = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30)
CODE = st.from_regex(r"[A-Za-zА-Яа-я0-9.\-]{1,10}( [A-Za-zА-Яа-я0-9.\-]{1,10}){0,2}", fullmatch=True)
ICD = st.from_regex(r"[A-Z][0-9]{2}(\.[0-9]{1,2})?", fullmatch=True)
DATETIME = INSTANT | st.dates().map(lambda d: d.isoformat())
MONEY = st.decimals(min_value=0, max_value=10**12, places=2, allow_nan=False, allow_infinity=False)


def _optional_value(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


claim_lines = st.builds(
    ClaimLine,
    line_id=st.uuids().map(lambda u: f"urn:uuid:{u}"), record_id=st.uuids().map(lambda u: f"urn:uuid:{u}"),
    encounter=st.from_regex(r"Encounter/[A-Za-z0-9\-.]{1,64}", fullmatch=True),
    provider_bin=st.from_regex(r"[0-9]{12}", fullmatch=True), mo_code=_optional_value(FREE),
    patient_iin=st.from_regex(r"[0-9]{12}", fullmatch=True), funding_source=st.sampled_from(FUNDING),
    osms_insured=_optional_value(st.booleans()), service_code=CODE, service_name=_optional_value(FREE),
    icd10_main=ICD, icd10_concomitant=st.lists(ICD, max_size=3).map(tuple),
    icd10_complication=st.lists(ICD, max_size=2).map(tuple), service_start=DATETIME,
    service_end=_optional_value(DATETIME), form_of_care=st.sampled_from(("remote", "ambulatory", "inpatient")),
    remote_service_form=_optional_value(st.sampled_from(("consultation", "consilium", "remote-monitoring"))),
    practitioner_iin=st.from_regex(r"[0-9]{12}", fullmatch=True),
    practitioner_specialty_code=_optional_value(CODE), practitioner_specialty=_optional_value(FREE),
    quantity=st.integers(1, 1000), unit_tariff_kzt=_optional_value(MONEY),
    amount_kzt=_optional_value(MONEY.map(lambda d: d * Decimal(3))), referral_id=_optional_value(FREE),
    nehp_record_id=_optional_value(FREE),
)
