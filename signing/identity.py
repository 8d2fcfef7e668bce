"""IIN and BIN from a national-CA certificate subject, and the check against the named signer.

NCA RK puts the person's IIN in the subject ``SERIALNUMBER`` as ``IIN<12 digits>`` and an organisation's BIN
in ``OU`` as ``BIN<12 digits>`` (kz-domain §5.1); some issuers use an RDN with OID 1.2.398.3.3.4.1 for the
IIN. Only the 12-digit shape is checked here: NCA test certificates carry checksum-invalid IINs
(kz-domain §1.3), and checksum rules belong to the profiles, not to signature verification.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from signing.status import Finding, Reason

IIN_FALLBACK_OID = x509.ObjectIdentifier("1.2.398.3.3.4.1")
_IIN = re.compile(r"^(?:IIN)?(\d{12})$")
_BIN = re.compile(r"^BIN(\d{12})$")


@dataclass(frozen=True, slots=True)
class SignerIdentity:
    iin: str | None
    bin: str | None


def _values(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attr.value).strip() for attr in name.get_attributes_for_oid(oid)]


def extract_iin(name: x509.Name) -> str | None:
    for value in _values(name, NameOID.SERIAL_NUMBER):
        if value.startswith("IIN") and (match := _IIN.match(value)):
            return match.group(1)
    for value in _values(name, IIN_FALLBACK_OID):
        if match := _IIN.match(value):
            return match.group(1)
    return None


def extract_bin(name: x509.Name) -> str | None:
    for value in _values(name, NameOID.ORGANIZATIONAL_UNIT_NAME):
        if match := _BIN.match(value):
            return match.group(1)
    return None


def identity_of(cert: x509.Certificate) -> SignerIdentity:
    return SignerIdentity(iin=extract_iin(cert.subject), bin=extract_bin(cert.subject))


def check_identity(
    identity: SignerIdentity, expected_iin: str | None = None, expected_bin: str | None = None
) -> list[Finding]:
    """Compare the certificate's IIN/BIN with the Practitioner/Organization named as signer."""
    findings: list[Finding] = []
    if expected_iin is not None and identity.iin != expected_iin.strip():
        shown = f"IIN {identity.iin}" if identity.iin else "no IIN"
        findings.append(
            Finding(
                Reason.IIN_MISMATCH,
                f"signer certificate carries {shown}, the named signer has IIN {expected_iin}",
            )
        )
    if expected_bin is not None and identity.bin != expected_bin.strip():
        shown = f"BIN {identity.bin}" if identity.bin else "no BIN"
        findings.append(
            Finding(
                Reason.BIN_MISMATCH,
                f"signer certificate carries {shown}, the named organisation has BIN {expected_bin}",
            )
        )
    return findings
