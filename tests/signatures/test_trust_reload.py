"""The trust store follows its folder: CRLs an operator drops in take effect without a restart."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fhir_server.config import Settings
from fhir_server.signatures import service
from tests.signatures.helpers import FHIR_JSON, ServerFactory, Sign, diagnostics, document_bundle


@pytest.mark.req("AC-25")
async def test_a_crl_added_to_the_trust_folder_revokes_without_restart(
        server: ServerFactory, sign: Sign, pki_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "RELOAD_SECONDS", 0.0)
    trust = tmp_path / "trust"
    shutil.copytree(pki_dir / "trust", trust)
    crl = trust / "intermediate-ca.crl"
    crl.rename(tmp_path / "held-back.crl")
    signed = await sign(document_bundle(practitioner_iin="123456789017"), signer="revoked")
    async with server(trust_dir=trust, revocation_mode="soft") as client:
        before = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
        (tmp_path / "held-back.crl").rename(crl)
        after = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
    assert before.status_code == 201, before.text  # soft policy: no CRL, revocation unknown
    assert after.status_code == 422
    assert "certificate-revoked" in diagnostics(after)


async def test_hard_revocation_policy_refuses_when_no_crl_answers(
        server: ServerFactory, sign: Sign, pki_dir: Path, tmp_path: Path) -> None:
    trust = tmp_path / "trust"
    shutil.copytree(pki_dir / "trust", trust)
    (trust / "intermediate-ca.crl").unlink()
    signed = await sign(document_bundle())
    async with server(trust_dir=trust, revocation_mode="hard") as client:
        response = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
    assert response.status_code == 422
    assert "revocation-unknown" in diagnostics(response)


def test_unknown_revocation_mode_and_missing_trust_folder_stop_the_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="REVOCATION_MODE"):
        service.SignatureService(Settings(revocation_mode="sometimes"))
    with pytest.raises(ValueError, match="TRUST_DIR"):
        service.SignatureService(Settings(trust_dir=tmp_path / "absent"))
