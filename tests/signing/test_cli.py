"""``kzfhir sign`` / ``verify`` / ``pki init`` through ``signing.cli.main`` (issue 6 parts 5-6)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from signing.cli import main, register
from tests.signing.samples import make_document_bundle, make_pdf

pytestmark = pytest.mark.req("AC-25")


def _sign(pki_dir: Path, src: Path, fmt: str, name: str = "doctor", *extra: str) -> int:
    return main(
        [
            "sign",
            str(src),
            "--key",
            str(pki_dir / f"{name}.key.pem"),
            "--cert",
            str(pki_dir / f"{name}.cert.pem"),
            "--format",
            fmt,
            *extra,
        ]
    )


def _verify(pki_dir: Path, path: Path, *extra: str) -> int:
    return main(["verify", str(path), "--trust", str(pki_dir / "trust"), *extra])


@pytest.mark.parametrize("fmt", ["jws", "cms", "xml"])
def test_sign_and_verify_a_bundle_file(
    pki_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    src = tmp_path / "bundle.json"
    src.write_text(json.dumps(make_document_bundle(), ensure_ascii=False), "utf-8")
    assert _sign(pki_dir, src, fmt, "doctor", "--who", "Practitioner/d1") == 0
    signed = tmp_path / "bundle.signed.json"
    assert json.loads(signed.read_text("utf-8"))["signature"]["who"] == {"reference": "Practitioner/d1"}
    assert _verify(pki_dir, signed, "--iin", "123456789011") == 0
    out = capsys.readouterr().out
    assert "VALID" in out and "IIN 123456789011" in out and "INVALID" not in out


def test_verify_explains_an_iin_mismatch_and_exits_1(
    pki_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "bundle.json"
    src.write_text(json.dumps(make_document_bundle()), "utf-8")
    _sign(pki_dir, src, "cms")
    assert _verify(pki_dir, tmp_path / "bundle.signed.json", "--iin", "123456789099") == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "iin-mismatch" in out and "123456789099" in out


def test_detached_cms_of_any_file_verifies_with_its_sibling_content(pki_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "report.txt"
    src.write_bytes(b"plain report")
    assert _sign(pki_dir, src, "cms", "doctor-ec") == 0
    assert _verify(pki_dir, tmp_path / "report.txt.p7s") == 0
    src.write_bytes(b"plain report, edited")
    assert _verify(pki_dir, tmp_path / "report.txt.p7s") == 1


def test_detached_jws_needs_and_uses_content(pki_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "data.bin"
    src.write_bytes(b"\x00\x01binary")
    assert _sign(pki_dir, src, "jws") == 0
    assert _verify(pki_dir, tmp_path / "data.bin.jws", "--content", str(src)) == 0


def test_xml_and_pdf_files_sign_and_verify(
    pki_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xml = tmp_path / "consent.xml"
    xml.write_bytes(b'<?xml version="1.0"?>\n<consent><patient>123456789099</patient></consent>\n')
    pdf = tmp_path / "sick-leave.pdf"
    pdf.write_bytes(make_pdf())
    assert _sign(pki_dir, xml, "xml") == 0 and _sign(pki_dir, pdf, "pdf", "employee") == 0
    assert _verify(pki_dir, tmp_path / "consent.signed.xml") == 0
    assert _verify(pki_dir, tmp_path / "sick-leave.signed.pdf", "--bin", "123456789021") == 0
    assert "BIN 123456789021" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("revoked", "certificate-revoked"),
        ("expired", "certificate-expired"),
        ("doctor-auth", "wrong-key-usage"),
        ("untrusted", "untrusted-chain"),
    ],
)
def test_verify_names_the_refusal_reason(
    pki_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, reason: str
) -> None:
    src = tmp_path / "bundle.json"
    src.write_text(json.dumps(make_document_bundle()), "utf-8")
    _sign(pki_dir, src, "jws", name)
    assert _verify(pki_dir, tmp_path / "bundle.signed.json") == 1
    assert f"refused:      {reason}:" in capsys.readouterr().out


def test_usage_errors_exit_2_with_a_specific_message(
    pki_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "x.json"
    src.write_text("{}", "utf-8")
    assert (
        main(
            ["sign", str(src), "--key", str(pki_dir / "doctor.p12"), "--password", "nope", "--format", "jws"]
        )
        == 2
    )
    assert "PKCS#12" in capsys.readouterr().err
    assert _verify(pki_dir, src) == 2
    assert "no 'signature'" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "missing.pdf")]) == 2


def test_pki_init_refuses_a_non_empty_directory_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("x")
    assert main(["pki", "init", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err


def test_pki_init_writes_a_usable_hierarchy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pki", "init", str(tmp_path / "pki")]) == 0
    assert "doctor" in capsys.readouterr().out
    manifest: dict[str, Any] = json.loads((tmp_path / "pki" / "manifest.json").read_text("utf-8"))
    assert manifest["identities"]["doctor"]["iin"] == "123456789011"


def test_register_adds_subcommands_to_a_host_parser() -> None:
    parser = argparse.ArgumentParser(prog="kzfhir")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["pki", "init", "/tmp/x"])
    assert args.command == "pki" and callable(args.func)


def test_python_dash_m_signing_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "signing", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert result.returncode == 0 and "verify" in result.stdout
