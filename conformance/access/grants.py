"""Granting and revoking a practitioner's access the way the rules say: the owner consents (AC-01, AC-10)
and may revoke at any time (AC-07 "how to revoke"); the revocation counts at once.

The Consent is the kit's KZ access Consent (consent.py, profile kz-consent, content per AC-07) naming
the grantee by reference. The patient records it with their own token; a server that keeps patients
from writing Consents gets it from the writer instead, as the MIS enters a signed written form (AC-08).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from conformance.access.scenario import Scenario
from conformance.consent import grantees
from conformance.context import RunContext
from conformance.expect import diagnostics
from conformance.fixtures import created_id
from conformance.http import json_body
from conformance.identities import Identity
from conformance.model import CheckSkipped

__all__ = ["grant", "revoke"]


async def _post(ctx: RunContext, sc: Scenario, who: Identity | None, consent: dict[str, Any]) -> httpx.Response:
    return await sc.access(ctx, who, "POST", "Consent", json=consent, target="Consent")


async def grant(ctx: RunContext, sc: Scenario, owner: Identity | None, grantee: Identity,
                patient_ref: str) -> str:
    """Record ``owner``'s (the patient's) Consent granting ``grantee``; its id. CheckSkipped when neither
    the patient nor the writer may record it."""
    consent = await ctx.fixtures.consent_for(patient_ref, grantees({"fhirUser": str(grantee.reference)}, None))
    response = await _post(ctx, sc, owner, consent) if owner else None
    recorder = "patient"
    if response is None or response.status_code not in (200, 201):
        recorder = "writer"
        response = await _post(ctx, sc, None, consent)
    consent_id = created_id(response) if response.status_code in (200, 201) else None
    if consent_id is None:
        raise CheckSkipped(f"no consent could be recorded for {grantee.label} on {patient_ref} "
                           f"({response.status_code}: {diagnostics(response)})")
    ctx.fixtures.track("Consent", consent_id, owner if recorder == "patient" else None)
    if patient_ref == sc.patient_ref:
        sc.consent_by = recorder
    return consent_id


async def revoke(ctx: RunContext, sc: Scenario, consent_id: str) -> httpx.Response:
    """Revoke the Consent (status inactive, provision period ended now: kz-cns-3), by whoever recorded it."""
    who = sc.patient if sc.consent_by == "patient" else None
    current = await sc.access(ctx, who, "GET", f"Consent/{consent_id}", target=f"Consent/{consent_id}")
    consent = json_body(current)
    if current.status_code != 200 or consent is None:
        raise CheckSkipped(f"Consent/{consent_id} cannot be read back to revoke it ({current.status_code})")
    consent["status"] = "inactive"
    provision = consent.setdefault("provision", {})
    provision.setdefault("period", {})["end"] = datetime.now(UTC).isoformat(timespec="seconds")
    return await sc.access(ctx, who, "PUT", f"Consent/{consent_id}", json=consent, target=f"Consent/{consent_id}")
