"""Access beyond duties, flagged for the auditor (AC-20: no disclosure by people who learned the data in their
duties; the operator must be able to find who looked beyond them).

A practitioner's access that the patient's Consent permits is still *flagged* (never refused: the Consent
decides, AC-01) when nothing ties the practitioner to this patient's care:

* ``no-care-relationship`` — the caller is in none of the patient's care relationships (an active
  CareTeam membership, the care manager of an active EpisodeOfCare, requester or performer of an active
  ServiceRequest: ``relationships.caller_identities``) and no Consent that granted the access names the
  caller personally: the access came from a broad grant (to the organisation by BIN, or to anyone);
* ``purpose-beyond-care`` — the caller declared a purpose of use that is not care
  (``X-Purpose-Of-Use``: research, marketing, payment …) while acting as a practitioner;
* ``break-glass`` — emergency access without consent (AC-02), also audited with purpose BTG.

The flags ride on the Verdict (``Verdict.flags``) into the AuditEvent (``security/audit/balp.py``: a
``detail`` of type ``access-flag`` on the request entity), on every path including the compiled read by id,
whose audit template is built from the same verdict. ``GET AuditEvent/$access-flags`` lists them for the auditor.
"""

from __future__ import annotations

from fhir_server.security.context import RequestContext
from fhir_server.security.roles import PRACTITIONER

NO_CARE_RELATIONSHIP = "no-care-relationship"
PURPOSE_BEYOND_CARE = "purpose-beyond-care"
BREAK_GLASS = "break-glass"
FLAG_DETAIL = "access-flag"
#: v3 PurposeOfUse codes that are care of the patient (v3-ActReason: TREAT and its specialisations used here)
CARE_PURPOSES = frozenset({"TREAT", "ETREAT", "CAREMGT", "CLINTRL", "POPHLTH", "PATRQT", "FAMRQT", "BTG"})


def duty_flags(ctx: RequestContext, identities: frozenset[str], named: bool) -> tuple[str, ...]:
    """The flags of a practitioner's consented access: ``identities`` are the caller's identities for the
    patient (care-team ids among them), ``named`` whether a granting Consent names the caller personally."""
    if ctx.role != PRACTITIONER:
        return ()
    flags = []
    if not named and not any(i.startswith("CareTeam/") for i in identities):
        flags.append(NO_CARE_RELATIONSHIP)
    if (ctx.purpose_of_use or "TREAT") not in CARE_PURPOSES:
        flags.append(PURPOSE_BEYOND_CARE)
    return tuple(flags)
