"""CMS / CAdES-BES detached (application/pkcs7-signature): round trip, refusal reasons, OpenSSL interop."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives.serialization import Encoding

from signing import Expectations, Reason, Signer, TrustStore, sign_cms, verify_cms

pytestmark = pytest.mark.req("AC-25")
CONTENT = b'{"entry":[],"resourceType":"Bundle","type":"document"}'


@pytest.mark.parametrize("name", ["doctor", "doctor-ec"])
async def test_cms_round_trip_verifies(
    trust: TrustStore, signer_for: Callable[[str], Signer], name: str
) -> None:
    status = await verify_cms(await sign_cms(CONTENT, signer_for(name)), CONTENT, trust)
    assert status.ok, status.summary()
    assert status.signing_time is not None and status.certificate_pem and status.iin


async def test_cms_carries_the_cades_bes_signed_attributes(signer_for: Callable[[str], Signer]) -> None:
    signer = signer_for("doctor")
    signed_data = cms.ContentInfo.load(await sign_cms(CONTENT, signer))["content"]
    assert signed_data["encap_content_info"]["content"].native is None  # detached
    attrs = {a["type"].native: a["values"][0] for a in signed_data["signer_infos"][0]["signed_attrs"]}
    assert set(attrs) == {"content_type", "message_digest", "signing_time", "signing_certificate_v2"}
    assert attrs["message_digest"].native == hashlib.sha256(CONTENT).digest()
    ess = attrs["signing_certificate_v2"]["certs"][0]
    assert ess["cert_hash"].native == hashlib.sha256(signer.signing_cert.public_bytes(Encoding.DER)).digest()


async def test_any_changed_byte_of_the_content_is_a_digest_mismatch(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    signature = await sign_cms(CONTENT, signer_for("doctor"))
    for i in range(len(CONTENT)):
        changed = CONTENT[:i] + bytes([CONTENT[i] ^ 0x20]) + CONTENT[i + 1 :]
        status = await verify_cms(signature, changed, trust)
        assert status.reasons == (Reason.DIGEST_MISMATCH,) and not status.intact


async def test_corrupted_signature_value_is_a_signature_mismatch(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    info = cms.ContentInfo.load(await sign_cms(CONTENT, signer_for("doctor")))
    signer_info = info["content"]["signer_infos"][0]
    value = bytearray(signer_info["signature"].native)
    value[10] ^= 0xFF
    signer_info["signature"] = bytes(value)
    status = await verify_cms(info.dump(force=True), CONTENT, trust)
    assert status.intact and not status.valid and status.reasons == (Reason.SIGNATURE_MISMATCH,)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("expired", Reason.CERT_EXPIRED),
        ("not-yet-valid", Reason.CERT_NOT_YET_VALID),
        ("revoked", Reason.REVOKED),
        ("untrusted", Reason.UNTRUSTED_CHAIN),
        ("doctor-auth", Reason.WRONG_KEY_USAGE),
    ],
)
async def test_bad_certificates_are_refused_with_distinct_reasons(
    trust: TrustStore, signer_for: Callable[[str], Signer], name: str, reason: Reason
) -> None:
    status = await verify_cms(await sign_cms(CONTENT, signer_for(name)), CONTENT, trust)
    assert status.intact and status.valid and not status.ok
    assert status.reasons == (reason,), status.summary()


async def test_iin_and_bin_must_match_the_named_signer(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    signature = await sign_cms(CONTENT, signer_for("employee"))
    good = await verify_cms(signature, CONTENT, trust, Expectations(iin="123456789013", bin="123456789021"))
    wrong_iin = await verify_cms(signature, CONTENT, trust, Expectations(iin="123456789011"))
    wrong_bin = await verify_cms(signature, CONTENT, trust, Expectations(bin="999999999999"))
    assert good.ok and (good.iin, good.bin) == ("123456789013", "123456789021")
    assert wrong_iin.reasons == (Reason.IIN_MISMATCH,) and wrong_bin.reasons == (Reason.BIN_MISMATCH,)


async def test_malformed_input_is_reported_not_raised(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    assert (await verify_cms(b"not der", CONTENT, trust)).reasons == (Reason.MALFORMED,)
    detached = await sign_cms(CONTENT, signer_for("doctor"))
    missing = await verify_cms(detached, None, trust)
    assert missing.reasons == (Reason.MALFORMED,) and "no content" in missing.findings[0].message


async def test_without_trust_store_signature_is_intact_but_untrusted(
    signer_for: Callable[[str], Signer],
) -> None:
    status = await verify_cms(await sign_cms(CONTENT, signer_for("doctor")), CONTENT, None)
    assert status.intact and status.valid and status.reasons == (Reason.UNTRUSTED_CHAIN,)


# --- OpenSSL interoperability (openssl 3 via subprocess) ---------------------------------------------------


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)


@pytest.mark.parametrize("name", ["doctor", "doctor-ec"])
async def test_openssl_cms_verify_accepts_our_signature(
    openssl: str, pki_dir: Path, tmp_path: Path, signer_for: Callable[[str], Signer], name: str
) -> None:
    (tmp_path / "data").write_bytes(CONTENT)
    (tmp_path / "sig.der").write_bytes(await sign_cms(CONTENT, signer_for(name)))
    result = _run(
        [
            openssl,
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "sig.der"),
            "-content",
            str(tmp_path / "data"),
            "-CAfile",
            str(pki_dir / "trust" / "root-ca.pem"),
            "-out",
            str(tmp_path / "out"),
        ]
    )
    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr


def _openssl_sign(openssl: str, pki_dir: Path, tmp_path: Path, name: str, *extra: str) -> bytes:
    (tmp_path / "data").write_bytes(CONTENT)
    result = _run(
        [
            openssl,
            "cms",
            "-sign",
            "-binary",
            "-in",
            str(tmp_path / "data"),
            "-signer",
            str(pki_dir / f"{name}.cert.pem"),
            "-inkey",
            str(pki_dir / f"{name}.key.pem"),
            "-certfile",
            str(pki_dir / "trust" / "intermediate-ca.pem"),
            "-outform",
            "DER",
            "-out",
            str(tmp_path / "sig.der"),
            *extra,
        ]
    )
    assert result.returncode == 0, result.stderr
    return (tmp_path / "sig.der").read_bytes()


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("doctor", ()),
        ("doctor-ec", ()),
        ("doctor", ("-cades",)),
        ("doctor", ("-noattr",)),
        ("doctor", ("-md", "sha384")),
    ],
)
async def test_openssl_detached_signatures_verify(
    openssl: str, pki_dir: Path, tmp_path: Path, trust: TrustStore, name: str, options: tuple[str, ...]
) -> None:
    signature = _openssl_sign(openssl, pki_dir, tmp_path, name, *options)
    status = await verify_cms(signature, CONTENT, trust)
    assert status.ok, status.summary()
    tampered = await verify_cms(signature, CONTENT + b" ", trust)
    assert not tampered.ok and tampered.reasons[0] in (Reason.DIGEST_MISMATCH, Reason.SIGNATURE_MISMATCH)


async def test_openssl_attached_signature_verifies_from_its_own_content(
    openssl: str, pki_dir: Path, tmp_path: Path, trust: TrustStore
) -> None:
    signature = _openssl_sign(openssl, pki_dir, tmp_path, "doctor", "-nodetach")
    assert (await verify_cms(signature, None, trust)).ok
    assert (await verify_cms(signature, b"other", trust)).reasons == (Reason.DIGEST_MISMATCH,)


async def test_rsa_pss_is_reported_as_unsupported(
    openssl: str, pki_dir: Path, tmp_path: Path, trust: TrustStore
) -> None:
    signature = _openssl_sign(openssl, pki_dir, tmp_path, "doctor", "-keyopt", "rsa_padding_mode:pss")
    assert (await verify_cms(signature, CONTENT, trust)).reasons == (Reason.UNSUPPORTED_ALGORITHM,)
