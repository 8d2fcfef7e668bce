"""What the patient-facing operations share: who may run them, paging, and the result Bundle.

``$access-log``, ``$notifications`` and ``$data-report`` show a patient *about* their data: they are
for the patient themself and their verified representative (AC-09, AC-24, TM-18) and for the
oversight roles (auditor, admin: docs/security.md "Roles"). Being allowed to read someone's Patient
resource through a Consent or break-glass is not enough to see who else read their record.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from fhir_server.errors import FhirError
from fhir_server.operations.registry import OperationCall
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action, Decision, Verdict
from fhir_server.security.session import AccessSession

#: Policy grounds meaning "the caller is the patient, or acts for them with verified authority".
OWN_GROUNDS = frozenset({"self", "own-compartment", "representative"})
MAX_COUNT = 500


@dataclass(slots=True)
class PatientGate:
    """An opened patient operation: the session to record into and the verdict that let it run."""

    access: AccessSession
    verdict: Verdict
    patient_id: str
    target: AuditTarget

    async def done(self) -> None:
        """Audit the operation (one event for the patient) and commit it with any notification."""
        self.access.record(self.target, self.verdict, {self.patient_id})
        await self.access.flush()


def query_text(call: OperationCall) -> str:
    """``$name?params`` for the audit query entity: what exactly was asked (AC-14)."""
    params = [(k, v) for k, v in call.query if k not in ("_format", "_pretty")]
    return f"${call.name}" + (f"?{urlencode(params)}" if params else "")


async def open_patient_operation(call: OperationCall, *, require_patient: bool = False) -> PatientGate:
    """Gate ``Patient/{id}/$op``: the caller must be the patient, their verified representative or an
    oversight role the policy authorises for this operation by name (``PolicySettings.oversight_operations``
    / ``admin_operations``). A Patient the caller may not see answers 404 like an unknown one (hidden
    means absent); one they may see but is not theirs, 403 (audited).
    The Patient must exist for the patient's own path, and for oversight too when ``require_patient``
    (an access log outlives its patient; a new request does not)."""
    assert call.resource_id is not None
    pid = call.resource_id
    access = call.access
    target = AuditTarget("operation", "Patient", pid, query=query_text(call))
    verdict = call.start
    oversight = verdict.decision is not Decision.PROCEED  # (or security switched off)
    if oversight:
        if require_patient and not await access.exists_for_oversight("Patient", pid, verdict):
            raise FhirError("not_found", f"Patient/{pid} is not known", code="not-found")
        return PatientGate(access, verdict, pid, target)
    stored = await access.read("Patient", pid, interaction="operation", record=False)
    judged = await access.decide_stored(Action.READ, stored)
    if not OWN_GROUNDS & set(judged.verdict.grounds):
        reason = f"${call.name} is shown to the patient, their verified representative and oversight roles"
        await access.deny(target, Verdict.reject(reason), {pid})
    return PatientGate(access, judged.verdict, pid, target)


def int_param(call: OperationCall, name: str, default: int | None, *, low: int = 1,
              high: int = MAX_COUNT) -> int | None:
    """An integer input in ``[low, high]`` (400 naming the parameter otherwise)."""
    raw = call.one(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise FhirError("invalid", f"parameter {name!r} must be an integer", code="value",
                        expression=name) from None
    if not low <= value <= high:
        raise FhirError("invalid", f"parameter {name!r} must be between {low} and {high}", code="value",
                        expression=name)
    return value


def reject_unknown(call: OperationCall, known: frozenset[str]) -> None:
    unknown = sorted(set(call.params()) - known)
    if unknown:
        raise FhirError("invalid", f"${call.name} does not know the parameter(s) {', '.join(unknown)}",
                        code="not-supported", expression=unknown[0])


def now_instant() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def page_bundle(call: OperationCall, entries: list[dict[str, Any]], next_cursor: str | None, *,
                total: int | None = None) -> dict[str, Any]:
    """A ``searchset`` Bundle of one page, with ``self`` and (if more) ``next`` links that repeat
    the caller's parameters and carry an opaque ``_cursor`` (FHIR R4 http.html §3.1.0.1 paging)."""
    base = call.base_url.rstrip("/")
    where = f"/{call.resource_type}" if call.resource_type else ""
    where += f"/{quote(call.resource_id, safe='')}" if call.resource_id else ""
    path = f"{base}{where}/${call.name}"
    params = [(k, v) for k, v in call.query if k not in ("_cursor", "_format")]
    current = [(k, v) for k, v in call.query if k == "_cursor"]
    links = [{"relation": "self", "url": _link(path, params + current)}]
    if next_cursor is not None:
        links.append({"relation": "next", "url": _link(path, [*params, ("_cursor", next_cursor)])})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": str(uuid.uuid4()),
                              "meta": {"lastUpdated": now_instant()}, "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return bundle


def _link(path: str, params: list[tuple[str, str]]) -> str:
    return f"{path}?{urlencode(params)}" if params else path
