"""access: consent opens access, revocation closes it at once, emergency access works without consent
(AC-01, AC-02, AC-10, AC-12)."""

from __future__ import annotations

import httpx

from conformance.access.grants import grant, revoke
from conformance.access.journal import Access
from conformance.access.leaks import hidden_in
from conformance.access.logs import audit_lister, log_lister
from conformance.access.records import is_emergency, wait_for
from conformance.access.scenario import Scenario, scenario
from conformance.context import RunContext
from conformance.expect import diagnostics
from conformance.http import json_body
from conformance.identities import Identity
from conformance.model import CheckFailed, Outcome, failed, passed, skipped, warning
from conformance.registry import check

GROUP = "access"


def _served(sc: Scenario, response: httpx.Response) -> bool:
    """The test Observation is in the answer (a read of it, or a searchset holding it)."""
    return response.status_code == 200 and sc.observation_ref in hidden_in(json_body(response), sc.hidden(),
                                                                           sc.patient_ref)


async def _read(ctx: RunContext, sc: Scenario, who: Identity, *, notify: bool = False) -> httpx.Response:
    return await sc.access(ctx, who, "GET", sc.observation_ref, target=sc.observation_ref, in_log=True,
                           notify=notify)


async def _search(ctx: RunContext, sc: Scenario, who: Identity, *, notify: bool = False) -> httpx.Response:
    return await sc.access(ctx, who, "GET", "Observation", params={"subject": sc.patient_ref},
                           target=sc.observation_ref, in_log=notify, notify=notify)


async def ensure_granted(ctx: RunContext, sc: Scenario) -> str:
    """The consented practitioner's Consent, recorded by the patient on first need."""
    if sc.consent_id is None:
        sc.consent_id = await grant(ctx, sc, sc.patient, sc.consented, sc.patient_ref)
    return sc.consent_id


@check("ACC-10", GROUP, "After the patient's consent the practitioner it names gets the data",
       ["AC-01", "AC-03", "AC-10", "TM-15", "R4 consent.html"])
async def access_after_consent(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    if sc.consent_id is None:
        before = await _read(ctx, sc, sc.consented)
        if before.is_success:
            return failed(f"the practitioner read {sc.observation_ref} before any consent ({before.status_code}): "
                          "absence of consent must mean no access (AC-12)")
    consent_id = await ensure_granted(ctx, sc)
    read = await _read(ctx, sc, sc.consented, notify=True)
    search = await _search(ctx, sc, sc.consented, notify=True)
    problems = []
    if not _served(sc, read):
        problems.append(f"read after consent: {read.status_code} {diagnostics(read)}")
    if not _served(sc, search):
        problems.append(f"search after consent did not return {sc.observation_ref} ({search.status_code})")
    if problems:
        return failed(f"Consent/{consent_id} (recorded by the {sc.consent_by}) grants nothing: " + "; ".join(problems))
    return passed(f"refused before, read and found after Consent/{consent_id} recorded by the {sc.consent_by}")


@check("ACC-11", GROUP, "A revoked consent stops access on the very next request",
       ["AC-01", "AC-07", "AC-12", "R4 consent.html"])
async def revocation_at_once(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    consent_id = await ensure_granted(ctx, sc)
    warm = await _read(ctx, sc, sc.consented, notify=True)  # a cached permit must not outlive the revocation
    if not _served(sc, warm):
        return skipped(f"the consent grants nothing to revoke (read {warm.status_code}); see ACC-10")
    revoked = await revoke(ctx, sc, consent_id)
    if not revoked.is_success:
        return skipped(f"the Consent could not be revoked ({revoked.status_code}: {diagnostics(revoked)})")
    sc.consent_id = None
    read = await _read(ctx, sc, sc.consented)
    search = await _search(ctx, sc, sc.consented)
    problems = [f"{what} right after the revocation still served {sc.observation_ref} ({r.status_code})"
                for what, r in (("read", read), ("search", search)) if _served(sc, r)]
    if problems:
        return failed("; ".join(problems))
    return passed(f"Consent/{consent_id} revoked ({revoked.status_code}); the next read gave {read.status_code}")


@check("ACC-12", GROUP, "Emergency (break-glass) access is allowed without consent, and only when declared",
       ["AC-02", "AC-12", "R4 security.html#break-glass"])
async def break_glass(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    emergency = sc.emergency
    if emergency is None:
        return skipped("no emergency identity (identities file: 'emergency' with its token and headers)")
    plain = Identity("unconsented", emergency.token, emergency.reference)
    if emergency.headers:  # the same token without the declaration must not be enough
        without = await _read(ctx, sc, plain)
        if without.is_success:
            return failed(f"the practitioner read {sc.observation_ref} without declaring an emergency "
                          f"({without.status_code})")
    read = await _read(ctx, sc, emergency, notify=True)
    if not _served(sc, read):
        return failed(f"emergency read of {sc.observation_ref} refused: {read.status_code} {diagnostics(read)}")
    return await _logged_as_emergency(ctx, sc, sc.journal.accesses[-1])


async def _logged_as_emergency(ctx: RunContext, sc: Scenario, access: Access) -> Outcome:
    """AC-02 grants the access *and* requires it on record as an emergency: the auditor's trail, else the
    patient's access log, must hold the read with its emergency purpose or reason."""
    lister = audit_lister(ctx, sc)
    where = "the AuditEvents"
    if lister is None:
        lister, path = log_lister(ctx, sc)
        where = f"the patient's access log ({path})"
    try:
        found, _ = await wait_for(lister, [access], ctx.record_wait)
    except CheckFailed as exc:
        return warning(f"emergency read served; its record cannot be read ({exc})")
    if 0 not in found:
        return failed(f"emergency read served but not on record in {where} ({access.describe()})")
    if not is_emergency(found[0]):
        return failed(f"emergency read recorded in {where} without its emergency purpose (BTG) or reason")
    return passed(f"emergency read served ({access.status}) and recorded as an emergency in {where}")
