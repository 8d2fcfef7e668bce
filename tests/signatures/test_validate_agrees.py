"""``$validate`` runs the signature check create runs (issue 14 §2): on each signed Bundle both agree.

Before, ``$validate`` skipped ``Bundle.signature`` and answered OK for a record create refused.
"""

from __future__ import annotations

import copy
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.signatures import installed
from signing import Signer, load_signer, sign_bundle
from tests.signatures.helpers import BASE, DOCTOR_IIN, FHIR_JSON, PRACTITIONER_URN, ServerFactory, Sign, document_bundle

pytestmark = [pytest.mark.req("AC-25"), pytest.mark.req("TM-10")]


def _without_key_usage(pki_dir: Path, out: Path) -> Signer:
    """A signing certificate of the doctor from the test PKI's intermediate CA with no keyUsage extension:
    RFC 5280 §4.2.1.3, an absent keyUsage means the key is not restricted, so it may sign."""
    issuer = x509.load_pem_x509_certificate((pki_dir / "trust" / "intermediate-ca.pem").read_bytes())
    issuer_key = serialization.load_pem_private_key((pki_dir / "intermediate-ca.key.pem").read_bytes(), None)
    assert isinstance(issuer_key, rsa.RSAPrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ТЕСТОВ ДОКТОР"),
                         x509.NameAttribute(NameOID.SERIAL_NUMBER, f"IIN{DOCTOR_IIN}"),
                         x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                           critical=False)
            .sign(issuer_key, hashes.SHA256()))
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.KeyUsage)
    (out / "nokeyusage.key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (out / "nokeyusage.cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                                              + issuer.public_bytes(serialization.Encoding.PEM))
    return load_signer(out / "nokeyusage.key.pem", out / "nokeyusage.cert.pem")


async def _cases(sign: Sign, pki_dir: Path, tmp_path: Path) -> dict[str, tuple[dict[str, Any], bool]]:
    """name -> (signed Bundle, whether create accepts it)."""
    valid = await sign(document_bundle())
    tampered = copy.deepcopy(valid)
    tampered["entry"][4]["resource"]["valueQuantity"]["value"] = 39.9
    expired = await sign(document_bundle(practitioner_iin="123456789015"), signer="expired")
    no_key_usage = await sign_bundle(document_bundle(), _without_key_usage(pki_dir, tmp_path), "cms",
                                     PRACTITIONER_URN)
    return {"valid": (valid, True), "no-key-usage": (no_key_usage, True), "tampered": (tampered, False),
            "expired": (expired, False)}


def _errors(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in outcome.get("issue", []) if i["severity"] in ("error", "fatal")]


async def _validate(client: httpx.AsyncClient, bundle: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/Bundle/$validate", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    outcome: dict[str, Any] = response.json()
    return outcome


async def test_validate_and_create_agree_on_every_signed_bundle(server: ServerFactory, sign: Sign,
                                                                pki_dir: Path, tmp_path: Path) -> None:
    cases = await _cases(sign, pki_dir, tmp_path)
    async with server() as client:
        for name, (bundle, accepted) in cases.items():
            outcome = await _validate(client, bundle)
            created = await client.post("/Bundle", json=bundle, headers=FHIR_JSON)
            assert (created.status_code == 201) is accepted, (name, created.text)
            assert (not _errors(outcome)) is accepted, (name, outcome)
            if not accepted:  # the same issues, from the same rule
                refused = created.json()
                assert _errors(outcome) == _errors(refused), name
                assert all(i["expression"] == ["Bundle.signature"] for i in _errors(outcome)), name


@pytest.mark.parametrize(("name", "reason"), [("tampered", "digest-mismatch"), ("expired", "certificate-expired")])
async def test_validate_reports_a_bad_signature_as_an_error_on_bundle_signature(
        server: ServerFactory, sign: Sign, pki_dir: Path, tmp_path: Path, name: str, reason: str) -> None:
    bundle, _ = (await _cases(sign, pki_dir, tmp_path))[name]
    async with server() as client:
        [error] = _errors(await _validate(client, bundle))
    assert error["code"] == "security"
    assert error["expression"] == ["Bundle.signature"]
    assert reason in error["diagnostics"]


async def test_a_certificate_without_key_usage_validates_and_is_stored(server: ServerFactory, sign: Sign,
                                                                       pki_dir: Path, tmp_path: Path) -> None:
    bundle, _ = (await _cases(sign, pki_dir, tmp_path))["no-key-usage"]
    async with server() as client:
        outcome = await _validate(client, bundle)
        created = await client.post("/Bundle", json=bundle, headers=FHIR_JSON)
    assert _errors(outcome) == []
    assert created.status_code == 201, created.text


async def test_validate_of_an_unsigned_record_says_what_create_says(server: ServerFactory) -> None:
    async with server() as client:
        outcome = await _validate(client, document_bundle())
        created = await client.post("/Bundle", json=document_bundle(), headers=FHIR_JSON)
    assert created.status_code == 422
    assert _errors(outcome) == _errors(created.json())
    assert _errors(outcome)[0]["expression"] == ["Bundle.signature"]


async def test_validate_verifies_off_the_event_loop_thread(sign: Sign, pki_dir: Path, tmp_path: Path) -> None:
    """The check blocks until the signing worker answers: ``$validate`` runs it in a thread, never on the
    thread of the event loop that serves every other request."""
    app = create_app(Settings(database=tmp_path / "db.sqlite", security_enabled=False, synchronous_full=False,
                              require_signatures=True, trust_dir=pki_dir / "trust"))
    validation = installed(app.state.services)
    assert validation is not None
    threads: list[int] = []
    verify = validation.service.verify_blocking

    def recording(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return verify(*args)

    validation.service.verify_blocking = recording  # type: ignore[method-assign]
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        outcome = await _validate(client, await sign(document_bundle()))
    assert _errors(outcome) == []
    assert threads and threading.get_ident() not in threads
