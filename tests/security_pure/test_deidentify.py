"""De-identification for research exports (AC-19): what is removed, pseudonymised, shifted and kept."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_server.security.deidentify import Deidentifier, deidentify, shift_date

SECRET = b"research-export-secret-0001"
IIN_SYSTEM = "https://fhir.kzfhir.kz/sid/iin"


def _patient(pid: str, iin: str, family: str, given: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{family}</div>'},
        "identifier": [{"system": IIN_SYSTEM, "value": iin}],
        "name": [{"family": family, "given": [given]}],
        "telecom": [{"system": "phone", "value": "+77011234567"}],
        "address": [{"line": [f"{family} street 5"], "city": "Almaty", "state": "Almaty", "country": "KZ"}],
        "gender": "female",
        "birthDate": "1985-03-15",
        "photo": [{"contentType": "image/png", "data": "iVBORw0KGgo="}],
    }


def _observation(oid: str, pid: str, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic BP"}]},
        "subject": {"reference": f"Patient/{pid}", "display": "Patient name here"},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": 120,
            "unit": "mmHg",
            "system": "http://unitsofmeasure.org",
            "code": "mm[Hg]",
        },
        "note": [{"text": "Patient called from home"}],
    }


@pytest.mark.req("AC-19")
def test_direct_identifiers_are_removed_and_the_region_is_dropped_by_default() -> None:
    [out] = deidentify([_patient("p1", "850315300019", "Ахметова", "Айгерим")], secret=SECRET)
    assert "name" not in out and "telecom" not in out and "photo" not in out and "text" not in out
    assert out["address"] == [{"country": "KZ"}]
    assert out["identifier"][0]["system"] == IIN_SYSTEM
    assert out["identifier"][0]["value"] != "850315300019"
    assert out["gender"] == "female"
    assert {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "PSEUDED",
    }.items() <= (out["meta"]["security"][0].items())


def test_keep_region_keeps_the_address_state() -> None:
    [out] = deidentify(
        [_patient("p1", "850315300019", "Ахметова", "Айгерим")], secret=SECRET, keep_region=True
    )
    assert out["address"] == [{"state": "Almaty", "country": "KZ"}]


@pytest.mark.req("AC-19")
def test_free_text_is_removed_but_codes_and_quantities_are_kept() -> None:
    obs = _observation("o1", "p1", "2025-01-10T09:00:00+05:00")
    obs["valueString"] = "lives with her sister"
    obs["extension"] = [{"url": "http://example.org/mothers-maiden-name", "valueString": "Иванова"}]
    [out] = deidentify([obs], secret=SECRET)
    assert "note" not in out and "valueString" not in out and "extension" not in out
    assert out["code"] == obs["code"]
    assert out["valueQuantity"] == obs["valueQuantity"]
    assert "display" not in out["subject"]


@pytest.mark.req("AC-19")
def test_same_input_id_maps_to_the_same_pseudonym_across_resources_and_runs() -> None:
    batch = [_patient("p1", "850315300019", "Ахметова", "Айгерим"), _observation("o1", "p1", "2025-01-10")]
    first = deidentify(batch, secret=SECRET)
    second = deidentify(copy.deepcopy(batch), secret=SECRET)
    assert first == second
    assert first[1]["subject"]["reference"] == f"Patient/{first[0]['id']}"
    other = deidentify(batch, secret=b"another-secret-of-16-bytes")
    assert other[0]["id"] != first[0]["id"]


def test_the_same_iin_gets_the_same_pseudonym_wherever_it_appears() -> None:
    consent = {
        "resourceType": "Consent",
        "id": "c1",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"identifier": {"system": IIN_SYSTEM, "value": "850315300019"}},
    }
    patient, out_consent = deidentify(
        [_patient("p1", "850315300019", "Ахметова", "Айгерим"), consent], secret=SECRET
    )
    assert out_consent["patient"]["identifier"]["value"] == patient["identifier"][0]["value"]


@pytest.mark.req("AC-19")
def test_bundle_urn_uuid_references_are_rewritten_consistently_and_contained_references_untouched() -> None:
    patient_url = "urn:uuid:7f0c2f7e-9a3b-4d1e-8f3a-1c2d3e4f5a6b"
    obs = _observation("o1", "x", "2025-01-10")
    obs.pop("id")
    obs["subject"] = {"reference": patient_url}
    obs["contained"] = [{"resourceType": "Device", "id": "dev", "modelNumber": "M3"}]
    obs["device"] = {"reference": "#dev"}
    patient = _patient("p1", "850315300019", "Ахметова", "Айгерим")
    patient.pop("id")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": patient_url, "resource": patient, "request": {"method": "POST", "url": "Patient"}},
            {
                "fullUrl": "urn:uuid:0a1b",
                "resource": obs,
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "resource": _observation("o2", "x", "2025-01-11"),
                "request": {"method": "PUT", "url": "Observation/o2"},
            },
        ],
    }
    [out] = deidentify([bundle], secret=SECRET)
    new_patient_url = out["entry"][0]["fullUrl"]
    assert new_patient_url.startswith("urn:uuid:") and new_patient_url != patient_url
    assert out["entry"][1]["resource"]["subject"]["reference"] == new_patient_url
    assert out["entry"][1]["resource"]["device"] == {"reference": "#dev"}
    assert out["entry"][1]["resource"]["contained"][0]["id"] == "dev"
    assert out["entry"][0]["request"]["url"] == "Patient"
    assert out["entry"][2]["request"]["url"] == f"Observation/{out['entry'][2]['resource']['id']}"


def test_conditional_references_are_replaced_because_they_embed_identifiers() -> None:
    obs = _observation("o1", "p1", "2025-01-10")
    obs["subject"] = {"reference": f"Patient?identifier={IIN_SYSTEM}|850315300019"}
    [out] = deidentify([obs], secret=SECRET)
    assert "850315300019" not in json.dumps(out)
    assert out["subject"]["reference"].startswith("urn:uuid:")


@pytest.mark.req("AC-19")
def test_dates_of_one_patient_move_by_one_offset_including_birth_date() -> None:
    batch = [
        _patient("p1", "850315300019", "Ахметова", "Айгерим"),
        _observation("o1", "p1", "2025-01-10T09:00:00+05:00"),
        _observation("o2", "p1", "2025-02-11T10:30:15.250+05:00"),
    ]
    patient, o1, o2 = deidentify(batch, secret=SECRET)
    shift = Deidentifier(SECRET).shift_days("Patient/p1")
    assert shift != 0
    assert date.fromisoformat(patient["birthDate"]) - date(1985, 3, 15) == timedelta(days=shift)
    assert o1["effectiveDateTime"].endswith("T09:00:00+05:00")
    assert o2["effectiveDateTime"].endswith("T10:30:15.250+05:00")
    gap = datetime.fromisoformat(o2["effectiveDateTime"]) - datetime.fromisoformat(o1["effectiveDateTime"])
    assert gap == datetime.fromisoformat("2025-02-11T10:30:15.250+05:00") - datetime.fromisoformat(
        "2025-01-10T09:00:00+05:00"
    )


def test_partial_dates_keep_their_precision() -> None:
    assert shift_date("2020", 30) == "2020"
    assert shift_date("2020-01", 40) == "2020-02"
    assert shift_date("2020-12-31", 1) == "2021-01-01"
    assert shift_date("2020-02-28T23:59:59Z", 1) == "2020-02-29T23:59:59Z"


def test_an_invalid_date_is_dropped_rather_than_exported_unshifted() -> None:
    obs = _observation("o1", "p1", "2025-13-45")
    [out] = deidentify([obs], secret=SECRET)
    assert "effectiveDateTime" not in out


def test_practitioner_without_patient_is_still_stripped_of_names() -> None:
    practitioner = {
        "resourceType": "Practitioner",
        "id": "dr1",
        "name": [{"family": "Сейткали"}],
        "identifier": [{"system": IIN_SYSTEM, "value": "900101412344"}],
        "birthDate": "1990-01-01",
    }
    [out] = deidentify([practitioner], secret=SECRET)
    assert "Сейткали" not in json.dumps(out, ensure_ascii=False)
    assert out["birthDate"] != "1990-01-01"


def test_invalid_input_is_refused() -> None:
    with pytest.raises(ValueError):
        deidentify([{"resourceType": "NotAResource"}], secret=SECRET)
    with pytest.raises(ValueError):
        deidentify([], secret=b"short")


_LETTERS = st.text(alphabet="абвгдеёжзийклмнопрстуфхцчшщэюяәғқңөұүһі", min_size=6, max_size=12)
_IINS = st.from_regex(r"[0-9]{12}", fullmatch=True)
_DAYS = st.dates(min_value=date(2020, 1, 1), max_value=date(2026, 12, 31))


@pytest.mark.req("AC-19")
@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(_IINS, _LETTERS, _LETTERS, st.lists(_DAYS, min_size=1, max_size=4)),
        min_size=1,
        max_size=4,
        unique_by=lambda p: p[0],
    )
)
def test_no_identifier_leaks_references_resolve_and_intervals_are_preserved(
    people: list[tuple[str, str, str, list[date]]],
) -> None:
    batch: list[dict[str, Any]] = []
    for n, (iin, family, given_name, days) in enumerate(people):
        batch.append(_patient(f"p{n}", iin, family, given_name))
        batch.extend(_observation(f"o{n}-{k}", f"p{n}", d.isoformat()) for k, d in enumerate(days))
    before = copy.deepcopy(batch)
    out = deidentify(batch, secret=SECRET)
    assert batch == before  # the input is not modified
    text = json.dumps(out, ensure_ascii=False)
    for iin, family, given_name, _ in people:
        assert iin not in text and family not in text and given_name not in text
    patient_ids = {r["id"] for r in out if r["resourceType"] == "Patient"}
    by_patient: dict[str, list[tuple[date, date]]] = {}
    for src, res in zip(batch, out, strict=True):
        if res["resourceType"] == "Observation":
            ref = res["subject"]["reference"]
            assert ref.removeprefix("Patient/") in patient_ids
            pair = (
                date.fromisoformat(src["effectiveDateTime"]),
                date.fromisoformat(res["effectiveDateTime"]),
            )
            by_patient.setdefault(ref, []).append(pair)
    for pairs in by_patient.values():
        assert len({new - old for old, new in pairs}) == 1

