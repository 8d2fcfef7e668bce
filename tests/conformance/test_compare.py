"""Re-runs: what regressed, what was fixed, since a previous report (``--previous``, ``compare``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from conformance.compare import compare, regressions
from tests.conformance.bridge import cli
from tests.conformance.conftest import BASE
from tests.conformance.servers import empty_object_server


def _report(checks: dict[str, str], requirements: dict[str, str]) -> dict[str, Any]:
    return {"started": "2026-01-20T10:00:00+00:00", "target": {"baseUrl": BASE}, "verdict": "…",
            "results": [{"id": k, "status": v} for k, v in checks.items()],
            "requirements": [{"id": k, "verdict": v} for k, v in requirements.items()]}


def test_compare_names_regressions_fixes_and_new_or_gone_checks() -> None:
    before = _report({"ACC-01": "pass", "ACC-02": "fail", "SEC-02": "warning", "OLD-01": "pass"},
                     {"AC-12": "pass", "AC-14": "fail"})
    after = _report({"ACC-01": "fail", "ACC-02": "pass", "SEC-02": "skipped", "NEW-01": "pass"},
                    {"AC-12": "not tested", "AC-14": "pass"})
    comparison = compare(before, after)
    assert [(c["kind"], c["id"], c["to"]) for c in comparison["regressed"]] == [
        ("check", "ACC-01", "fail"), ("check", "SEC-02", "skipped"), ("requirement", "AC-12", "not tested")]
    assert [c["id"] for c in comparison["fixed"]] == ["ACC-02", "AC-14"]
    assert [c["id"] for c in comparison["added"]] == ["NEW-01"]
    assert [c["id"] for c in comparison["removed"]] == ["OLD-01"]
    assert regressions(comparison)[0] == "REGRESSED check ACC-01: pass -> fail"


def test_compare_of_a_report_with_itself_finds_nothing() -> None:
    same = _report({"ACC-01": "pass"}, {"AC-12": "pass"})
    assert compare(same, same)["regressed"] == [] and compare(same, same)["fixed"] == []


async def test_run_with_previous_reports_what_regressed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    previous = tmp_path / "before.json"
    previous.write_text(json.dumps(_report({"CAP-01": "pass"}, {"TM-14": "pass"})), encoding="utf-8")
    current, markdown = tmp_path / "after.json", tmp_path / "after.md"
    code = await cli(["run", "--base", BASE, "--only", "CAP-01", "--previous", str(previous),
                      "--report-json", str(current), "--report-md", str(markdown)], empty_object_server())
    assert code == 1
    assert "REGRESSED check CAP-01: pass -> fail" in capsys.readouterr().out
    data = json.loads(current.read_text(encoding="utf-8"))
    assert data["comparison"]["previousStarted"] == "2026-01-20T10:00:00+00:00"
    assert "- Regressed: CAP-01 (pass → fail), TM-14 (pass → fail)" in markdown.read_text(encoding="utf-8")
    assert await asyncio.to_thread(main, ["compare", str(previous), str(current)]) == 1
    assert await asyncio.to_thread(main, ["compare", str(current), str(current)]) == 0
    assert "0 regressed, 0 fixed" in capsys.readouterr().out
