"""OCSP revocation against a local responder on 127.0.0.1 (RFC 6960), with CRL fallback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp

from signing import Reason, RevocationPolicy, Signer, TrustStore

pytestmark = pytest.mark.req("AC-25")


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


class _Responder:
    """Answers OCSP requests for the test PKI's leaves, signed by the delegated responder certificate."""

    def __init__(self, pki_dir: Path, sign_with_rogue_key: bool = False):
        self.issuer = _load_cert(pki_dir / "trust" / "intermediate-ca.pem")
        self.cert = _load_cert(pki_dir / "ocsp-responder.cert.pem")
        key = serialization.load_pem_private_key((pki_dir / "ocsp-responder.key.pem").read_bytes(), None)
        self.key: Any = key
        if sign_with_rogue_key:
            self.key, self.cert = _rogue_responder()
        self.leaves = {c.serial_number: c for c in (_load_cert(p) for p in pki_dir.glob("*.cert.pem"))}
        self.revoked = {self.leaves_by_name(pki_dir, "revoked").serial_number}

    @staticmethod
    def leaves_by_name(pki_dir: Path, name: str) -> x509.Certificate:
        return _load_cert(pki_dir / f"{name}.cert.pem")

    def answer(self, body: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(body)
        if request.serial_number not in self.leaves:  # e.g. the intermediate: not this responder's business
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED
            ).public_bytes(serialization.Encoding.DER)
        cert = self.leaves[request.serial_number]
        now = datetime.now(UTC)
        revoked = request.serial_number in self.revoked
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=cert,
                issuer=self.issuer,
                algorithm=hashes.SHA1(),
                cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
                this_update=now - timedelta(minutes=1),
                next_update=now + timedelta(hours=1),
                revocation_time=now - timedelta(days=1) if revoked else None,
                revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.cert)
            .certificates([self.cert])
        )
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _rogue_responder() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "not the CA's responder")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _serve(responder: _Responder) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = responder.answer(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Type", "application/ocsp-response")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ocsp"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def ocsp_url(pki_dir: Path) -> Iterator[str]:
    yield from _serve(_Responder(pki_dir))


@pytest.fixture
def rogue_ocsp_url(pki_dir: Path) -> Iterator[str]:
    yield from _serve(_Responder(pki_dir, sign_with_rogue_key=True))


def _store(trust: TrustStore, url: str, mode: str = "hard", with_crls: bool = False) -> TrustStore:
    policy = RevocationPolicy(mode=mode, ocsp_url=url)  # type: ignore[arg-type]
    return TrustStore(trust.roots, trust.intermediates, trust.crls if with_crls else [], policy)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/ocsp"


async def test_ocsp_good_answer_makes_the_leaf_trusted(
    trust: TrustStore, ocsp_url: str, signer_for: Callable[[str], Signer]
) -> None:
    store = _store(trust, ocsp_url, mode="soft")
    result = await store.validate(signer_for("doctor").signing_cert)
    assert result.trusted and not any("OCSP" in n and "failed" in n for n in result.notes)


async def test_ocsp_revoked_answer_refuses_the_signature(
    trust: TrustStore, ocsp_url: str, signer_for: Callable[[str], Signer]
) -> None:
    result = await _store(trust, ocsp_url).validate(signer_for("revoked").signing_cert)
    assert result.revoked and [f.reason for f in result.findings] == [Reason.REVOKED]
    assert "according to OCSP" in result.findings[0].message


async def test_unreachable_ocsp_falls_back_to_the_crl(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    store = _store(trust, _closed_port_url(), with_crls=True)
    assert (await store.validate(signer_for("doctor").signing_cert)).trusted
    revoked = await store.validate(signer_for("revoked").signing_cert)
    assert revoked.revoked and "CRL" in revoked.findings[0].message


async def test_unreachable_ocsp_without_crl_is_unknown_under_hard_policy(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    result = await _store(trust, _closed_port_url()).validate(signer_for("doctor").signing_cert)
    unknown = [f for f in result.findings if f.reason is Reason.REVOCATION_UNKNOWN]
    assert unknown and "failed" in unknown[0].message and not result.trusted


async def test_ocsp_answer_signed_by_a_stranger_is_ignored(
    trust: TrustStore, rogue_ocsp_url: str, signer_for: Callable[[str], Signer]
) -> None:
    result = await _store(trust, rogue_ocsp_url).validate(signer_for("revoked").signing_cert)
    assert not result.revoked
    assert any("not signed by the issuer" in f.message for f in result.findings)
