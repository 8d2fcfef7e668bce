"""The human-readable report: summary, then per group a table of checks and each check's evidence."""

from __future__ import annotations

from conformance.model import CheckResult, Evidence, Status
from conformance.report import Report

__all__ = ["render"]

_BADGE = {Status.PASS: "✅ pass", Status.FAIL: "❌ fail", Status.WARNING: "⚠️ warning",
          Status.SKIPPED: "⏭️ skipped", Status.ERROR: "💥 error"}
_VERDICT = {0: "conformant for the checks run (warnings allowed)",
            1: "NOT conformant: at least one check failed",
            2: "incomplete: the kit could not finish the run"}


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
        f"- Server: {server or 'unknown software'}, "
        f"fhirVersion {report.server.get('fhirVersion', 'unknown')}",
        f"- Credentials: {'a token was used' if report.authenticated else 'none (open endpoint assumed)'}",
        f"- Run: {started} to {finished} (kit {report.kit_version})",
        f"- Verdict: **{_VERDICT[report.exit_code]}** (exit code {report.exit_code})",
    ]
    if report.kit_error:
        lines.append(f"- Kit error: {report.kit_error}")
    lines += [f"- Note: {note}" for note in report.notes]
    summary = report.summary()
    lines += ["", "| total | pass | fail | warning | skipped | error |", "|---|---|---|---|---|---|",
              "| " + " | ".join(str(summary[k]) for k in ("total", *(s.value for s in Status))) + " |", ""]
    return lines


def _evidence_line(evidence: Evidence) -> str:
    headers = ", ".join(f"{k}: {v}" for k, v in evidence.headers.items() if k != "content-type")
    status = "no response" if evidence.status is None else str(evidence.status)
    line = f"  - {_code(evidence.request)} → **{status}**"
    if headers:
        line += f" ({_code(headers)})"
    if evidence.excerpt:
        line += f"<br>{_code(evidence.excerpt)}"
    return line


def _details(result: CheckResult) -> list[str]:
    lines = [f"#### {result.id}: {result.title}", "",
             f"{_BADGE[result.status]}. {result.message}".rstrip(), "",
             f"Covers: {', '.join(result.covers)}. Took {result.duration_ms} ms.", ""]
    if result.evidence:
        lines.append("- Evidence:")
        lines += [_evidence_line(e) for e in result.evidence]
        if result.evidence_omitted:
            lines.append(f"  - … {result.evidence_omitted} more exchanges not shown")
        lines.append("")
    return lines


def render(report: Report) -> str:
    lines = _header(report)
    for group, results in report.by_group().items():
        lines += [f"## {group}", "", "| ID | Status | Check | Covers |", "|---|---|---|---|"]
        lines += [f"| {r.id} | {_BADGE[r.status]} | {_cell(r.title)} | {_cell(', '.join(r.covers))} |"
                  for r in results]
        lines.append("")
        for result in results:
            lines += _details(result)
    return "\n".join(lines).rstrip() + "\n"
