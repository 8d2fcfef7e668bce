"""Where the records of the kit's accesses are read: the audit trail (AuditEvent search by an auditor,
AC-14), the patient's access log (AC-24) and the patient's notifications (AC-18).

The paths follow the CapabilityStatement: kzfhir's ``Patient/[id]/$access-log`` and
``Patient/[id]/$notifications`` when declared, else the plain R4 searches (``AuditEvent?patient=``,
``Communication?recipient=``); an identities file may name others (``endpoints``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conformance.access.records import Lister, fetch_records
from conformance.access.scenario import Scenario
from conformance.capability import operations
from conformance.context import RunContext

__all__ = ["audit_lister", "log_lister", "notice_lister"]

_COUNT = "200"


def _since(sc: Scenario) -> str:
    return (sc.started - timedelta(minutes=1)).isoformat(timespec="seconds")


def audit_lister(ctx: RunContext, sc: Scenario) -> Lister | None:
    """All AuditEvents recorded since the run began, as the auditor sees them (None: no auditor)."""
    auditor = sc.auditor
    if auditor is None:
        return None

    async def listing() -> list[dict[str, Any]]:
        return await fetch_records(ctx, auditor, "AuditEvent", {"_count": _COUNT}, ("date", f"ge{_since(sc)}"))

    return listing


def _path(ctx: RunContext, sc: Scenario, key: str, operation: str, fallback: str) -> tuple[str, bool]:
    template = sc.endpoints.get(key)
    if template:
        return template.replace("{id}", sc.patient_id), False
    if operation in operations(ctx.capability, "Patient"):
        return f"{sc.patient_ref}/${operation}", True
    return fallback, False


def log_lister(ctx: RunContext, sc: Scenario) -> tuple[Lister, str]:
    """The patient's access log read with the patient's own token, and the path used."""
    path, is_operation = _path(ctx, sc, "accessLog", "access-log", "AuditEvent")
    params = {"_count": _COUNT} if is_operation or sc.endpoints.get("accessLog") else {
        "_count": _COUNT, "patient": sc.patient_ref}
    since = ("_since", _since(sc)) if is_operation else ("date", f"ge{_since(sc)}")

    async def listing() -> list[dict[str, Any]]:
        return await fetch_records(ctx, sc.patient, path, params, since)

    return listing, path


def notice_lister(ctx: RunContext, sc: Scenario) -> tuple[Lister, str]:
    """The patient's notifications read with the patient's own token, and the path used."""
    path, is_operation = _path(ctx, sc, "notifications", "notifications", "Communication")
    params = {"_count": _COUNT} if is_operation or sc.endpoints.get("notifications") else {
        "_count": _COUNT, "recipient": sc.patient_ref}

    async def listing() -> list[dict[str, Any]]:
        return await fetch_records(ctx, sc.patient, path, params, None)

    return listing, path
