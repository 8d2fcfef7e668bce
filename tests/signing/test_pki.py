"""The test PKI (``kzfhir pki init``): a national-CA-shaped hierarchy with IIN/BIN subjects and a CRL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _cert(pki_dir: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificates((pki_dir / f"{name}.cert.pem").read_bytes())[0]


def test_manifest_lists_every_identity_with_its_files(pki_dir: Path, manifest: dict[str, Any]) -> None:
    expected = {
        "doctor",
        "doctor-ec",
        "employee",
        "organisation",
        "doctor-auth",
        "expired",
        "not-yet-valid",
        "revoked",
        "untrusted",
    }
    assert expected <= set(manifest["identities"])
    for identity in manifest["identities"].values():
        assert (pki_dir / identity["cert"]).is_file() and (pki_dir / identity["key"]).is_file()
    assert (pki_dir / manifest["root"]).is_file() and all((pki_dir / c).is_file() for c in manifest["crls"])


def test_doctor_subject_is_shaped_like_an_nca_certificate(pki_dir: Path) -> None:
    subject = _cert(pki_dir, "doctor").subject
    assert subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "IIN123456789011"
    assert subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "KZ"
    usage = _cert(pki_dir, "doctor").extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_encipherment


def test_organisation_certificates_carry_the_bin_in_ou(pki_dir: Path) -> None:
    for name in ("employee", "organisation"):
        subject = _cert(pki_dir, name).subject
        assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "BIN123456789021"


def test_authentication_certificate_is_client_auth_only(pki_dir: Path) -> None:
    eku = _cert(pki_dir, "doctor-auth").extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku and ExtendedKeyUsageOID.EMAIL_PROTECTION not in eku


def test_crl_lists_exactly_the_revoked_certificate(pki_dir: Path) -> None:
    crl = x509.load_der_x509_crl((pki_dir / "trust" / "intermediate-ca.crl").read_bytes())
    revoked = _cert(pki_dir, "revoked")
    assert [entry.serial_number for entry in crl] == [revoked.serial_number]


def test_untrusted_certificate_comes_from_a_root_outside_the_trust_directory(pki_dir: Path) -> None:
    rogue = x509.load_pem_x509_certificate((pki_dir / "untrusted" / "rogue-root-ca.pem").read_bytes())
    assert _cert(pki_dir, "untrusted").issuer == rogue.subject
    trusted = [p.name for p in (pki_dir / "trust").iterdir()]
    assert "rogue-root-ca.pem" not in trusted
