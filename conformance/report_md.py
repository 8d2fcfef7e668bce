"""The human-readable report: who ran what against which endpoint, the verdict, per requirement a
verdict with why, then per group a table of checks and each check's evidence."""

from __future__ import annotations

from conformance.model import CheckResult, Evidence, Status
from conformance.report import Report
from conformance.verdicts import RequirementVerdict, Verdict

__all__ = ["BADGE", "REQUIREMENT_BADGE", "evidence_parts", "render"]

BADGE = {Status.PASS: "✅ pass", Status.FAIL: "❌ fail", Status.WARNING: "⚠️ warning",
         Status.SKIPPED: "⏭️ skipped", Status.ERROR: "💥 error"}
REQUIREMENT_BADGE = {Verdict.PASS: "✅ pass", Verdict.FAIL: "❌ fail", Verdict.NOT_TESTED: "⏭️ not tested"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`" if text else ""


def _header(report: Report) -> list[str]:
    server = " ".join(v for k, v in report.server.items() if k in ("software", "version"))
    started, finished = (t.isoformat(timespec="seconds") for t in (report.started, report.finished))
    lines = [
        f"# FHIR conformance report: {report.base_url}",
        "",
        f"- Verdict: **{report.verdict}** (exit code {report.exit_code})",
        f"- Server: {server or 'unknown software'}, "
        f"fhirVersion {report.server.get('fhirVersion', 'unknown')}",
        f"- Run: {started} to {finished} (kit {report.kit_version}, "
        f"{'all checks' if report.full_run else 'partial run'})",
        f"- Run by: {report.operator or 'not stated (--operator)'}",
    ]
    lines += [f"- Credentials: {c}" for c in report.credentials]
    if report.kit_error:
        lines.append(f"- Kit error: {report.kit_error}")
    lines += [f"- Note: {note}" for note in report.notes]
    summary = report.summary()
    lines += ["", "| total | pass | fail | warning | skipped | error |", "|---|---|---|---|---|---|",
              "| " + " | ".join(str(summary[k]) for k in ("total", *(s.value for s in Status))) + " |", ""]
    return lines


def _requirement_row(v: RequirementVerdict) -> str:
    critical = " (critical)" if v.critical else ""
    return f"| {v.id}{critical} | {REQUIREMENT_BADGE[v.verdict]} | {_cell(v.title)} | {_cell(v.why)} |"


def _requirements(report: Report) -> list[str]:
    lines = ["## Requirements", "", "| ID | Verdict | Requirement | Why |", "|---|---|---|---|"]
    lines += [_requirement_row(v) for v in report.requirements]
    return [*lines, ""]


def _comparison(report: Report) -> list[str]:
    comparison = report.comparison
    if not comparison:
        return []
    lines = [f"## Compared with the run of {comparison.get('previousStarted', '?')}", ""]
    for key, label in (("regressed", "Regressed"), ("fixed", "Fixed"), ("added", "New checks"),
                       ("removed", "Checks no longer run")):
        items = comparison.get(key) or []
        lines.append(f"- {label}: " + (", ".join(f"{i['id']} ({i['from']} → {i['to']})" for i in items)
                                      if items else "none"))
    return [*lines, ""]


def evidence_parts(evidence: Evidence) -> tuple[str, str, str]:
    """(who and timing, status, key headers) of one exchange, shared by the Markdown and HTML forms."""
    who = f"as {evidence.identity}" if evidence.identity else "as the writer"
    timing = f", {evidence.elapsed_ms} ms" if evidence.elapsed_ms is not None else ""
    status = "no response" if evidence.status is None else str(evidence.status)
    headers = ", ".join(f"{k}: {v}" for k, v in evidence.headers.items() if k != "content-type")
    return who + timing, status, headers


def _evidence_line(evidence: Evidence) -> str:
    who, status, headers = evidence_parts(evidence)
    line = f"  - {_code(evidence.request)} {who} → **{status}**"
    if headers:
        line += f" ({_code(headers)})"
    if evidence.excerpt:
        line += f"<br>{_code(evidence.excerpt)}"
    return line


def _details(result: CheckResult) -> list[str]:
    lines = [f"#### {result.id}: {result.title}", "",
             f"{BADGE[result.status]}. {result.message}".rstrip(), "",
             f"Covers: {', '.join(result.covers)}. Took {result.duration_ms} ms.", ""]
    if result.evidence:
        lines.append("- Evidence:")
        lines += [_evidence_line(e) for e in result.evidence]
        if result.evidence_omitted:
            lines.append(f"  - … {result.evidence_omitted} more exchanges not shown")
        lines.append("")
    return lines


def render(report: Report) -> str:
    lines = _header(report) + _comparison(report) + _requirements(report)
    for group, results in report.by_group().items():
        lines += [f"## {group}", "", "| ID | Status | Check | Covers |", "|---|---|---|---|"]
        lines += [f"| {r.id} | {BADGE[r.status]} | {_cell(r.title)} | {_cell(', '.join(r.covers))} |"
                  for r in results]
        lines.append("")
        for result in results:
            lines += _details(result)
    return "\n".join(lines).rstrip() + "\n"
