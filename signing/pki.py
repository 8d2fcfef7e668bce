"""Test PKI shaped like Kazakhstan's national CA (``kzfhir pki init DIR``), for tests and demos only.

Certificates carry IIN/BIN the way NCA RK puts them (kz-domain §5.1): ``SERIALNUMBER=IIN<12 digits>`` for the
person, ``OU=BIN<12 digits>`` for the organisation; signing certificates have keyUsage digitalSignature +
nonRepudiation and EKU emailProtection + the NCA role OID, authentication certificates clientAuth and the
NCA authentication policy. IINs are the checksum-invalid ones NCA test certificates use (kz-domain §1.3),
so no real person is named. Layout written to DIR::

    trust/root-ca.pem, trust/intermediate-ca.pem, trust/*.crl   the trust store (--trust DIR/trust)
    untrusted/rogue-root-ca.pem                                  a root nobody should trust
    <name>.cert.pem (certificate + intermediate), <name>.key.pem, <name>.p12
    manifest.json                                                what each identity is for
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing import gost
from signing.pki_gost import issue_gost_certificate
from signing.pki_profiles import LEAVES, ORG_NAME, PASSWORD, LeafSpec

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _name(*parts: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


def _leaf_subject(spec: LeafSpec) -> x509.Name:
    parts = [
        (NameOID.COMMON_NAME, f"{spec.surname} {spec.given}"),
        (NameOID.SURNAME, spec.surname),
        (NameOID.SERIAL_NUMBER, f"IIN{spec.iin}"),
        (NameOID.COUNTRY_NAME, "KZ"),
        (NameOID.GIVEN_NAME, spec.given),
    ]
    if spec.bin:
        parts += [(NameOID.ORGANIZATION_NAME, ORG_NAME), (NameOID.ORGANIZATIONAL_UNIT_NAME, f"BIN{spec.bin}")]
    return _name(*parts)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: Any, start: datetime, days: int
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
    )


def _ca(
    subject: x509.Name,
    key: PrivateKey,
    issuer: tuple[x509.Certificate, PrivateKey] | None,
    now: datetime,
    path_length: int | None,
) -> x509.Certificate:
    issuer_name = issuer[0].subject if issuer else subject
    signing_key = issuer[1] if issuer else key
    builder = (
        _builder(subject, issuer_name, key.public_key(), now - timedelta(days=1), 3650)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


def _leaf_extensions(builder: x509.CertificateBuilder, spec: LeafSpec) -> x509.CertificateBuilder:
    if spec.auth_only:
        usage = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
        ekus = [ExtendedKeyUsageOID.CLIENT_AUTH]
    else:
        usage = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
        ekus = [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    ekus += [x509.ObjectIdentifier(role) for role in spec.roles]
    policy = x509.PolicyInformation(x509.ObjectIdentifier(spec.policy), None)
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        .add_extension(x509.CertificatePolicies([policy]), critical=False)
    )


def _new_key(kind: str) -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)


def _pem_key(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_cert(path: Path, certs: Sequence[x509.Certificate]) -> None:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))


@dataclass
class _Issuers:
    root: tuple[x509.Certificate, PrivateKey]
    intermediate: tuple[x509.Certificate, PrivateKey]
    rogue: tuple[x509.Certificate, PrivateKey]


def _make_issuers(now: datetime) -> _Issuers:
    root_key, inter_key, rogue_key = (_new_key("rsa") for _ in range(3))
    root = _ca(
        _name((NameOID.COMMON_NAME, "KZFHIR TEST ROOT CA (RSA)"), (NameOID.COUNTRY_NAME, "KZ")),
        root_key,
        None,
        now,
        None,
    )
    inter = _ca(
        _name((NameOID.COMMON_NAME, "ҰКО TEST (RSA) kzfhir"), (NameOID.COUNTRY_NAME, "KZ")),
        inter_key,
        (root, root_key),
        now,
        0,
    )
    rogue = _ca(
        _name((NameOID.COMMON_NAME, "ROGUE ROOT CA"), (NameOID.COUNTRY_NAME, "KZ")),
        rogue_key,
        None,
        now,
        None,
    )
    return _Issuers((root, root_key), (inter, inter_key), (rogue, rogue_key))


def _issue_leaf(spec: LeafSpec, issuers: _Issuers, now: datetime, out: Path) -> tuple[x509.Certificate, str]:
    issuer_cert, issuer_key = issuers.rogue if spec.rogue else issuers.intermediate
    start = now + timedelta(days=spec.valid_from_days)
    days = spec.valid_days
    if spec.key == "gost":
        pair = gost.generate_key(256)
        cert = issue_gost_certificate(
            gost.spki_der(pair.bits, pair.public_key_le),
            _leaf_subject(spec),
            issuer_cert,
            issuer_key,
            start,
            days,
            lambda b: _leaf_extensions(b, spec),
        )
        (out / f"{spec.name}.key.pem").write_bytes(_pem("PRIVATE KEY", gost.private_key_der(pair)))
        _write_cert(out / f"{spec.name}.cert.pem", [cert, issuer_cert])
        return cert, "GOST-R-34.10-2015-256"
    key = _new_key(spec.key)
    builder = _builder(_leaf_subject(spec), issuer_cert.subject, key.public_key(), start, days)
    builder = _leaf_extensions(builder, spec).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
    )
    cert = builder.sign(issuer_key, hashes.SHA256())
    (out / f"{spec.name}.key.pem").write_bytes(_pem_key(key))
    _write_cert(out / f"{spec.name}.cert.pem", [cert, issuer_cert])
    p12 = pkcs12.serialize_key_and_certificates(
        spec.name.encode(), key, cert, [issuer_cert], serialization.BestAvailableEncryption(PASSWORD.encode())
    )
    (out / f"{spec.name}.p12").write_bytes(p12)
    return cert, "ECDSA-P256" if spec.key == "ec" else "RSA-2048"


def _pem(label: str, der: bytes) -> bytes:
    import base64
    import textwrap

    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()


def _crl(
    issuer: tuple[x509.Certificate, PrivateKey], revoked: Sequence[x509.Certificate], now: datetime
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer[0].subject)
        .last_update(now - timedelta(hours=1))
        .next_update(now + timedelta(days=365))
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(now - timedelta(minutes=30))
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(issuer[1], hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _ocsp_responder(issuers: _Issuers, now: datetime, out: Path) -> None:
    """A delegated OCSP signing certificate (RFC 6960 §4.2.2.2) for a local responder."""
    key = _new_key("rsa")
    cert = (
        _builder(
            _name((NameOID.COMMON_NAME, "kzfhir test OCSP responder"), (NameOID.COUNTRY_NAME, "KZ")),
            issuers.intermediate[0].subject,
            key.public_key(),
            now - timedelta(days=1),
            365,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .sign(issuers.intermediate[1], hashes.SHA256())
    )
    (out / "ocsp-responder.key.pem").write_bytes(_pem_key(key))
    _write_cert(out / "ocsp-responder.cert.pem", [cert])


def _write_issuers(issuers: _Issuers, out: Path) -> None:
    (out / "trust").mkdir(parents=True, exist_ok=True)
    (out / "untrusted").mkdir(exist_ok=True)
    _write_cert(out / "trust" / "root-ca.pem", [issuers.root[0]])
    _write_cert(out / "trust" / "intermediate-ca.pem", [issuers.intermediate[0]])
    _write_cert(out / "untrusted" / "rogue-root-ca.pem", [issuers.rogue[0]])
    for name, (_cert, key) in (("root-ca", issuers.root), ("intermediate-ca", issuers.intermediate)):
        (out / f"{name}.key.pem").write_bytes(_pem_key(key))


def init_pki(directory: str | Path, *, now: datetime | None = None) -> dict[str, Any]:
    """Create the test hierarchy in ``directory`` and return the manifest (also written as manifest.json)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    when = (now or datetime.now(UTC)).replace(microsecond=0)
    issuers = _make_issuers(when)
    _write_issuers(issuers, out)
    identities: dict[str, Any] = {}
    revoked: list[x509.Certificate] = []
    for spec in LEAVES:
        if spec.key == "gost" and not gost.available():
            continue
        cert, algorithm = _issue_leaf(spec, issuers, when, out)
        if spec.revoked:
            revoked.append(cert)
        identities[spec.name] = _identity_entry(spec, cert, algorithm)
    (out / "trust" / "intermediate-ca.crl").write_bytes(_crl(issuers.intermediate, revoked, when))
    (out / "trust" / "root-ca.crl").write_bytes(_crl(issuers.root, [], when))
    _ocsp_responder(issuers, when, out)
    manifest = _manifest(when, identities)
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
    return manifest


def _identity_entry(spec: LeafSpec, cert: x509.Certificate, algorithm: str) -> dict[str, Any]:
    return {
        "purpose": spec.purpose,
        "cert": f"{spec.name}.cert.pem",
        "key": f"{spec.name}.key.pem",
        "p12": f"{spec.name}.p12" if spec.key != "gost" else None,
        "iin": spec.iin,
        "bin": spec.bin,
        "algorithm": algorithm,
        "serial": f"{cert.serial_number:#x}",
        "subject": cert.subject.rfc4514_string(),
    }


def _manifest(when: datetime, identities: dict[str, Any]) -> dict[str, Any]:
    return {
        "created": when.isoformat(),
        "p12_password": PASSWORD,
        "trust_dir": "trust",
        "root": "trust/root-ca.pem",
        "intermediate": "trust/intermediate-ca.pem",
        "crls": ["trust/intermediate-ca.crl", "trust/root-ca.crl"],
        "untrusted_root": "untrusted/rogue-root-ca.pem",
        "ocsp_responder": {"cert": "ocsp-responder.cert.pem", "key": "ocsp-responder.key.pem"},
        "identities": identities,
    }
