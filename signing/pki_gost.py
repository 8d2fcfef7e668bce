"""Issue a certificate for a GOST key (any SubjectPublicKeyInfo) with an RSA/ECDSA test CA (test PKI only).

``cryptography`` cannot hold GOST public keys, so the certificate is built for a placeholder key and its
SubjectPublicKeyInfo is swapped for the GOST one before the issuer signs the TBSCertificate.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from asn1crypto import algos, core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

_SIG_ALGS = {"rsa": "sha256_rsa", "ec": "sha256_ecdsa"}


def issue_gost_certificate(
    spki: bytes,
    subject: x509.Name,
    issuer_cert: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    start: datetime,
    days: int,
    add_extensions: Callable[[x509.CertificateBuilder], x509.CertificateBuilder],
) -> x509.Certificate:
    placeholder = ec.generate_private_key(ec.SECP256R1()).public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(placeholder)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
    )
    template = add_extensions(builder).sign(issuer_key, hashes.SHA256())
    old_spki = placeholder.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tbs_content = core.Sequence.load(template.tbs_certificate_bytes).contents
    tbs = core.Sequence(contents=tbs_content.replace(old_spki, spki))
    tbs_der = tbs.dump(force=True)
    if isinstance(issuer_key, rsa.RSAPrivateKey):
        signature = issuer_key.sign(tbs_der, padding.PKCS1v15(), hashes.SHA256())
        algorithm = _SIG_ALGS["rsa"]
    else:
        signature = issuer_key.sign(tbs_der, ec.ECDSA(hashes.SHA256()))
        algorithm = _SIG_ALGS["ec"]
    der = core.Sequence(
        contents=tbs_der
        + algos.SignedDigestAlgorithm({"algorithm": algorithm}).dump()
        + core.OctetBitString(signature).dump()
    ).dump()
    return x509.load_der_x509_certificate(der)
