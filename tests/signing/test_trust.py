"""Path validation to the trust store: anchors, validity, key usage, CRL revocation (issue 6 part 2)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from signing import Reason, RevocationPolicy, Signer, TrustStore
from signing.certificates import check_signing_usage

pytestmark = pytest.mark.req("AC-25")


async def test_doctor_certificate_chains_to_the_test_root(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    signer = signer_for("doctor")
    result = await trust.validate(signer.signing_cert, signer.cert_chain)
    assert result.trusted and not result.revoked and result.findings == ()
    assert [c.subject for c in result.path] == [
        signer.signing_cert.subject,
        *(c.subject for c in signer.cert_chain),
        trust.roots[0].subject,
    ]


async def test_intermediate_from_the_store_completes_a_path_the_signature_lacks(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    result = await trust.validate(signer_for("doctor").signing_cert, ())
    assert result.trusted


async def test_certificate_of_a_foreign_root_is_untrusted(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    signer = signer_for("untrusted")
    result = await trust.validate(signer.signing_cert, signer.cert_chain)
    assert not result.trusted
    assert [f.reason for f in result.findings] == [Reason.UNTRUSTED_CHAIN]
    assert "ROGUE ROOT CA" in result.findings[0].message


async def test_expired_and_not_yet_valid_certificates_have_distinct_reasons(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    expired = await trust.validate(signer_for("expired").signing_cert)
    future = await trust.validate(signer_for("not-yet-valid").signing_cert)
    assert [f.reason for f in expired.findings] == [Reason.CERT_EXPIRED]
    assert [f.reason for f in future.findings] == [Reason.CERT_NOT_YET_VALID]


async def test_validation_time_decides_validity(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    cert = signer_for("expired").signing_cert
    during = cert.not_valid_before_utc + timedelta(days=10)
    result = await trust.validate(cert, at=during)
    assert Reason.CERT_EXPIRED not in [f.reason for f in result.findings]


async def test_revoked_certificate_is_refused_with_crl_details(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    result = await trust.validate(signer_for("revoked").signing_cert)
    assert result.revoked and not result.trusted
    assert [f.reason for f in result.findings] == [Reason.REVOKED]
    assert "key_compromise" in result.findings[0].message and "CRL" in result.findings[0].message


async def test_missing_crl_is_unknown_revocation_under_hard_policy(
    pki_dir: Path, signer_for: Callable[[str], Signer]
) -> None:
    roots = x509.load_pem_x509_certificates((pki_dir / "trust" / "root-ca.pem").read_bytes())
    inter = x509.load_pem_x509_certificates((pki_dir / "trust" / "intermediate-ca.pem").read_bytes())
    hard = TrustStore(roots, inter, [], RevocationPolicy(mode="hard"))
    soft = TrustStore(roots, inter, [], RevocationPolicy(mode="soft"))
    off = TrustStore(roots, inter, [], RevocationPolicy(mode="off"))
    cert = signer_for("doctor").signing_cert
    hard_result, soft_result, off_result = (
        await hard.validate(cert),
        await soft.validate(cert),
        await off.validate(cert),
    )
    assert Reason.REVOCATION_UNKNOWN in [f.reason for f in hard_result.findings] and not hard_result.trusted
    assert soft_result.trusted and any("no CRL" in n for n in soft_result.notes)
    assert off_result.trusted and off_result.notes == ("revocation not checked (policy off)",)


async def test_stale_crl_does_not_vouch_for_a_certificate(
    pki_dir: Path, trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    key = serialization.load_pem_private_key((pki_dir / "intermediate-ca.key.pem").read_bytes(), None)
    issuer = trust.intermediates[0]
    old = datetime.now(UTC) - timedelta(days=30)
    stale = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(old)
        .next_update(old + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # type: ignore[arg-type]
    store = TrustStore(trust.roots, trust.intermediates, [stale], RevocationPolicy(mode="hard"))
    result = await store.validate(signer_for("doctor").signing_cert)
    messages = [f.message for f in result.findings if f.reason is Reason.REVOCATION_UNKNOWN]
    assert messages and "expired CRL" in messages[0]


def test_trust_directory_loads_roots_intermediates_and_crls_only(pki_dir: Path, tmp_path: Path) -> None:
    store = TrustStore.from_directory(pki_dir / "trust")
    assert len(store.roots) == 1 and len(store.intermediates) == 1 and len(store.crls) == 2
    # Key files and end-entity certificates never become anchors.
    (tmp_path / "doctor.key.pem").write_bytes((pki_dir / "doctor.key.pem").read_bytes())
    leaf = x509.load_pem_x509_certificates((pki_dir / "doctor.cert.pem").read_bytes())[0]
    (tmp_path / "doctor.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    other = TrustStore.from_directory(tmp_path)
    assert other.roots == [] and other.intermediates == []


def test_authentication_only_certificate_has_wrong_key_usage(signer_for: Callable[[str], Signer]) -> None:
    findings = check_signing_usage(signer_for("doctor-auth").signing_cert)
    assert [f.reason for f in findings] == [Reason.WRONG_KEY_USAGE]
    assert "authentication" in findings[0].message


@pytest.mark.parametrize("name", ["doctor", "doctor-ec", "employee", "organisation", "doctor-gost"])
def test_signing_certificates_pass_the_usage_check(signer_for: Callable[[str], Signer], name: str) -> None:
    if name == "doctor-gost":
        pytest.importorskip("gostcrypto", reason="GOST 2015 keys need the gostcrypto package")
    assert check_signing_usage(signer_for(name).signing_cert) == []


def _self_signed(extensions: list[x509.ExtensionType]) -> x509.Certificate:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "no key usage")])
    now = datetime.now(UTC)
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()) \
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=1))
    for extension in extensions:
        builder = builder.add_extension(extension, critical=True)
    return builder.sign(key, hashes.SHA256())


def test_a_certificate_without_key_usage_may_sign() -> None:
    """RFC 5280 §4.2.1.3: an absent keyUsage extension means the key is not restricted (issue 14)."""
    assert check_signing_usage(_self_signed([])) == []
    encipher_only = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=True,
                                  data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                                  encipher_only=False, decipher_only=False)
    assert [f.reason for f in check_signing_usage(_self_signed([encipher_only]))] == [Reason.WRONG_KEY_USAGE]
