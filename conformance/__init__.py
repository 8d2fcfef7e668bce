"""The conformance kit: checks any FHIR R4 endpoint over HTTP against the Kazakhstan profiles and rules
(requirements TM-xx, AC-xx, MD-B/MD-D) and writes a JSON and a Markdown report. See docs/conformance-kit.md.

    report = await run("https://mis.example.kz/fhir", token=token)   # or: kzfhir conformance run --base ...
    report.exit_code, report.to_json(), report.to_markdown()

The kit uses the server package only for pure validation code (the KZ profile validator, the terminology
service, the IG examples); it never imports the server's API, interactions or storage.
"""

from conformance.model import Check, CheckResult, Evidence, Status
from conformance.registry import GROUPS, registered, select
from conformance.report import EXIT_FAIL, EXIT_KIT_ERROR, EXIT_PASS, SCHEMA, Report
from conformance.runner import run

__all__ = [
    "EXIT_FAIL",
    "EXIT_KIT_ERROR",
    "EXIT_PASS",
    "GROUPS",
    "SCHEMA",
    "Check",
    "CheckResult",
    "Evidence",
    "Report",
    "Status",
    "registered",
    "run",
    "select",
]
