"""Payment system (ГОБМП / ОСМС): FHIR → claim line → CSV/JSON, and claim line ⇄ FHIR Claim (TM-19)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_server.validation import get_structure_validator
from mappings.payment import (
    COLUMNS,
    ClaimLine,
    claim_line_from_fhir,
    claim_to_line,
    from_csv,
    from_json,
    line_to_claim,
    to_csv,
    to_json,
)
from tests.mappings.conftest import Resources
from tests.mappings.strategies import claim_lines


def _line(resources: Resources) -> ClaimLine:
    result = claim_line_from_fhir(resources)
    assert result.issues == () and result.line is not None
    return result.line


@pytest.mark.req("TM-19")
def test_claim_line_of_the_kz_examples(service_set: Resources) -> None:
    line = _line(service_set)
    assert (line.provider_bin, line.patient_iin, line.practitioner_iin) == ("150640000010", "850315300019",
                                                                            "900101412344")
    assert (line.funding_source, line.osms_insured) == ("osms", True)
    assert (line.service_code, line.service_name) == ("A01.001.000", "Приём: терапевт")
    assert (line.icd10_main, line.icd10_concomitant, line.icd10_complication) == ("J06.9", ("I10",), ())
    assert (line.form_of_care, line.remote_service_form) == ("remote", "consultation")
    assert (line.quantity, line.unit_tariff_kzt, line.amount_kzt) == (1, Decimal("4520.50"), Decimal("4520.50"))
    assert line.referral_id == "НП-2026-0042" and line.practitioner_specialty == "Терапевт"
    assert line.service_start == "2026-01-20T10:00:00+05:00" and line.service_end == "2026-01-20T10:18:00+05:00"


@pytest.mark.req("TM-19")
def test_every_claim_value_names_its_fhir_source(service_set: Resources) -> None:
    result = claim_line_from_fhir(service_set)
    assert result.line is not None
    filled = {name for name in COLUMNS if getattr(result.line, name) not in (None, ())}
    named = {key.split("[")[0] for key in result.sources}
    assert filled <= named
    assert str(result.sources["icd10_concomitant[0]"]) == "Condition/kz-condition-2: Condition.code.coding[0].code"
    assert result.sources["amount_kzt"].rule == "priceOverride.value × quantity.value"


@pytest.mark.req("TM-19")
def test_missing_provider_gives_an_issue_and_no_line(example_set: Resources) -> None:
    result = claim_line_from_fhir(example_set)  # the IG example Encounter names no serviceProvider
    assert result.line is None
    assert [i.diagnostics for i in result.issues] == ["claim line: provider_bin is missing (TM-19)"]


def test_invalid_patient_iin_blocks_the_line(service_set: Resources) -> None:
    service_set["Patient/kz-patient-1"]["identifier"][0]["value"] = "850315300018"
    result = claim_line_from_fhir(service_set)
    assert result.line is None and result.issues[0].expression == "Patient.identifier[0].value"


def test_two_main_diagnoses_are_refused(service_set: Resources) -> None:
    second = service_set["Encounter/kz-encounter-1"]["diagnosis"][1]
    second["extension"][0]["valueCoding"]["code"] = "main"
    result = claim_line_from_fhir(service_set)
    assert result.line is None and "more than one diagnosis" in result.issues[0].diagnostics


def test_amounts_in_another_currency_are_refused(service_set: Resources) -> None:
    service_set["ChargeItem/kz-charge-1"]["priceOverride"]["currency"] = "USD"
    result = claim_line_from_fhir(service_set)
    assert result.line is None and "KZT" in result.issues[0].diagnostics


def test_without_charge_item_quantity_is_one_and_amounts_are_empty(service_set: Resources) -> None:
    del service_set["ChargeItem/kz-charge-1"]
    result = claim_line_from_fhir(service_set)
    assert result.line is not None and (result.line.quantity, result.line.amount_kzt) == (1, None)
    assert result.sources["quantity"].rule == "one remote-service Encounter is one service"


@pytest.mark.req("TM-19")
def test_csv_has_a_header_in_column_order_and_one_row_per_line(service_set: Resources) -> None:
    text = to_csv([_line(service_set)])
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 2
    row = dict(zip(COLUMNS, rows[1], strict=True))
    assert (row["provider_bin"], row["osms_insured"], row["icd10_concomitant"], row["mo_code"]) == (
        "150640000010", "1", "I10", "")
    assert COLUMNS[:4] == ("line_id", "record_id", "encounter", "provider_bin")


def test_json_keeps_money_as_decimal_strings(service_set: Resources) -> None:
    obj = to_json(_line(service_set))
    assert list(obj) == [c for c in COLUMNS if c in obj]
    assert obj["unit_tariff_kzt"] == "4520.5" and obj["icd10_concomitant"] == ["I10"]


@pytest.mark.req("TM-19")
def test_claim_passes_the_structure_validator(service_set: Resources) -> None:
    claim = line_to_claim(_line(service_set))
    assert get_structure_validator().validate(claim) == []
    assert claim["total"] == {"value": 4520.5, "currency": "KZT"}
    assert claim["contained"][0]["identifier"] == [{"system": "https://fhir.kzfhir.kz/sid/bin",
                                                    "value": "150640000010"}]


@pytest.mark.req("TM-19")
@settings(max_examples=150, deadline=None)
@given(line=claim_lines)
def test_claim_line_to_claim_and_back_is_identity(line: ClaimLine) -> None:
    stored = orjson.loads(orjson.dumps(line_to_claim(line)))  # as the server would store and read it
    assert claim_to_line(stored) == line


@settings(max_examples=60, deadline=None)
@given(line=claim_lines)
def test_every_generated_claim_is_structurally_valid_r4(line: ClaimLine) -> None:
    assert get_structure_validator().validate(line_to_claim(line)) == []


@pytest.mark.req("TM-19")
@settings(max_examples=100, deadline=None)
@given(lines=st.lists(claim_lines, max_size=4))
def test_csv_and_json_round_trip(lines: list[ClaimLine]) -> None:
    assert from_csv(to_csv(lines)) == lines
    assert from_csv(to_csv(lines, delimiter=","), delimiter=",") == lines
    assert [from_json(orjson.loads(orjson.dumps(to_json(x)))) for x in lines] == lines


def test_claim_without_main_diagnosis_cannot_be_read(service_set: Resources) -> None:
    claim = line_to_claim(_line(service_set))
    claim["diagnosis"] = claim["diagnosis"][1:]
    with pytest.raises(ValueError, match="main diagnosis"):
        claim_to_line(claim)


def test_csv_with_another_header_is_refused() -> None:
    with pytest.raises(ValueError, match="header row"):
        from_csv("a;b\r\n1;2\r\n")
