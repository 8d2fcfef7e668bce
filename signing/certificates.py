"""Certificate reading and the per-certificate checks: validity period and key usage.

NCA RK issues each person two certificates: one for signing (keyUsage digitalSignature + nonRepudiation,
policy 1.2.398.3.3.2.3 / .2.1) and one for authentication (keyUsage digitalSignature + keyEncipherment,
EKU clientAuth, policy .2.4 / .2.2) — kz-domain §5.1-5.2. A medical record must be signed with the former
(AC-25), so authentication-only certificates are refused.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.status import Finding, Reason

NCA_AUTH_POLICIES = frozenset({"1.2.398.3.3.2.2", "1.2.398.3.3.2.4"})  # legal-entity / individual auth
_SIGNING_EKUS = frozenset(
    {
        ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string,
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string,
        "1.3.6.1.5.5.7.3.36",  # id-kp-documentSigning (RFC 9336)
        "1.3.6.1.4.1.311.10.3.12",  # Microsoft document signing
    }
)


def load_der(der: bytes) -> x509.Certificate:
    """Parse a DER certificate completely (cryptography parses lazily); ``ValueError`` when malformed."""
    try:
        cert = x509.load_der_x509_certificate(der)
        # Touch every field the checks read so a corrupt certificate fails here, not deep inside a check.
        _ = (
            cert.version,
            cert.subject,
            cert.issuer,
            cert.serial_number,
            cert.not_valid_before_utc,
            cert.not_valid_after_utc,
            cert.extensions,
            cert.public_key_algorithm_oid,
            cert.signature_algorithm_oid,
        )
    except x509.InvalidVersion as exc:
        raise ValueError(f"unsupported X.509 version: {exc}") from exc
    return cert


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """All certificates in a PEM bundle, or the single certificate of a DER file."""
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


# Short names NCA subjects use; cryptography would print these as dotted OIDs.
_NAME_OVERRIDES = {NameOID.SERIAL_NUMBER: "SERIALNUMBER", NameOID.GIVEN_NAME: "G", NameOID.SURNAME: "SN"}


def name_text(name: x509.Name) -> str:
    """RFC 4514 text of a distinguished name, with SERIALNUMBER/SN/G spelled out."""
    return name.rfc4514_string(_NAME_OVERRIDES)


def describe(cert: x509.Certificate) -> str:
    """Subject plus serial, as messages name a certificate."""
    return f"{name_text(cert.subject)} (serial {cert.serial_number:#x})"


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def check_validity(cert: x509.Certificate, at: datetime) -> list[Finding]:
    if at < cert.not_valid_before_utc:
        return [
            Finding(
                Reason.CERT_NOT_YET_VALID,
                f"{describe(cert)} is valid only from {cert.not_valid_before_utc.isoformat()}",
            )
        ]
    if at > cert.not_valid_after_utc:
        return [
            Finding(
                Reason.CERT_EXPIRED, f"{describe(cert)} expired on {cert.not_valid_after_utc.isoformat()}"
            )
        ]
    return []


def _policies(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return set()
    return {p.policy_identifier.dotted_string for p in ext}


def _ekus(cert: x509.Certificate) -> set[str] | None:
    try:
        return {o.dotted_string for o in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value}
    except x509.ExtensionNotFound:
        return None


def check_signing_usage(cert: x509.Certificate) -> list[Finding]:
    """The signer's certificate must allow signatures and must not be an authentication-only certificate."""
    try:
        usage: x509.KeyUsage | None = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None  # RFC 5280 §4.2.1.3: without the extension the key is not restricted
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        return [
            Finding(
                Reason.WRONG_KEY_USAGE, f"{describe(cert)} allows neither digitalSignature nor nonRepudiation"
            )
        ]
    auth_policies = _policies(cert) & NCA_AUTH_POLICIES
    if auth_policies:
        return [
            Finding(
                Reason.WRONG_KEY_USAGE,
                f"{describe(cert)} is an authentication certificate "
                f"(policy {', '.join(sorted(auth_policies))}), not a signing certificate",
            )
        ]
    ekus = _ekus(cert)
    client_auth = ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string
    if ekus is not None and client_auth in ekus and not ekus & _SIGNING_EKUS:
        return [
            Finding(
                Reason.WRONG_KEY_USAGE,
                f"{describe(cert)} is authentication-only (extendedKeyUsage clientAuth without a "
                "signing purpose)",
            )
        ]
    return []


def utcnow() -> datetime:
    return datetime.now(UTC)
