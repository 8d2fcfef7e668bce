"""IIN / BIN from national-CA-style certificate subjects and the check against the named signer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from signing import Reason, Signer, check_identity, extract_bin, extract_iin, identity_of
from signing.identity import IIN_FALLBACK_OID, SignerIdentity


def _name(*parts: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


def test_iin_comes_from_serialnumber_with_iin_prefix() -> None:
    name = _name((NameOID.COMMON_NAME, "ТЕСТОВ ТЕСТ"), (NameOID.SERIAL_NUMBER, "IIN123456789011"))
    assert extract_iin(name) == "123456789011"


def test_checksum_invalid_test_iins_are_accepted() -> None:
    # NCA test certificates carry checksum-invalid IINs (kz-domain §1.3); only the shape is checked.
    assert extract_iin(_name((NameOID.SERIAL_NUMBER, "IIN123456789012"))) == "123456789012"


@pytest.mark.parametrize("value", ["IIN12345678901", "IIN1234567890123", "123456789011", "BIN123456789011"])
def test_serialnumber_without_iin_shape_gives_no_iin(value: str) -> None:
    assert extract_iin(_name((NameOID.SERIAL_NUMBER, value))) is None


def test_iin_falls_back_to_the_nca_oid_rdn() -> None:
    assert extract_iin(_name((IIN_FALLBACK_OID, "123456789011"))) == "123456789011"
    assert extract_iin(_name((IIN_FALLBACK_OID, "IIN123456789011"))) == "123456789011"


def test_bin_comes_from_ou_with_bin_prefix() -> None:
    name = _name(
        (NameOID.ORGANIZATION_NAME, "АО ТЕСТ"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "BIN123456789021")
    )
    assert extract_bin(name) == "123456789021"
    assert extract_bin(_name((NameOID.ORGANIZATIONAL_UNIT_NAME, "Отдел"))) is None


@pytest.mark.req("AC-25")
def test_employee_certificate_carries_both_iin_and_bin(signer_for: Callable[[str], Signer]) -> None:
    identity = identity_of(signer_for("employee").signing_cert)
    assert identity == SignerIdentity(iin="123456789013", bin="123456789021")


@pytest.mark.req("AC-25")
def test_identity_check_names_the_mismatching_iin_and_bin() -> None:
    findings = check_identity(SignerIdentity("123456789011", None), "123456789099", "123456789021")
    assert [f.reason for f in findings] == [Reason.IIN_MISMATCH, Reason.BIN_MISMATCH]
    assert "IIN 123456789011" in findings[0].message and "123456789099" in findings[0].message
    assert "no BIN" in findings[1].message


def test_identity_check_passes_when_nothing_is_expected_or_all_match() -> None:
    assert check_identity(SignerIdentity("123456789011", None)) == []
    assert (
        check_identity(SignerIdentity("123456789011", "123456789021"), "123456789011", "123456789021") == []
    )
