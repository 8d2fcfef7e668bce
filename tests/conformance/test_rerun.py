"""A re-run against a server that changed (issue 18 part 4), by the CLI over real HTTP, as a regulator
re-certifies: last visit's report is stored, the vendor deploys a change that breaks one guarantee, the
re-run with ``--previous`` names exactly that regression (and ``compare`` agrees); once fixed, the next
run names the fix. One server, one database across the runs: only the deployed code changes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from conformance.requirements import REQUIREMENTS
from fhir_server.api.app import create_app
from tests.conformance.conftest import system_token
from tests.conformance.live import served
from tests.conformance.test_must_fail import WAIT, clinic
from tests.conformance.variants import revocations_stay_cached


async def _certify(base: str, tmp_path: Path, name: str, *previous: Path) -> tuple[int, dict[str, Any], str]:
    """``kzfhir conformance run`` (full) writing ``name``.json/.md; its exit code, JSON report and markdown."""
    report, markdown = tmp_path / f"{name}.json", tmp_path / f"{name}.md"
    argv = ["run", "--base", base, "--token-file", str(tmp_path / "writer.token"), "--dev-key",
            str(tmp_path / "k.json"), "--record-wait", str(WAIT), "--report-json", str(report),
            "--report-md", str(markdown), *(a for p in previous for a in ("--previous", str(p)))]
    code = await asyncio.to_thread(main, argv)  # the CLI's own event loop; the server answers on this one
    return code, json.loads(report.read_text(encoding="utf-8")), markdown.read_text(encoding="utf-8")


def _changes(report: dict[str, Any], key: str) -> list[tuple[str, str, str, str]]:
    return [(c["kind"], c["id"], c["from"], c["to"]) for c in report["comparison"][key]]


@pytest.mark.req("AC-01")
@pytest.mark.req("AC-12")
async def test_a_rerun_names_the_regression_a_deployment_brought_and_then_its_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "writer.token").write_text(system_token(tmp_path), encoding="utf-8")
    async with clinic(tmp_path) as config, served(create_app(config)) as base:
        code, last_year, _ = await _certify(base, tmp_path, "last-year")
        assert code == 0 and last_year["verdict"].startswith("conformant")

        revocations_stay_cached(monkeypatch)  # the vendor's update: revocations no longer void cached permits
        code, now, markdown = await _certify(base, tmp_path, "now", tmp_path / "last-year.json")
        regressed_out = capsys.readouterr().out

        monkeypatch.undo()  # the vendor's fix
        code_fixed, fixed, _ = await _certify(base, tmp_path, "fixed", tmp_path / "now.json")

    requirement_ids = {r.id for r in REQUIREMENTS}
    acc11 = next(r for r in now["results"] if r["id"] == "ACC-11")
    lost = sorted(c for c in acc11["covers"] if c in requirement_ids)  # the requirements ACC-11 decides or covers
    assert acc11["status"] == "fail" and "right after the revocation still served" in acc11["message"]
    assert code == 1 and now["verdict"].startswith("NOT conformant")
    assert _changes(now, "regressed") == [("check", "ACC-11", "pass", "fail"),
                                          *(("requirement", r, "pass", "fail") for r in lost)]
    assert {"AC-01", "AC-12"} <= set(lost)
    assert _changes(now, "fixed") == [] and now["comparison"]["previousStarted"] == last_year["started"]
    assert "REGRESSED check ACC-11: pass -> fail" in regressed_out
    assert "Regressed: ACC-11 (pass → fail)" in markdown

    assert code_fixed == 0 and _changes(fixed, "regressed") == []
    assert _changes(fixed, "fixed") == [("check", "ACC-11", "fail", "pass"),
                                        *(("requirement", r, "fail", "pass") for r in lost)]

    compare = ["compare", str(tmp_path / "last-year.json")]
    assert await asyncio.to_thread(main, [*compare, str(tmp_path / "now.json")]) == 1
    assert await asyncio.to_thread(main, [*compare, str(tmp_path / "fixed.json")]) == 0
