"""NEHP adapter ``fhir-document``: a valid R4 document Bundle the doctor signs with EDS (TM-10, TM-11)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings

import mappings.nehp as nehp
from fhir_server.validation import get_structure_validator
from mappings import RemoteServiceRecord, build_record
from mappings.codes import CS_MDD_ITEM
from mappings.errors import IncompleteRecordError
from signing import RevocationPolicy, Signer, TrustStore, init_pki, load_signer, sign_bundle, verify_fhir_signature
from tests.mappings.conftest import Resources
from tests.mappings.strategies import service_sets

BASE = "https://mis.example.kz/fhir"
TEST_PKI_DOCTOR_IIN = "123456789011"  # the doctor of signing.init_pki (checksum-invalid, kz-domain.md §1.3)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Signer, TrustStore]:
    directory = tmp_path_factory.mktemp("pki")
    init_pki(directory)
    signer = load_signer(directory / "doctor.key.pem", directory / "doctor.cert.pem")
    return signer, TrustStore.from_directory(directory / "trust", RevocationPolicy(mode="hard"))


def _bundle(resources: Resources, **options: Any) -> dict[str, Any]:
    adapter = nehp.get_adapter("fhir-document", base_url=BASE)
    assert isinstance(adapter, nehp.FhirDocumentAdapter)
    return adapter.to_bundle(build_record(resources, **options))


def _signed_record(resources: Resources) -> RemoteServiceRecord:
    """The service as signed by the test PKI's doctor (the record names the certificate's IIN)."""
    resources["Practitioner/kz-practitioner-1"]["identifier"][0]["value"] = TEST_PKI_DOCTOR_IIN
    return build_record(resources, relaxed_iin=True)


@pytest.mark.req("TM-11")
@pytest.mark.req("TM-10")
def test_document_bundle_passes_the_structure_validator(service_set: Resources) -> None:
    bundle = _bundle(service_set)
    assert get_structure_validator().validate(bundle) == []
    assert bundle["type"] == "document" and bundle["timestamp"] == "2026-01-20T10:18:00+05:00"
    assert bundle["identifier"]["value"].startswith("urn:uuid:")


@pytest.mark.req("MD-D")
def test_composition_comes_first_with_one_coded_section_per_md_d_item(service_set: Resources) -> None:
    composition = _bundle(service_set)["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition" and composition["status"] == "final"
    codes = [s["code"]["coding"][0] for s in composition["section"]]
    assert [(c["system"], c["code"]) for c in codes] == [(CS_MDD_ITEM, str(n)) for n in range(1, 14)]
    patient = composition["section"][2]
    assert "Серікбаев Асхат Маратұлы, ИИН 850315300019" in patient["text"]["div"]
    assert patient["entry"] == [{"reference": "Patient/kz-patient-1"}]
    assert composition["attester"] == [{"mode": "legal", "party": {"reference": "Practitioner/kz-practitioner-1"}}]


@pytest.mark.req("TM-11")
@settings(max_examples=30, deadline=None)
@given(resources=service_sets())
def test_document_of_any_valid_service_passes_the_structure_validator(resources: Resources) -> None:
    assert get_structure_validator().validate(_bundle(resources)) == []


def test_every_reference_of_the_composition_resolves_inside_the_bundle(service_set: Resources) -> None:
    bundle = _bundle(service_set)
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    composition = bundle["entry"][0]["resource"]
    refs = [composition["subject"], composition["encounter"], *composition["author"], composition["custodian"]]
    refs += [entry for section in composition["section"] for entry in section.get("entry", [])]
    assert {f"{BASE}/{r['reference']}" for r in refs} <= full_urls
    assert len(full_urls) == len(bundle["entry"])


def test_billing_resources_stay_out_of_the_clinical_document(service_set: Resources) -> None:
    types = {e["resource"]["resourceType"] for e in _bundle(service_set)["entry"]}
    assert not types & {"Coverage", "ChargeItem", "Claim", "Provenance"}


def test_unneeded_optional_item_has_an_empty_reason(example_set: Resources) -> None:
    kept = {k: v for k, v in example_set.items() if not k.startswith("DocumentReference")}
    section = _bundle(kept)["entry"][0]["resource"]["section"][11]
    assert section["emptyReason"]["coding"][0]["code"] == "nilknown" and "entry" not in section


def test_document_needs_an_instant_for_its_timestamp(service_set: Resources) -> None:
    service_set["Encounter/kz-encounter-1"]["period"] = {"start": "2026-01-20"}
    service_set["Encounter/kz-encounter-1"]["status"] = "in-progress"
    with pytest.raises(IncompleteRecordError, match="bdl-10"):
        _bundle(service_set)


@pytest.mark.req("TM-10")
async def test_document_is_signed_by_the_caller_and_verifies(service_set: Resources,
                                                              pki: tuple[Signer, TrustStore]) -> None:
    signer, trust = pki
    record = _signed_record(service_set)
    assert record.practitioner is not None
    bundle = nehp.FhirDocumentAdapter(BASE).to_bundle(record)
    for fmt in ("jws", "cms"):
        signed = await sign_bundle(bundle, signer, fmt, {"reference": record.practitioner.person.reference})
        status = await verify_fhir_signature(signed, signed["signature"], trust,
                                             expected_iin=record.practitioner.person.iin)
        assert status.ok, status.findings
        assert get_structure_validator().validate(signed) == []


@pytest.mark.req("TM-10")
async def test_changed_document_no_longer_verifies(service_set: Resources, pki: tuple[Signer, TrustStore]) -> None:
    signer, trust = pki
    record = _signed_record(service_set)
    signed = await sign_bundle(nehp.FhirDocumentAdapter(BASE).to_bundle(record), signer, "jws",
                               "Practitioner/kz-practitioner-1")
    tampered = copy.deepcopy(signed)
    tampered["entry"][0]["resource"]["section"][7]["text"]["div"] = (
        '<div xmlns="http://www.w3.org/1999/xhtml"><p>Здоров</p></div>')
    assert not (await verify_fhir_signature(tampered, tampered["signature"], trust)).ok


def test_to_message_is_the_json_of_the_bundle(service_set: Resources) -> None:
    adapter = nehp.FhirDocumentAdapter(BASE)
    record = build_record(service_set)
    assert orjson.loads(adapter.to_message(record)) == adapter.to_bundle(record)
    assert adapter.media_type.startswith("application/fhir+json")


class _TextAdapter:
    """An operator's own format: the smallest thing that satisfies NehpAdapter."""

    name = "text"
    media_type = "text/plain"

    def to_message(self, record: RemoteServiceRecord) -> bytes:
        return f"{record.record_id} {record.patient.iin if record.patient else ''}".encode()


def test_operator_plugs_in_another_adapter(service_set: Resources) -> None:
    nehp.register_adapter("text", _TextAdapter, replace=True)
    assert "text" in nehp.adapter_names()
    message = nehp.get_adapter("text").to_message(build_record(service_set))
    assert message.endswith(b" 850315300019")
    with pytest.raises(ValueError, match="already registered"):
        nehp.register_adapter("json", _TextAdapter)
    with pytest.raises(KeyError, match="no NEHP adapter"):
        nehp.get_adapter("cda")


def test_schema_ships_with_the_package() -> None:
    assert (Path(nehp.__file__).parent / "schema-v1.json").is_file()
    assert nehp.load_schema()["title"].endswith("[proposal]")
