"""GOST 34.310-2004 through the external verifier HTTP contract, against a fake service on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing import Expectations, HttpExternalVerifier, Reason, TrustStore, verify_cms, verify_xml
from signing.pki_gost import issue_gost_certificate

pytestmark = pytest.mark.req("AC-25")
CONTENT = b"signed by KalkanCrypt"
GOST34310_KEY, GOST34310_CURVE = "1.2.398.3.10.1.1.1.1", "1.2.398.3.10.1.1.1.1.1"


@dataclass
class FakeService:
    url: str
    status: int = 200
    body: Any = field(
        default_factory=lambda: {"valid": True, "trusted": True, "revoked": False, "message": "ok"}
    )
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def service() -> Iterator[FakeService]:
    state = FakeService(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            payload = state.body if isinstance(state.body, bytes) else json.dumps(state.body).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/verify"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _gost34310_cert(pki_dir: Path, iin: str = "123456789020") -> x509.Certificate:
    params = core.Sequence(contents=core.ObjectIdentifier(GOST34310_CURVE).dump())
    algorithm = core.Sequence(contents=core.ObjectIdentifier(GOST34310_KEY).dump() + params.dump())
    key_bits = core.OctetBitString(core.OctetString(os.urandom(64)).dump())
    spki = core.Sequence(contents=algorithm.dump() + key_bits.dump()).dump()
    issuer = x509.load_pem_x509_certificates((pki_dir / "trust" / "intermediate-ca.pem").read_bytes())[0]
    issuer_key: Any = serialization.load_pem_private_key(
        (pki_dir / "intermediate-ca.key.pem").read_bytes(), None
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "КАЛКАНОВ ТЕСТ"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, f"IIN{iin}"),
        ]
    )

    def extensions(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
        usage = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
        return builder.add_extension(usage, critical=True).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )

    start = datetime.now(UTC) - timedelta(days=1)
    return issue_gost_certificate(spki, subject, issuer, issuer_key, start, 365, extensions)


def _gost34310_cms(cert: x509.Certificate) -> bytes:
    """A CMS shaped like KalkanCrypt's GOST 34.310 output (only the service checks the value)."""
    asn_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                "issuer_and_serial_number",
                {"issuer": asn_cert.issuer, "serial_number": asn_cert.serial_number},
            ),
            "digest_algorithm": {"algorithm": "1.2.398.3.10.1.3.1"},
            "signed_attrs": [
                {"type": "content_type", "values": ["data"]},
                {"type": "message_digest", "values": [os.urandom(32)]},
            ],
            "signature_algorithm": {"algorithm": "1.2.398.3.10.1.1.1.2"},
            "signature": os.urandom(64),
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": "1.2.398.3.10.1.3.1"}],
            "encap_content_info": {"content_type": "data"},
            "certificates": [asn_cert],
            "signer_infos": [signer_info],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


@pytest.fixture(scope="module")
def gost_cms(pki_dir: Path) -> bytes:
    return _gost34310_cms(_gost34310_cert(pki_dir))


def _trust(url: str) -> TrustStore:
    return TrustStore([], external_verifier=HttpExternalVerifier(url, timeout=5))


async def test_valid_verdict_is_accepted_and_the_request_follows_the_contract(
    service: FakeService, gost_cms: bytes
) -> None:
    status = await verify_cms(gost_cms, CONTENT, _trust(service.url), Expectations(iin="123456789020"))
    assert status.ok, status.summary()
    assert status.algorithm == "GOST-34.310-2004" and status.iin == "123456789020"
    (request,) = service.requests
    assert request == {
        "format": "cms",
        "signature": base64.b64encode(gost_cms).decode(),
        "data": base64.b64encode(CONTENT).decode(),
    }


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [
        ({"valid": False, "trusted": True, "message": "bad signature"}, Reason.SIGNATURE_MISMATCH),
        ({"valid": True, "trusted": False, "message": "unknown CA"}, Reason.UNTRUSTED_CHAIN),
        ({"valid": True, "trusted": True, "revoked": True, "message": "OCSP revoked"}, Reason.REVOKED),
    ],
)
async def test_negative_verdicts_keep_their_reason(
    service: FakeService, gost_cms: bytes, verdict: dict[str, Any], reason: Reason
) -> None:
    service.body = verdict
    status = await verify_cms(gost_cms, CONTENT, _trust(service.url))
    assert status.reasons == (reason,) and verdict["message"] in status.findings[0].message


async def test_iin_is_still_checked_locally(service: FakeService, gost_cms: bytes) -> None:
    status = await verify_cms(gost_cms, CONTENT, _trust(service.url), Expectations(iin="123456789011"))
    assert status.reasons == (Reason.IIN_MISMATCH,)


@pytest.mark.parametrize(
    ("status_code", "body"),
    [(500, {"error": "down"}), (200, b"not json"), (200, {"valid": "yes", "trusted": True})],
)
async def test_unusable_answers_mean_verifier_unavailable(
    service: FakeService, gost_cms: bytes, status_code: int, body: Any
) -> None:
    service.status, service.body = status_code, body
    status = await verify_cms(gost_cms, CONTENT, _trust(service.url))
    assert status.reasons == (Reason.VERIFIER_UNAVAILABLE,)


async def test_unreachable_service_means_verifier_unavailable(gost_cms: bytes) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status = await verify_cms(gost_cms, CONTENT, _trust(f"http://127.0.0.1:{port}/verify"))
    assert status.reasons == (Reason.VERIFIER_UNAVAILABLE,) and "unreachable" in status.findings[0].message


async def test_without_external_verifier_gost34310_is_unsupported(gost_cms: bytes) -> None:
    status = await verify_cms(gost_cms, CONTENT, TrustStore([]))
    assert (
        status.reasons == (Reason.UNSUPPORTED_ALGORITHM,)
        and "external verifier" in status.findings[0].message
    )


async def test_xml_with_kazakh_gost_method_goes_to_the_service(service: FakeService, pki_dir: Path) -> None:
    cert = _gost34310_cert(pki_dir)
    cert_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    ds = "http://www.w3.org/2000/09/xmldsig#"
    document = (
        f'<doc><a>1</a><ds:Signature xmlns:ds="{ds}"><ds:SignedInfo>'
        '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311"/>'
        '<ds:Reference URI=""/></ds:SignedInfo><ds:SignatureValue>AA==</ds:SignatureValue>'
        f"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data>"
        "</ds:KeyInfo></ds:Signature></doc>"
    ).encode()
    status = await verify_xml(document, _trust(service.url))
    assert status.ok, status.summary()
    assert service.requests[0]["format"] == "xml" and service.requests[0]["data"] is None
