"""access: every access the kit made is on record — an AuditEvent for each (AC-14, TM-13), a line in the
patient's access log for each access to their data (AC-24, TM-18), a notice to the patient for each use
by someone else (AC-18) — and emergency access is recorded as such (AC-02).

The accesses are those the access checks journaled (access/journal.py), refusals, empty searches and
reads of unknown ids included; a check run alone first makes a few of its own (``_baseline``).
"""

from __future__ import annotations

from collections.abc import Mapping

from conformance.access.journal import Access
from conformance.access.judge import absent_id
from conformance.access.logs import audit_lister, log_lister, notice_lister
from conformance.access.records import Lister, is_emergency, wait_for
from conformance.access.scenario import Scenario, scenario
from conformance.checks.access_consent import ensure_granted
from conformance.context import RunContext
from conformance.examples import MARKER_SYSTEM
from conformance.model import CheckFailed, Outcome, failed, passed, skipped
from conformance.registry import check

GROUP = "access"
_SHOWN = 8


async def _baseline(ctx: RunContext, sc: Scenario) -> None:
    """Accesses every record must show, when no access check ran before: a refused read of the patient's
    Observation, a read of an unknown id and a search that finds nothing."""
    if any(a.in_log for a in sc.journal.accesses):
        return
    await sc.access(ctx, sc.unconsented, "GET", sc.observation_ref, target=sc.observation_ref, in_log=True)
    await sc.access(ctx, sc.unconsented, "GET", f"Observation/{absent_id()}")
    await sc.access(ctx, sc.unconsented, "GET", "Observation", params={"identifier": f"{MARKER_SYSTEM}|{absent_id()}"})


def _missing(accesses: list[Access], found: Mapping[int, object]) -> list[str]:
    lost = [a.describe() for i, a in enumerate(accesses) if i not in found]
    more = f" (+{len(lost) - _SHOWN} more)" if len(lost) > _SHOWN else ""
    return lost[:_SHOWN] + ([more] if more else [])


async def judge_records(ctx: RunContext, lister: Lister, accesses: list[Access], where: str, *,
                        notices: bool = False) -> Outcome:
    """Every access has a record in ``where``; an emergency access's record says so (not required of
    notices: their wording is free). Records may be written asynchronously (kzfhir chains journaled
    reads about once a second): the kit waits up to ``ctx.record_wait`` seconds."""
    try:
        found, seen = await wait_for(lister, accesses, ctx.record_wait, exclusive=not notices)
    except CheckFailed as exc:
        return failed(f"{where} cannot be read: {exc}")
    lost = _missing(accesses, found)
    unmarked = [a.describe() for i, a in enumerate(accesses) if a.emergency and i in found and not notices
                and not is_emergency(found[i])]
    problems = ([f"{len(accesses) - len(found)} of {len(accesses)} accesses have no record in {where}: "
                 + "; ".join(lost)] if lost else [])
    if unmarked:
        problems.append("emergency access recorded without its emergency purpose or reason: " + "; ".join(unmarked))
    if problems:
        return failed(" ".join(problems) + f" ({seen} records read)")
    return passed(f"all {len(accesses)} accesses found in {where} ({seen} records read)")


@check("ACC-20", GROUP, "Every access of the kit, refused and empty ones included, has an AuditEvent",
       ["AC-14", "TM-13", "AC-21", "R4 auditevent.html"])
async def audit_events_for_every_access(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    lister = audit_lister(ctx, sc)
    if lister is None:
        return skipped("no auditor identity: the audit trail cannot be read (identities file: 'auditor')")
    await _baseline(ctx, sc)
    return await judge_records(ctx, lister, sc.journal.audited(), "the AuditEvents")


@check("ACC-21", GROUP, "The patient's access log shows each access to their data, refusals and "
       "emergencies included", ["AC-24", "TM-18", "AC-14"])
async def access_log_shows_each_access(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    await _baseline(ctx, sc)
    lister, path = log_lister(ctx, sc)
    return await judge_records(ctx, lister, sc.journal.logged(), f"the patient's access log ({path})")


@check("ACC-22", GROUP, "The patient is notified of each use of their data by someone else",
       ["AC-18"])
async def patient_notified(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    if not sc.journal.notified():  # run alone: one use by the consented practitioner to be told of
        await ensure_granted(ctx, sc)
        await sc.access(ctx, sc.consented, "GET", sc.observation_ref, target=sc.observation_ref, in_log=True,
                        notify=True)
    lister, path = notice_lister(ctx, sc)
    probe = await ctx.client.get(path.split("?")[0], identity=sc.patient, params={"_count": "1"})
    if probe.status_code in (404, 405, 501):
        return skipped(f"the patient's notifications cannot be read ({path}: {probe.status_code}); notices "
                       "may go out by another channel the kit cannot observe")
    where = f"the patient's notifications ({path})"
    return await judge_records(ctx, lister, sc.journal.notified(), where, notices=True)
