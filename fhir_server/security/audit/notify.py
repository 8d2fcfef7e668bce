"""The patient notice for break-glass access (AC-02: always notified; AC-18: every use notified).

The lead writes this Communication to the outbox in the same transaction as the audit record;
a worker delivers it (status ``preparation`` until then).
"""

from __future__ import annotations

import uuid
from typing import Any

from fhir_server.i18n import msg
from fhir_server.i18n.notices import payload
from fhir_server.security.context import RequestContext
from fhir_server.security.fhirtime import to_instant_text, utc_now

CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/communication-category"


def break_glass_notice(
    ctx: RequestContext, patient_id: str, resources: list[str], *, sent: float | None = None
) -> dict[str, Any]:
    """A Communication telling the patient who used emergency access to which records, and why."""
    who = ctx.fhir_user or ctx.subject or msg("notice.unidentified_user")
    organisation = msg("notice.organisation_bin", bin=ctx.organization_bin) if ctx.organization_bin else ""
    when = to_instant_text(utc_now() if sent is None else sent)
    reason = ctx.break_glass_reason or msg("notice.reason_not_given")
    text = msg("notice.break_glass", who=who, organisation=organisation, when=when, reason=reason)
    return {
        "resourceType": "Communication",
        "id": str(uuid.uuid4()),
        "status": "preparation",
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "notification"}]}],
        "priority": "urgent",
        "subject": {"reference": f"Patient/{patient_id}"},
        "recipient": [{"reference": f"Patient/{patient_id}"}],
        "about": [{"reference": ref} for ref in resources],
        "sent": when,
        "payload": payload(text),
    }
