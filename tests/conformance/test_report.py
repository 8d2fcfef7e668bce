"""The Report: summary counts, exit-code semantics, and the two renderings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from conformance import EXIT_FAIL, EXIT_KIT_ERROR, EXIT_PASS, CheckResult, Evidence, Report, Status

START = datetime(2026, 1, 20, 10, 0, tzinfo=UTC)


def _result(check_id: str, status: Status, message: str = "", group: str = "rest") -> CheckResult:
    evidence = (Evidence("GET http://mis.example.kz/fhir/Patient/1", 200, {"etag": 'W/"1"'}, '{"a": "b|c"}',
                         "unconsented Practitioner/7", 12, "kzck-1"),)
    return CheckResult(check_id, group, f"title of {check_id}", ("TM-14",), status, message, evidence, 5, 2)


def _report(*statuses: Status, kit_error: str | None = None) -> Report:
    results = tuple(_result(f"REST-{i:02d}", s, "why") for i, s in enumerate(statuses, 1))
    return Report("http://mis.example.kz/fhir", START, START + timedelta(seconds=2), results, kit_error)


@pytest.mark.parametrize(
    ("statuses", "kit_error", "code"),
    [
        ((Status.PASS, Status.WARNING, Status.SKIPPED), None, EXIT_PASS),
        ((Status.PASS, Status.FAIL, Status.WARNING), None, EXIT_FAIL),
        ((Status.FAIL, Status.ERROR), None, EXIT_KIT_ERROR),
        ((), "endpoint unreachable: ConnectError()", EXIT_KIT_ERROR),
    ],
)
def test_exit_code_is_0_pass_1_fail_2_kit_error(statuses: tuple[Status, ...], kit_error: str | None,
                                                code: int) -> None:
    assert _report(*statuses, kit_error=kit_error).exit_code == code


def test_summary_counts_every_status() -> None:
    summary = _report(Status.PASS, Status.PASS, Status.FAIL, Status.SKIPPED).summary()
    assert summary == {"total": 4, "pass": 2, "fail": 1, "warning": 0, "skipped": 1, "error": 0}


def test_json_report_carries_schema_target_summary_and_evidence() -> None:
    data = json.loads(_report(Status.PASS, Status.FAIL).to_json())
    assert data["schema"] == "kzfhir-conformance-report/1"
    assert data["durationMs"] == 2000 and data["exitCode"] == 1 and data["kitError"] is None
    assert data["results"][1]["status"] == "fail"
    assert data["results"][0]["evidence"] == [{"request": "GET http://mis.example.kz/fhir/Patient/1",
                                               "status": 200, "headers": {"etag": 'W/"1"'},
                                               "excerpt": '{"a": "b|c"}', "identity": "unconsented Practitioner/7",
                                               "elapsedMs": 12, "requestId": "kzck-1"}]
    assert data["results"][0]["evidenceOmitted"] == 2


def test_markdown_report_has_verdict_summary_group_tables_and_evidence() -> None:
    report = Report("http://mis.example.kz/fhir", START, START, (
        _result("CAP-01", Status.PASS, group="capability"),
        _result("REST-01", Status.FAIL, "create | refused", group="rest"),
    ))
    markdown = report.to_markdown()
    assert "**NOT conformant: 1 check failed (requirements TM-14)** (exit code 1)" in markdown
    assert "| 2 | 1 | 1 | 0 | 0 | 0 |" in markdown
    assert markdown.index("## capability") < markdown.index("## rest")
    assert "| REST-01 | ❌ fail | title of REST-01 | TM-14 |" in markdown
    assert "❌ fail. create | refused" in markdown
    assert ("`GET http://mis.example.kz/fhir/Patient/1` as unconsented Practitioner/7, 12 ms → **200** "
            "(`etag: W/\"1\"`)") in markdown
    assert "… 2 more exchanges not shown" in markdown


def test_markdown_report_shows_the_kit_error() -> None:
    markdown = _report(kit_error="endpoint unreachable: ConnectError('refused')").to_markdown()
    assert "incomplete: the kit could not finish the run" in markdown
    assert "- Kit error: endpoint unreachable: ConnectError('refused')" in markdown


def test_html_report_is_one_escaped_page_with_verdicts_per_requirement_and_evidence() -> None:
    hostile = Evidence("GET http://mis.example.kz/fhir/Patient/1", 403, {}, '<script>alert("x")</script>',
                       "unconsented Practitioner/7", 9, "kzck-1")
    report = Report("http://mis.example.kz/fhir", START, START, (
        CheckResult("ACC-01", "access", "title <b>", ("AC-12",), Status.FAIL, "leak & more", (hostile,), 5),))
    html = report.to_html(signer="CN=ИНСПЕКТОРОВ ТЕСТ")
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html and "title &lt;b&gt;" in html
    assert "NOT conformant: 1 check failed (requirements AC-12)" in html
    assert "<td class='id critical'>AC-12 ★</td><td><span class='badge b-fail'>fail</span></td>" in html
    assert "as unconsented Practitioner/7, 9 ms" in html and "kzck-1" in html
    assert "EDS of CN=ИНСПЕКТОРОВ ТЕСТ" in html


def test_json_report_has_a_verdict_for_every_requirement_and_who_ran_it() -> None:
    report = Report("http://mis.example.kz/fhir", START, START, (_result("ACC-20", Status.FAIL, "no record"),),
                    credentials=("writer: a bearer token (role system)",), operator="Inspector A.")
    data = report.to_dict()
    verdicts = {r["id"]: r for r in data["requirements"]}
    assert verdicts["TM-14"]["verdict"] == "fail" and verdicts["AC-14"]["verdict"] == "not tested"
    assert verdicts["AC-14"]["critical"] is True
    assert data["runBy"] == {"operator": "Inspector A.", "credentials": ["writer: a bearer token (role system)"]}
