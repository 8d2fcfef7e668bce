"""The Signer seam (house style §14): every key backend honours the same contract."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from signing import Signer, SigningError, load_signer
from signing.algorithms import NAMES, key_kind, verify_raw
from signing.pki_profiles import PASSWORD

BACKENDS = ["pem-rsa", "pem-ec", "pkcs12-rsa", "pkcs12-ec", "gost"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, pki_dir: Path, signer_for: Callable[[str], Signer]) -> Signer:
    kind: str = request.param
    if kind == "gost":
        pytest.importorskip("gostcrypto", reason="GOST 2015 keys need the gostcrypto package")
        return signer_for("doctor-gost")
    name = "doctor" if kind.endswith("rsa") else "doctor-ec"
    if kind.startswith("pem"):
        return signer_for(name)
    return load_signer(pki_dir / f"{name}.p12", password=PASSWORD)


def test_backend_is_a_signer_with_certificate_and_chain(backend: Signer) -> None:
    assert isinstance(backend, Signer)
    assert backend.signing_cert.subject != backend.signing_cert.issuer
    assert [c.subject for c in backend.cert_chain] == [backend.signing_cert.issuer]


async def test_sign_raw_output_verifies_with_the_certificate(backend: Signer) -> None:
    digest = NAMES[key_kind(backend.signing_cert)].digest
    signature = await backend.sign_raw(b"payload", digest)
    assert verify_raw(backend.signing_cert, signature, b"payload", digest)
    assert not verify_raw(backend.signing_cert, signature, b"payload!", digest)


async def test_unsupported_digest_is_refused(backend: Signer) -> None:
    with pytest.raises((SigningError, ValueError)):
        await backend.sign_raw(b"payload", "md5")


def test_key_and_certificate_must_belong_together(pki_dir: Path) -> None:
    with pytest.raises(SigningError, match="does not belong"):
        load_signer(pki_dir / "doctor.key.pem", pki_dir / "employee.cert.pem")


def test_wrong_pkcs12_password_is_a_clear_error(pki_dir: Path) -> None:
    with pytest.raises(SigningError, match="PKCS#12"):
        load_signer(pki_dir / "doctor.p12", password="wrong")
