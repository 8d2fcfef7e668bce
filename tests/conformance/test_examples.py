"""The pure parts of the kit: example rewriting, fresh IINs, token claims, ids from answers."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.consent import access_consent, grantees, unverified_claims
from conformance.examples import IIN_SYSTEM, Ref, fresh_iin, parse_ref, references, rewrite, valid_example
from conformance.fixtures import created_id
from conformance.registry import registered
from conformance.validation import kz_profile_issues
from profiles.identifiers import is_valid_iin

EXAMPLE_IINS = ["850315300019", "900101412344", "040229500421", "151231699999", "850315301801"]


@settings(max_examples=60, deadline=None)
@given(original=st.sampled_from(EXAMPLE_IINS), seed=st.integers(0, 2**32))
def test_fresh_iin_is_valid_new_and_keeps_birth_date_and_sex(original: str, seed: int) -> None:
    iin = fresh_iin(original, random.Random(seed))
    assert is_valid_iin(iin) and iin != original and iin[:7] == original[:7]


def test_rewrite_retargets_references_versions_and_iins_without_touching_the_source() -> None:
    appointment = valid_example("Appointment/kz-appointment-1")
    assert appointment is not None
    audit = {"entity": [{"what": {"reference": "Patient/kz-patient-1/_history/2"}}]}
    ids = {"Patient/kz-patient-1": "p-9", "Practitioner/kz-practitioner-1": "dr-9"}

    def target(ref: Ref) -> str | None:
        return f"{ref.type}/{ids[ref.key]}" if ref.key in ids else None

    out = rewrite(appointment, target, {"850315300019": "850315354246"})
    actors = [p["actor"] for p in out["participant"]]
    assert [a["reference"] for a in actors] == ["Patient/p-9", "Practitioner/dr-9"]
    assert actors[0]["identifier"] == {"system": IIN_SYSTEM, "value": "850315354246"}
    assert "id" not in out and appointment["id"] == "kz-appointment-1"
    assert rewrite(audit, target, {})["entity"][0]["what"]["reference"] == "Patient/p-9/_history/1"


def test_parse_ref_accepts_relative_literal_references_only() -> None:
    assert parse_ref("Patient/kz-patient-1/_history/2") == Ref("Patient", "kz-patient-1", "/_history/2")
    assert parse_ref("urn:uuid:1234") is None and parse_ref("http://x.kz/Patient/1") is None
    found = references({"a": [{"reference": "Group/g1"}, {"reference": "#c"}]})
    assert [r.key for r in found] == ["Group/g1"]


def test_unverified_claims_reads_a_jwt_payload_and_ignores_anything_else() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"bin": "940140000385"}).encode()).rstrip(b"=").decode()
    assert unverified_claims(f"e30.{payload}.sig") == {"bin": "940140000385"}
    assert unverified_claims("not-a-jwt") == {} and unverified_claims("a.!!!.c") == {}
    assert unverified_claims(None) == {}


def test_access_consent_is_a_valid_kz_consent_granting_the_token_organisation() -> None:
    template = valid_example("Consent/kz-consent-1")
    assert template is not None
    template.pop("sourceReference")
    actors = grantees({"bin": "940140000385", "fhirUser": "Practitioner/7"}, None)
    consent = access_consent(template, "Patient/p-1", actors)
    assert [i for i in kz_profile_issues(consent) if i.is_error] == []
    granted = [a["reference"] for a in consent["provision"]["actor"]]
    assert granted == [{"identifier": {"system": "https://fhir.kzfhir.kz/sid/bin", "value": "940140000385"}},
                       {"reference": "Practitioner/7"}]
    assert consent["status"] == "active" and consent["performer"] == [{"reference": "Patient/p-1"}]


def test_created_id_comes_from_the_body_or_else_the_location_header() -> None:
    assert created_id(httpx.Response(201, json={"resourceType": "Patient", "id": "b1"})) == "b1"
    located = httpx.Response(201, headers={"Location": "https://mis.kz/fhir/Patient/l2/_history/1"})
    assert created_id(located) == "l2"
    assert created_id(httpx.Response(200, json={})) is None


def test_every_check_has_a_unique_id_a_title_and_covers_something() -> None:
    checks = registered()
    assert len({c.id for c in checks}) == len(checks) >= 60
    assert all(c.title and c.covers for c in checks)


def test_every_check_is_listed_in_the_kit_documentation() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "conformance-kit.md").read_text(encoding="utf-8")
    missing = [c.id for c in registered() if f"| {c.id} |" not in docs]
    assert missing == []
