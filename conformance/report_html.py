"""The HTML report: one self-contained page (inline CSS, no script, no external resource) a regulator can
open, print or attach. Every value from the server is escaped."""

from __future__ import annotations

from html import escape

from conformance.model import CheckResult, Evidence, Status
from conformance.report import Report
from conformance.report_md import evidence_parts
from conformance.verdicts import RequirementVerdict

__all__ = ["render"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:75rem;
color:#1d2329;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f5f7}code{font:12px ui-monospace,Menlo,monospace;
word-break:break-all}
.verdict{padding:.8rem 1rem;border-radius:6px;font-size:1.1rem;font-weight:600;margin:1rem 0}
.v0{background:#dafbe1;color:#116329}.v1{background:#ffebe9;color:#a40e26}.v2{background:#fff8c5;color:#7d4e00}
.pass{color:#116329}.fail{color:#a40e26;font-weight:600}.warning{color:#7d4e00}.skipped,.not-tested{color:#57606a}
.error{color:#7d4e00;font-weight:600}.critical{font-weight:600}.meta td:first-child{width:10rem;color:#57606a}
details{margin:.3rem 0 .8rem}summary{cursor:pointer}.msg{margin:.3rem 0}td.id{white-space:nowrap}
.badge{display:inline-block;padding:0 .45rem;border-radius:9px;font-size:12px;font-weight:600;white-space:nowrap}
.b-pass{background:#dafbe1;color:#116329}.b-fail{background:#ffebe9;color:#a40e26}
.b-warning,.b-error{background:#fff8c5;color:#7d4e00}.b-skipped,.b-not-tested{background:#eaeef2;color:#57606a}
"""


def _badge(value: str) -> str:
    """A status as a coloured label (no emoji: a printed or headless page may lack the font)."""
    return f"<span class='badge b-{value.replace(' ', '-')}'>{escape(value)}</span>"


def _meta(report: Report, signer: str | None) -> str:
    server = " ".join(v for k, v in report.server.items() if k in ("software", "version")) or "unknown software"
    rows = [("Endpoint", f"<code>{escape(report.base_url)}</code>"),
            ("Server", escape(f"{server}, fhirVersion {report.server.get('fhirVersion', 'unknown')}")),
            ("Run", escape(f"{report.started.isoformat(timespec='seconds')} to "
                           f"{report.finished.isoformat(timespec='seconds')}, "
                           f"{'all checks' if report.full_run else 'partial run (--only)'}")),
            ("Kit", escape(f"kzfhir conformance kit {report.kit_version}")),
            ("Run by", escape(report.operator or "not stated (--operator)")),
            ("Credentials", "<br>".join(escape(c) for c in report.credentials) or "none"),
            ("Signature", escape(f"EDS of {signer}: verify the JSON report with ") + "<code>kzfhir verify</code>"
             + escape(" (or the file alone: the detached .p7s beside it)") if signer else "not signed")]
    rows += [("Kit error", escape(report.kit_error))] if report.kit_error else []
    rows += [("Note", escape(note)) for note in report.notes]
    return "<table class=meta>" + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _summary(report: Report) -> str:
    counts = report.summary()
    keys = ("total", *(s.value for s in Status))
    head = "".join(f"<th>{k}</th>" for k in keys)
    cells = "".join(f"<td class={k}>{counts[k]}</td>" for k in keys)
    return f"<table><tr>{head}</tr><tr>{cells}</tr></table>"


def _requirement_row(v: RequirementVerdict) -> str:
    crit = "id critical" if v.critical else "id"
    return (f"<tr><td class='{crit}'>{escape(v.id)}{' ★' if v.critical else ''}</td>"
            f"<td>{_badge(v.verdict.value)}</td><td>{escape(v.title)}</td><td>{escape(v.why)}</td></tr>")


def _requirement_table(verdicts: tuple[RequirementVerdict, ...]) -> str:
    rows = "".join(_requirement_row(v) for v in verdicts)
    return f"<table><tr><th>ID</th><th>Verdict</th><th>Requirement</th><th>Why</th></tr>{rows}</table>"


def _requirements(report: Report) -> str:
    critical = _requirement_table(tuple(v for v in report.requirements if v.critical))
    every = _requirement_table(report.requirements)
    return ("<h2 id=certification>Critical requirements</h2><p>A certification run (all checks) is conformant "
            f"only when each of these passed.</p>{critical}"
            "<h2 id=requirements>All requirements</h2><p>★ critical. Not tested: the deciding checks were "
            f"skipped, or the requirement is beyond an HTTP client's reach.</p>{every}")


def _comparison(report: Report) -> str:
    comparison = report.comparison
    if not comparison:
        return ""
    items = []
    for key, label in (("regressed", "Regressed"), ("fixed", "Fixed"), ("added", "New checks"),
                       ("removed", "Checks no longer run")):
        found = comparison.get(key) or []
        text = ", ".join(f"{i['id']} ({i['from']} → {i['to']})" for i in found) or "none"
        items.append(f"<li><b>{label}</b>: {escape(text)}</li>")
    when = escape(str(comparison.get("previousStarted", "?")))
    return f"<h2>Compared with the run of {when}</h2><ul>{''.join(items)}</ul>"


def _evidence_row(evidence: Evidence) -> str:
    who, status, headers = evidence_parts(evidence)
    return (f"<tr><td><code>{escape(evidence.request)}</code></td><td>{escape(who)}</td><td>{escape(status)}</td>"
            f"<td><code>{escape(headers)}</code></td><td><code>{escape(evidence.excerpt)}</code></td>"
            f"<td><code>{escape(evidence.request_id)}</code></td></tr>")


def _check(result: CheckResult) -> str:
    evidence = ""
    if result.evidence:
        rows = "".join(_evidence_row(e) for e in result.evidence)
        more = (f"<p>… {result.evidence_omitted} more exchanges not shown</p>" if result.evidence_omitted else "")
        evidence = ("<table><tr><th>Request</th><th>As, time</th><th>Status</th><th>Headers</th><th>Excerpt</th>"
                    f"<th>X-Request-Id</th></tr>{rows}</table>{more}")
    return (f"<details{' open' if result.status in (Status.FAIL, Status.ERROR) else ''}><summary>"
            f"<b>{escape(result.id)}</b> {_badge(result.status.value)} "
            f"{escape(result.title)}</summary><p class=msg>{escape(result.message)}</p>"
            f"<p>Covers {escape(', '.join(result.covers))}. Took {result.duration_ms} ms.</p>{evidence}</details>")


def _groups(report: Report) -> str:
    parts = []
    for group, results in report.by_group().items():
        rows = "".join(f"<tr><td class=id>{escape(r.id)}</td><td>{_badge(r.status.value)}</td>"
                       f"<td>{escape(r.title)}</td><td>{escape(', '.join(r.covers))}</td></tr>" for r in results)
        parts.append(f"<h2 id='{escape(group)}'>{escape(group)}</h2><table><tr><th>ID</th><th>Status</th>"
                     f"<th>Check</th><th>Covers</th></tr>{rows}</table>" + "".join(_check(r) for r in results))
    return "".join(parts)


def render(report: Report, signer: str | None = None) -> str:
    """The page; ``signer`` (the EDS certificate's subject) is named when the JSON report is signed."""
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>FHIR conformance report: {escape(report.base_url)}</title><style>{_CSS}</style></head><body>"
            f"<h1>FHIR conformance report</h1><div class='verdict v{report.exit_code}'>{escape(report.verdict)} "
            f"(exit code {report.exit_code})</div>{_meta(report, signer)}{_summary(report)}{_comparison(report)}"
            f"{_requirements(report)}{_groups(report)}</body></html>\n")
