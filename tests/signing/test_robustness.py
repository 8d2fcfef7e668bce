"""Verification never raises: arbitrary or truncated input yields a refusal, not an exception."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signing import (
    Signer,
    TrustStore,
    sign_bundle,
    sign_cms,
    verify_cms,
    verify_fhir_signature,
    verify_jws,
    verify_pdf,
    verify_xml,
)
from tests.signing.samples import make_document_bundle

_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def signed_cms(signer_for: Callable[[str], Signer]) -> bytes:
    return asyncio.run(sign_cms(b"content", signer_for("doctor")))


@_SETTINGS
@given(data=st.binary(max_size=300))
async def test_random_bytes_are_refused_by_every_verifier(trust: TrustStore, data: bytes) -> None:
    statuses = [
        await verify_cms(data, b"content", trust),
        await verify_jws(data.decode("latin-1"), b"content", trust),
        await verify_xml(data, trust),
        *(await verify_pdf(data, trust)),
    ]
    assert all(not s.ok and s.reasons for s in statuses)


@_SETTINGS
@given(cut=st.integers(min_value=1, max_value=2000), flip=st.integers(min_value=0, max_value=2000))
async def test_truncated_or_flipped_cms_is_refused(
    trust: TrustStore, signed_cms: bytes, cut: int, flip: int
) -> None:
    truncated = signed_cms[: len(signed_cms) - cut % len(signed_cms)]
    index = flip % len(signed_cms)
    flipped = signed_cms[:index] + bytes([signed_cms[index] ^ 0x5A]) + signed_cms[index + 1 :]
    assert not (await verify_cms(truncated, b"content", trust)).ok
    status = await verify_cms(flipped, b"content", trust)
    # A flip inside an unsigned part (e.g. an embedded CA certificate's unused bits) may still verify;
    # either way the verifier answers instead of raising.
    assert status.ok or status.reasons


@_SETTINGS
@given(
    data=st.binary(max_size=200),
    fmt=st.sampled_from(["application/jose", "application/pkcs7-signature", "application/signature+xml"]),
)
async def test_random_signature_elements_are_refused(trust: TrustStore, data: bytes, fmt: str) -> None:
    signature = {"sigFormat": fmt, "data": base64.b64encode(data).decode()}
    status = await verify_fhir_signature(make_document_bundle(), signature, trust)
    assert not status.ok and status.reasons


async def test_signature_element_of_another_bundle_is_refused(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    signed = await sign_bundle(make_document_bundle(), signer_for("doctor"), "jws", "Practitioner/d1")
    other = {**make_document_bundle(), "type": "collection"}
    assert not (await verify_fhir_signature(other, signed["signature"], trust)).ok
