"""Reports signed with the regulator's EDS (``--sign-key/--sign-cert``) and checked by ``kzfhir verify``:
the signature covers the JSON report and, through their digests, its Markdown and HTML renderings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_server.cli import main as kzfhir
from signing import init_pki
from tests.conformance.bridge import cli
from tests.conformance.conftest import BASE
from tests.conformance.servers import empty_object_server

REGULATOR = "employee"  # the test PKI's employee of an organisation: an inspector with IIN and BIN


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    init_pki(directory)
    return directory


async def _signed_run(pki: Path, out: Path) -> int:
    return await cli(["run", "--base", BASE, "--only", "CAP-01", "--operator", "Inspector, Ministry of Health",
                      "--report-json", str(out / "r.json"), "--report-md", str(out / "r.md"),
                      "--report-html", str(out / "r.html"), "--sign-key", str(pki / f"{REGULATOR}.key.pem"),
                      "--sign-cert", str(pki / f"{REGULATOR}.cert.pem")], empty_object_server())


async def _verify(pki: Path, report: Path, *extra: str) -> int:
    """``kzfhir verify`` (it calls ``asyncio.run``: a worker thread, away from the test's loop)."""
    return await asyncio.to_thread(kzfhir, ["verify", str(report), "--trust", str(pki / "trust"), *extra])


@pytest.mark.req("AC-21")
async def test_signed_report_verifies_with_kzfhir_verify(pki: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert await _signed_run(pki, tmp_path) == 1  # CAP-01 fails against a server answering {}
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["signature"]["sigFormat"] == "application/pkcs7-signature"
    assert set(data["renderings"]) == {"markdown", "html"}
    assert data["runBy"]["operator"] == "Inspector, Ministry of Health"
    assert "EDS of " in (tmp_path / "r.html").read_text(encoding="utf-8")
    capsys.readouterr()
    assert await _verify(pki, tmp_path / "r.json", "--iin", "123456789013", "--bin", "123456789021") == 0
    out = capsys.readouterr().out
    assert "VALID" in out and "NOT conformant" in out and "INVALID" not in out
    assert "rendering:    html r.html: intact" in out
    assert "detached signature r.json.p7s over the bytes of r.json:" in out


async def test_the_detached_signature_verifies_with_the_generic_verifier_and_catches_any_changed_byte(
    pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    await _signed_run(pki, tmp_path)
    report, detached = tmp_path / "r.json", tmp_path / "r.json.p7s"
    assert detached.read_bytes()[:1] == b"\x30"  # DER SEQUENCE: a CMS ContentInfo
    assert await _verify(pki, detached) == 0  # the signing package's verifier, content = r.json beside it
    assert "VALID  cms signature" in capsys.readouterr().out
    report.write_bytes(report.read_bytes() + b"\n")  # same JSON, other bytes: the embedded signature holds
    assert await _verify(pki, report) == 1
    out = capsys.readouterr().out
    assert out.count("INVALID") == 1 and out.index("INVALID") > out.index("detached signature r.json.p7s")
    assert await _verify(pki, detached) == 1


async def test_a_changed_verdict_or_rendering_fails_verification(pki: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    await _signed_run(pki, tmp_path)
    html = tmp_path / "r.html"
    html.write_text(html.read_text(encoding="utf-8").replace("NOT conformant", "conformant"), encoding="utf-8")
    assert await _verify(pki, tmp_path / "r.json") == 1
    assert "rendering:    html r.html: changed" in capsys.readouterr().out
    report = tmp_path / "r.json"
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    data["exitCode"], data["verdict"] = 0, "conformant: every critical requirement passed"
    report.write_text(json.dumps(data), encoding="utf-8")
    assert await _verify(pki, report) == 1
    assert "INVALID" in capsys.readouterr().out


async def test_wrong_signer_identifiers_and_unsigned_reports_fail(pki: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    await _signed_run(pki, tmp_path)
    assert await _verify(pki, tmp_path / "r.json", "--iin", "123456789011") == 1
    assert "iin-mismatch" in capsys.readouterr().out
    unsigned = tmp_path / "unsigned.json"
    assert await cli(["run", "--base", BASE, "--only", "CAP-01", "--report-json", str(unsigned)],
                     empty_object_server()) == 1
    assert await _verify(pki, unsigned) == 1
    assert "the report is not signed" in capsys.readouterr().out


async def test_other_json_files_still_go_to_the_signing_verifier(pki: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    resource = tmp_path / "patient.json"
    resource.write_text(json.dumps({"resourceType": "Patient"}), encoding="utf-8")
    assert await _verify(pki, resource) == 2
    assert "has no 'signature' element to verify" in capsys.readouterr().err


async def test_signing_needs_the_json_report(pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = await cli(["run", "--base", BASE, "--only", "CAP-01", "--sign-key", str(pki / f"{REGULATOR}.key.pem"),
                      "--sign-cert", str(pki / f"{REGULATOR}.cert.pem")], empty_object_server())
    assert code == 2
    assert "give --report-json too" in capsys.readouterr().err
