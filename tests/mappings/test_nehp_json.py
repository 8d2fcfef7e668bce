"""NEHP adapter ``json``: the message fits the published schema-v1 and carries the MD-D set (TM-11)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

import mappings.nehp as nehp
from mappings import build_record
from mappings.errors import IncompleteRecordError
from mappings.nehp.schema import validate
from tests.mappings.conftest import Resources

SCHEMA_PATH = Path(nehp.__file__).parent / "schema-v1.json"


def _message(resources: Resources) -> dict[str, Any]:
    return dict(orjson.loads(nehp.get_adapter("json").to_message(build_record(resources))))


@pytest.mark.req("TM-11")
@pytest.mark.req("MD-D")
def test_message_of_the_kz_examples_fits_schema_v1(service_set: Resources) -> None:
    message = _message(service_set)
    assert validate(message) == []
    assert message["schema"] == nehp.SCHEMA_ID and message["schemaVersion"] == "1.0.0"


@pytest.mark.req("TM-11")
def test_message_carries_iin_bin_icd10_codes_and_russian_displays(service_set: Resources) -> None:
    message = _message(service_set)
    assert message["patient"] == {"iin": "850315300019", "family": "Серікбаев", "given": "Асхат",
                                  "patronymic": "Маратұлы"}
    assert message["practitioner"]["iin"] == "900101412344"
    assert message["provider"]["bin"] == "150640000010"
    main = message["diagnoses"][0]
    assert main["icd10"]["code"] == "J06.9"
    assert main["icd10"]["display"] == "Острая инфекция верхних дыхательных путей неуточненная"
    assert (main["kind"]["display"], main["type"]["display"], main["character"]["display"]) == (
        "Основной диагноз", "Заключительный диагноз", "Острое")
    assert message["form"]["display"] == "Дистанционная консультация"
    assert message["channel"]["code"] == "video"
    assert message["service"] == {"system": "https://fhir.kzfhir.kz/CodeSystem/kz-service", "code": "A01.001.000",
                                  "display": "Приём: терапевт"}
    assert message["period"] == {"start": "2026-01-20T10:00:00+05:00", "end": "2026-01-20T10:18:00+05:00"}
    assert message["plan"]["nextVisitDate"] == "2026-02-01"
    assert message["documentId"] == nehp.document_id(build_record(service_set))


def test_same_record_gives_the_same_bytes(service_set: Resources) -> None:
    adapter = nehp.get_adapter("json")
    assert adapter.to_message(build_record(service_set)) == adapter.to_message(build_record(service_set))
    assert adapter.media_type.startswith("application/vnd.kzfhir.nehp-record+json")


@pytest.mark.req("MD-D")
def test_record_with_missing_items_is_not_written(service_set: Resources) -> None:
    service_set.pop("Patient/kz-patient-1")
    record = build_record(service_set)
    with pytest.raises(IncompleteRecordError) as caught:
        nehp.get_adapter("json").to_message(record)
    assert caught.value.issues[0].diagnostics.startswith("MD-D 3 ")


def test_malformed_date_from_an_unvalidated_input_is_refused(service_set: Resources) -> None:
    service_set["Encounter/kz-encounter-1"]["period"]["end"] = "yesterday"
    with pytest.raises(IncompleteRecordError, match="period/end"):
        nehp.get_adapter("json").to_message(build_record(service_set))


def test_schema_file_is_a_draft_2020_12_schema_whose_refs_resolve() -> None:
    schema = json.loads(SCHEMA_PATH.read_text("utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == nehp.SCHEMA_ID
    refs = {m.split("/")[-1] for m in _refs(schema)}
    assert refs <= set(schema["$defs"])


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@pytest.mark.parametrize(("change", "expected"), [
    (lambda m: m["patient"].update(iin="85031530001"), "/patient/iin"),
    (lambda m: m.pop("conclusion"), "/conclusion: required"),
    (lambda m: m.update(extra=1), "/extra: property is not allowed"),
    (lambda m: m.update(diagnoses=[]), "/diagnoses: needs at least 1"),
    (lambda m: m["diagnoses"][0].update(rank="1"), "/diagnoses/0/rank: expected integer"),
    (lambda m: m.update(status="done"), "/status"),
    (lambda m: m.update(plan={}), "/plan: needs at least 1"),
    (lambda m: m.update(schemaVersion="2.0.0"), "/schemaVersion: must be"),
])
def test_schema_validator_reports_each_violation(service_set: Resources, change: Any, expected: str) -> None:
    message = _message(service_set)
    change(message)
    assert any(expected in problem for problem in validate(message))


def test_schema_validator_refuses_keywords_it_does_not_implement() -> None:
    with pytest.raises(ValueError, match="oneOf"):
        validate({}, {"oneOf": [{"type": "string"}]})


@pytest.mark.req("TM-10")
def test_provenance_signature_over_the_record_is_referenced(service_set: Resources) -> None:
    service_set["Provenance/sig-1"] = {
        "resourceType": "Provenance", "id": "sig-1", "recorded": "2026-01-20T10:19:00+05:00",
        "target": [{"reference": "Composition/kz-consult-note-1"}],
        "agent": [{"who": {"reference": "Practitioner/kz-practitioner-1"}}],
        "signature": [{"type": [{"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1"}],
                       "when": "2026-01-20T10:19:00+05:00", "who": {"reference": "Practitioner/kz-practitioner-1"},
                       "sigFormat": "application/jose", "data": "ZXhhbXBsZQ=="}],
    }
    assert _message(service_set)["signatures"] == [{
        "provenance": "Provenance/sig-1", "target": "Composition/kz-consult-note-1",
        "who": "Practitioner/kz-practitioner-1", "when": "2026-01-20T10:19:00+05:00", "sigFormat": "application/jose"}]
