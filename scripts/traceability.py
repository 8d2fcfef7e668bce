"""Generate docs/requirements-traceability.md: requirement ID -> code -> tests.

Tests declare what they prove with ``@pytest.mark.req("AC-01")`` (or a module-level ``pytestmark``);
this script collects them and lists every requirement of the catalogue docs/requirements.md with its text,
the code that implements it (CODE below, kept by hand beside the code) and its tests, so requirements
without a test show as such. ``python scripts/traceability.py`` rewrites the document; ``--check`` exits 1
when it is stale. Both refuse IDs that tests or CODE cite but the catalogue does not have (a typo).
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "requirements-traceability.md"
CATALOGUE = ROOT / "docs" / "requirements.md"
# The two minimal data sets are numbered lists in the catalogue, not table rows: their names are here.
DATA_SETS = {"MD-B": "Minimal data set at booking", "MD-D": "Minimal data set at delivery of a remote service"}

CODE: dict[str, str] = {
    "TM-01": "docs/security-baseline.md (unified ICT and information-security requirements); production mode",
    "TM-02": "fhir_server/telemed/ (consultation Encounter, Communication/Media/DocumentReference attachments)",
    "TM-03": "fhir_server/telemed/terms.py, booking.py (kz-public-offer Contract, acceptance Consent)",
    "TM-04": "fhir_server/security/auth/ (JWT, fhirUser, IIN-bound identities); signing/identity.py",
    "TM-05": "R4 Schedule/Slot interactions (generic CRUD + search)",
    "TM-06": "profiles/package (KZ Appointment, MD-B); generic CRUD + search",
    "TM-07": "fhir_server/telemed/terms.py, booking.py (informed-consent Consent before a remote booking)",
    "TM-08": "profiles/package (KZ ServiceRequest, consilium category)",
    "TM-09": "fhir_server/jobs/appointment_notices.py (booked / moved / cancelled notices through the outbox)",
    "TM-10": "fhir_server/signatures/ (verification on write, Provenance); signing/",
    "TM-11": "mappings/ (MD-D record, NEHP adapters); fhir_server/operations/nehp_submit.py (outbox topic nehp)",
    "TM-12": "fhir_server/portal/ (cabinet and console pages, a client of the API; docs/portal.md)",
    "TM-13": "fhir_server/security/audit/ (BALP events, hash chain); fhir_server/jobs/delivery_audit.py",
    "TM-14": "docs/security-baseline.md; the server itself",
    "TM-15": "fhir_server/security/policy/relationships.py (care teams, monitoring orders)",
    "TM-16": "fhir_server/telemed/recommendations.py (recommendations on the care plan, scheduled reminders)",
    "TM-17": "fhir_server/storage/sqlite/ (WAL, group commit, synchronous=FULL); security/",
    "TM-18": "fhir_server/operations/access_log.py",
    "TM-19": "mappings/payment (claim line); operations/nehp_submit.py (outbox topic payment); terminology/data",
    "TM-20": "fhir_server/telemed/consultation.py, video.py (telecom session seam); kz-telecom-session",
    "TM-21": "fhir_server/telemed/session_extension.py (no join link stored), attachments.py (virus-scan seam)",
    "TM-22": "profiles/package (KZ Observation vital signs)",
    "TM-23": "profiles/package (device-automatic entry method)",
    "TM-24": "profiles/package (manual entry method); PATIENT_WRITABLE Observation",
    "TM-25": "fhir_server/jobs/monitoring.py (readings compared with the limits of the patient's Goals)",
    "TM-26": "fhir_server/jobs/monitoring.py (DetectedIssue, follow-up Task, urgent notices to all participants)",
    "MD-B": "profiles/package/StructureDefinition-kz-appointment.json",
    "MD-D": "profiles/package/StructureDefinition-kz-encounter-remote.json",
    "AC-01": "fhir_server/security/policy/ (consent engine); fhir_server/security/session.py",
    "AC-02": "fhir_server/security/policy/grants.py (break-glass); audit/notify.py; session.py",
    "AC-03": "fhir_server/security/policy/rules.py",
    "AC-04": "fhir_server/security/policy/rules.py (draft/proposed Consents by practitioners)",
    "AC-05": "fhir_server/telemed/data_source.py (kz-data-source tag on every collected resource)",
    "AC-06": "fhir_server/telemed/egov_cabinet.py (cabinet message v1, HMAC); operations/egov_consent.py",
    "AC-07": "profiles/package/StructureDefinition-kz-consent.json",
    "AC-08": "fhir_server/security/policy/rules.py (system role records active Consents); interactions/transaction.py",
    "AC-09": "fhir_server/security/policy/relationships.py (verified representative authority)",
    "AC-10": "fhir_server/security/policy/consent.py (third-party grants, nested provisions)",
    "AC-11": "fhir_server/security/policy/engine.py (legal-exception role + legal basis)",
    "AC-12": "fhir_server/security/policy/engine.py (deny by default); interactions/search_access.py",
    "AC-13": "fhir_server/storage/sqlite/writer.py (atomic units, durable acknowledgements); audit chain",
    "AC-14": "fhir_server/security/audit/ (BALP, chain, verify); interactions/audit_events.py",
    "AC-15": "fhir_server/operations/data_subject.py",
    "AC-16": "fhir_server/operations/data_report.py; fhir_server/security/calendar/",
    "AC-17": "fhir_server/operations/dsr_tasks.py (refusal needs a reason); security/calendar/",
    "AC-18": "fhir_server/security/session.py (notification per access); fhir_server/jobs/",
    "AC-19": "fhir_server/security/deidentify/",
    "AC-20": "fhir_server/security/policy/duties.py (flags in the audit); operations/access_flags.py",
    "AC-21": "fhir_server/operations/access_report.py (access log of a period signed with the organisation's EDS)",
    "AC-22": "fhir_server/operations/expunge.py; TxView.expunge (storage/sqlite, storage/postgres)",
    "AC-23": "fhir_server/egress.py (allowed destinations; configured ones at start, Subscription endpoints)",
    "AC-24": "fhir_server/operations/access_log.py; security/audit/access_log.py",
    "AC-25": "fhir_server/signatures/; signing/",
    "AC-26": "fhir_server/security/policy/blocking.py (block Flags, applied in can_see); operations/blocking.py",
    "AC-27": "fhir_server/operations/data_subject.py; security/calendar/",
}


def _marks(node: ast.AST) -> list[str]:
    out = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "req":
            out += [a.value for a in sub.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return out


def collect() -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(ROOT).as_posix()
        module_marks = [m for stmt in tree.body if isinstance(stmt, ast.Assign)
                        and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in stmt.targets)
                        for m in _marks(stmt)]
        for stmt in ast.walk(tree):
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name.startswith("test_"):
                marks = [m for d in stmt.decorator_list for m in _marks(d)] + module_marks
                for m in marks:
                    found[m].add(f"{rel}::{stmt.name}")
    return found


def catalogue() -> dict[str, str]:
    """Requirement ID -> its text, for every requirement of docs/requirements.md."""
    text = CATALOGUE.read_text(encoding="utf-8")
    out = {}
    for line in text.splitlines():
        m = re.match(r"\| (TM-\d+|AC-\d+) \| (?:[\d-]+ \| )?(.+?) \|", line)
        if m:
            out[m.group(1)] = m.group(2)
    out.update((req_id, name) for req_id, name in DATA_SETS.items() if f"({req_id})" in text)
    return out


def unknown_ids() -> list[str]:
    """IDs the tests or CODE cite that the catalogue does not define."""
    return sorted((set(collect()) | set(CODE)) - set(catalogue()), key=_order)


def _order(req_id: str) -> tuple[str, int, str]:
    prefix, _, num = req_id.partition("-")
    return prefix, int(num) if num.isdigit() else 0, num


def render() -> str:
    found, text = collect(), catalogue()
    ids = sorted(text, key=_order)
    lines = ["# Requirements traceability", "",
             "Every requirement ID of `docs/requirements.md` -> what it asks -> the code that implements it "
             "-> the tests that prove it.",
             "Generated by `python scripts/traceability.py` from the `@pytest.mark.req` markers; "
             "`tests/test_traceability.py` fails when this page is stale.", "",
             "| ID | requirement | code | tests |", "|---|---|---|---|"]
    for req_id in ids:
        tests = "<br>".join(sorted(found.get(req_id, ()))) or "— (no test yet)"
        lines.append(f"| {req_id} | {text.get(req_id, '')} | {CODE.get(req_id, '—')} | {tests} |")
    untested = [r for r in ids if r not in found]
    lines += ["", f"{len(ids)} requirements in the catalogue, {len(ids) - len(untested)} with tests."]
    return "\n".join(lines) + "\n"


def main() -> int:
    unknown = unknown_ids()
    if unknown:
        print(f"not in docs/requirements.md: {', '.join(unknown)}", file=sys.stderr)
        return 1
    doc = render()
    if "--check" in sys.argv:
        current = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
        return 0 if current == doc else 1
    DOC.write_text(doc, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
