"""FHIR Signature elements on Bundles and Provenance targets (TM-10, AC-25): every format, every refusal."""

from __future__ import annotations

import asyncio
import base64
import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signing import (
    AUTHOR_SIGNATURE,
    Reason,
    Signer,
    TrustStore,
    sign_bundle,
    sign_resource,
    verify_fhir_signature,
)
from tests.signing.samples import make_document_bundle

pytestmark = [pytest.mark.req("TM-10"), pytest.mark.req("AC-25")]
FORMATS = ["jws", "cms", "xml"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["doctor", "doctor-ec"])
async def test_signed_bundle_round_trips(
    trust: TrustStore,
    signer_for: Callable[[str], Signer],
    document_bundle: dict[str, Any],
    fmt: str,
    name: str,
) -> None:
    signed = await sign_bundle(document_bundle, signer_for(name), fmt, "Practitioner/d1")  # type: ignore[arg-type]
    signature = signed["signature"]
    assert (
        signature["sigFormat"]
        == {
            "jws": "application/jose",
            "cms": "application/pkcs7-signature",
            "xml": "application/signature+xml",
        }[fmt]
    )
    assert signature["type"] == [AUTHOR_SIGNATURE] and signature["who"] == {"reference": "Practitioner/d1"}
    assert signature["targetFormat"].endswith(
        "canonicalization/" + ("xml" if fmt == "xml" else "json") + "#document"
    )
    status = await verify_fhir_signature(signed, signature, trust, expected_iin=status_iin(name))
    assert status.ok, status.summary()
    assert document_bundle.get("signature") is None  # input not modified


def status_iin(name: str) -> str:
    return {"doctor": "123456789011", "doctor-ec": "123456789012"}[name]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_document_signature_survives_a_new_server_id_and_meta(
    trust: TrustStore, signer_for: Callable[[str], Signer], document_bundle: dict[str, Any], fmt: str
) -> None:
    signed = await sign_bundle(document_bundle, signer_for("doctor"), fmt, "Practitioner/d1")  # type: ignore[arg-type]
    moved = {
        **signed,
        "id": "copied-elsewhere",
        "meta": {"versionId": "7", "lastUpdated": "2026-01-01T00:00:00Z"},
    }
    assert (await verify_fhir_signature(moved, signed["signature"], trust)).ok


@pytest.mark.parametrize("fmt", FORMATS)
async def test_changed_entry_value_fails_in_every_format(
    trust: TrustStore, signer_for: Callable[[str], Signer], document_bundle: dict[str, Any], fmt: str
) -> None:
    signed = await sign_bundle(document_bundle, signer_for("doctor"), fmt, "Practitioner/d1")  # type: ignore[arg-type]
    tampered = copy.deepcopy(signed)
    tampered["entry"][3]["resource"]["valueQuantity"]["value"] = 39.1
    status = await verify_fhir_signature(tampered, signed["signature"], trust)
    assert not status.ok and not status.intact
    assert status.reasons[0] in (Reason.DIGEST_MISMATCH, Reason.SIGNATURE_MISMATCH)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("expired", Reason.CERT_EXPIRED),
        ("revoked", Reason.REVOKED),
        ("untrusted", Reason.UNTRUSTED_CHAIN),
        ("doctor-auth", Reason.WRONG_KEY_USAGE),
    ],
)
async def test_bad_signer_certificates_are_refused_with_distinct_reasons(
    trust: TrustStore,
    signer_for: Callable[[str], Signer],
    document_bundle: dict[str, Any],
    name: str,
    reason: Reason,
) -> None:
    signed = await sign_bundle(document_bundle, signer_for(name), "jws", "Practitioner/d1")
    status = await verify_fhir_signature(signed, signed["signature"], trust)
    assert status.reasons == (reason,)


async def test_signer_must_be_the_named_practitioner_and_organisation(
    trust: TrustStore, signer_for: Callable[[str], Signer], document_bundle: dict[str, Any]
) -> None:
    signed = await sign_bundle(document_bundle, signer_for("employee"), "cms", "Practitioner/d1")
    signature = signed["signature"]
    ok = await verify_fhir_signature(signed, signature, trust, "123456789013", "123456789021")
    wrong_person = await verify_fhir_signature(signed, signature, trust, expected_iin="123456789011")
    wrong_org = await verify_fhir_signature(signed, signature, trust, expected_bin="123456789022")
    assert (
        ok.ok
        and wrong_person.reasons == (Reason.IIN_MISMATCH,)
        and wrong_org.reasons == (Reason.BIN_MISMATCH,)
    )


