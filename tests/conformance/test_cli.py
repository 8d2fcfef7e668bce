"""``kzfhir conformance run`` / ``python -m conformance``: exit codes 0/1/2 and both report files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.cli import main
from tests.conformance.bridge import cli
from tests.conformance.conftest import BASE, system_token
from tests.conformance.servers import empty_object_server


async def test_cli_exits_0_and_writes_both_reports_for_a_conformant_server(
    open_server: Any, tmp_path: Path
) -> None:
    json_path, md_path = tmp_path / "report.json", tmp_path / "report.md"
    code = await cli(["run", "--base", BASE, "--only", "capability", "--only", "rest",
                       "--report-json", str(json_path), "--report-md", str(md_path)], open_server)
    assert code == 0
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["exitCode"] == 0 and data["summary"]["fail"] == 0
    assert {r["group"] for r in data["results"]} == {"capability", "rest", "cleanup"}
    markdown = md_path.read_text(encoding="utf-8")
    assert markdown.startswith(f"# FHIR conformance report: {BASE}")
    assert "## capability" in markdown and "## rest" in markdown
    assert "#### REST-03: update: 200, a new versionId and a matching ETag" in markdown
    assert f"`PUT {BASE}/Organization/" in markdown


async def test_cli_exits_1_when_a_check_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = await cli(["conformance", "run", "--base", BASE, "--only", "CAP-01"], empty_object_server())
    assert code == 1
    out = capsys.readouterr().out
    assert "FAIL    CAP-01: expected 200 with a CapabilityStatement" in out
    assert "exit 1" in out


@pytest.mark.req("TM-01")
async def test_cli_reads_the_token_from_a_file(secured_server: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(system_token(tmp_path) + "\n", encoding="utf-8")
    report = tmp_path / "r.json"
    code = await cli(["run", "--base", BASE, "--token-file", str(token_file), "--only", "security",
                       "--only", "REST-01", "--report-json", str(report)], secured_server)
    assert code == 0
    results = {r["id"]: r["status"] for r in json.loads(report.read_text(encoding="utf-8"))["results"]}
    assert results["SEC-02"] == "pass" and results["REST-01"] == "pass"


def test_cli_exits_2_for_an_unknown_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--base", BASE, "--only", "everything"]) == 2
    assert "unknown check group or id: everything" in capsys.readouterr().err


def test_cli_exits_2_when_the_endpoint_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    assert main(["run", "--base", "http://mis.invalid/fhir"], transport=httpx.MockTransport(refuse)) == 2
    assert "kit error: endpoint unreachable" in capsys.readouterr().out


def test_cli_rejects_a_header_without_a_colon(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--base", BASE, "--header", "no-colon"])
    assert exit_info.value.code == 2
    assert "expected NAME:VALUE" in capsys.readouterr().err


def test_python_dash_m_conformance_exits_2_for_a_closed_local_port() -> None:
    # Port 9 on the loopback interface (discard) is closed on test machines: connection refused at once.
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--base", "http://127.0.0.1:9/fhir",
                           "--timeout", "5"], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2, done.stdout + done.stderr
    assert "endpoint unreachable" in done.stdout