async def test_provenance_signature_covers_its_target(
    trust: TrustStore, signer_for: Callable[[str], Signer], document_bundle: dict[str, Any]
) -> None:
    target = document_bundle["entry"][0]["resource"]  # the Composition
    signature = await sign_resource(target, signer_for("doctor"), "cms", "Practitioner/d1")
    provenance = {
        "resourceType": "Provenance",
        "target": [{"reference": "Composition/c1"}],
        "recorded": signature["when"],
        "agent": [{"who": {"reference": "Practitioner/d1"}}],
        "signature": [signature],
    }
    assert (await verify_fhir_signature(target, provenance["signature"][0], trust, "123456789011")).ok
    changed = {**target, "title": "Другое"}
    assert (await verify_fhir_signature(changed, signature, trust)).reasons == (Reason.DIGEST_MISMATCH,)


async def test_unsupported_format_and_bad_data_are_reported(
    trust: TrustStore, document_bundle: dict[str, Any]
) -> None:
    image = {"sigFormat": "image/png", "data": base64.b64encode(b"x").decode()}
    bad_b64 = {"sigFormat": "application/jose", "data": "***"}
    empty = {"sigFormat": "application/pkcs7-signature", "data": ""}
    assert (await verify_fhir_signature(document_bundle, image, trust)).reasons == (
        Reason.UNSUPPORTED_ALGORITHM,
    )
    assert (await verify_fhir_signature(document_bundle, bad_b64, trust)).reasons == (Reason.MALFORMED,)
    assert (await verify_fhir_signature(document_bundle, empty, trust)).reasons == (Reason.MALFORMED,)
    not_xml = {"sigFormat": "application/signature+xml", "data": base64.b64encode(b"garbage").decode()}
    assert (await verify_fhir_signature(document_bundle, not_xml, trust)).reasons == (Reason.MALFORMED,)


async def test_unknown_canonicalization_is_malformed(
    trust: TrustStore, signer_for: Callable[[str], Signer], document_bundle: dict[str, Any]
) -> None:
    signed = await sign_bundle(document_bundle, signer_for("doctor"), "jws", "Practitioner/d1")
    signature = {**signed["signature"], "targetFormat": "application/fhir+json;canonicalization=urn:x"}
    assert (await verify_fhir_signature(signed, signature, trust)).reasons == (Reason.MALFORMED,)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _paths(v, (*prefix, i))]
    return [prefix]


_BUNDLE = make_document_bundle()
_LEAVES = [p for p in _paths(_BUNDLE) if p[0] not in ("id", "meta")]


@pytest.fixture(scope="module")
def signed_cms_bundle(signer_for: Callable[[str], Signer]) -> dict[str, Any]:
    return asyncio.run(sign_bundle(_BUNDLE, signer_for("doctor"), "cms", "Practitioner/d1"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(_LEAVES), replacement=st.one_of(st.text(max_size=5), st.integers(), st.booleans())
)
async def test_any_changed_value_in_a_signed_bundle_fails(
    trust: TrustStore, signed_cms_bundle: dict[str, Any], path: tuple[Any, ...], replacement: Any
) -> None:
    tampered = copy.deepcopy(signed_cms_bundle)
    node = tampered
    for key in path[:-1]:
        node = node[key]
    if node[path[-1]] == replacement and type(node[path[-1]]) is type(replacement):
        replacement = f"{replacement}!"
    node[path[-1]] = replacement
    status = await verify_fhir_signature(tampered, signed_cms_bundle["signature"], trust)
    assert status.reasons == (Reason.DIGEST_MISMATCH,)


async def test_refusal_renders_as_operation_outcome_issues(
    trust: TrustStore, signer_for: Callable[[str], Signer], document_bundle: dict[str, Any]
) -> None:
    signed = await sign_bundle(document_bundle, signer_for("doctor"), "jws", "Practitioner/d1")
    status = await verify_fhir_signature(signed, signed["signature"], trust, expected_iin="123456789099")
    (issue,) = status.to_issues()
    assert issue["severity"] == "error" and issue["code"] == "security"
    assert issue["details"]["coding"][0]["code"] == "iin-mismatch" and "123456789099" in issue["diagnostics"]
