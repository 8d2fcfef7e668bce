"""The requirements a report gives a verdict for: every ID of the two regulations (requirements.md,
copied here in short so the kit needs no file beside it), which checks decide it, and why the kit
cannot test the ones beyond an HTTP client's reach.

``needs``: the checks that must all be judged for a verdict. A requirement whose deciding checks were
skipped is *not tested*, even if some weaker check covering it passed: SEC-02 passing says nothing
about consent, so AC-12 is only passed once the access checks ran (issue 18: "62/62" for a proxy).
``critical``: a certification run (all checks) is conformant only when each of these passed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CRITICAL", "REQUIREMENTS", "Requirement", "by_id"]

_ACC_DENY = ("ACC-01", "ACC-02", "ACC-03", "ACC-04", "ACC-05", "ACC-06", "ACC-07", "ACC-08", "ACC-09", "ACC-13",
             "ACC-14", "ACC-15")
_OUTSIDE_SIDE_EFFECT = "an outbound side effect: nothing an HTTP client of the FHIR API can observe"
_OUTSIDE_PROCESS = "an organisational process or deadline, not a behaviour of the FHIR API in one run"


@dataclass(frozen=True, slots=True)
class Requirement:
    id: str
    title: str
    needs: tuple[str, ...] = ()
    outside: str = ""  # why no check can test it over HTTP (empty: checks cover it)


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("TM-01", "Informatization law and unified ICT/information-security requirements",
                ("SEC-02", "SEC-03", "SEC-04")),
    Requirement("TM-02", "Audio-visual contact, messages, documents and images"),
    Requirement("TM-03", "Acceptance of the public offer", outside="a contract accepted in the MIS user interface"),
    Requirement("TM-04", "Identification and authentication of patients and workers (IIN)",
                ("SEC-03", "SEC-04", "KZ-03", "KZ-20")),
    Requirement("TM-05", "Medical workers' schedules"),
    Requirement("TM-06", "Booking for consultations and care"),
    Requirement("TM-07", "Informed consent to receive care"),
    Requirement("TM-08", "Requests for a consilium"),
    Requirement("TM-09", "Notifications of consultation date/time, cancellation or rescheduling",
                outside=_OUTSIDE_SIDE_EFFECT),
    Requirement("TM-10", "Records entered into the health passport signed with the doctor's EDS",
                outside="the kit holds no national test PKI to sign clinical records with"),
    Requirement("TM-11", "Data transfer to the NEHP and the authorised body's resources"),
    Requirement("TM-12", "Patient's personal cabinet", outside="a web portal, not the FHIR API"),
    Requirement("TM-13", "Documenting transfer and receipt of health information", ("ACC-20",)),
    Requirement("TM-14", "Processing of health data with ICT"),
    Requirement("TM-15", "Access for the attending doctor of remote monitoring"),
    Requirement("TM-16", "Messages with recommendations on adherence and lifestyle", outside=_OUTSIDE_SIDE_EFFECT),
    Requirement("TM-17", "Storage, processing and protection of personal medical data",
                outside="storage, encryption and backups are not visible over FHIR"),
    Requirement("TM-18", "Patients see their health information and the access log", ("ACC-21",)),
    Requirement("TM-19", "Integration with the GOBMP/OSMS payment systems", outside=_OUTSIDE_SIDE_EFFECT),
    Requirement("TM-20", "Telecom means integrated with the information systems"),
    Requirement("TM-21", "Telecom means protect personal data and medical secrecy",
                outside="the video/chat channel is not part of the FHIR API"),
    Requirement("TM-22", "Remote monitoring of health"),
    Requirement("TM-23", "Automatic receipt of data from certified wearables"),
    Requirement("TM-24", "Manual entry of health data"),
    Requirement("TM-25", "Monitoring and control of health indicators",
                outside="threshold evaluation happens inside the server; its alerts are side effects"),
    Requirement("TM-26", "Emergency alerting on critical deviations", outside=_OUTSIDE_SIDE_EFFECT),
    Requirement("AC-01", "Access only with the owner's (or representative's) consent",
                (*_ACC_DENY, "ACC-10", "ACC-11")),
    Requirement("AC-02", "Emergency care: access without consent (break-glass), on record", ("ACC-12",)),
    Requirement("AC-03", "With consent, access within the subject's functions"),
    Requirement("AC-04", "The subject asks the owner for consent", outside=_OUTSIDE_PROCESS),
    Requirement("AC-05", "Data collected from the owner, their documents and records", outside=_OUTSIDE_PROCESS),
    Requirement("AC-06", "Consent in writing, electronically or via the e-government portal"),
    Requirement("AC-07", "Consent content (IINs, subject, purpose, data, actions, validity, revocation ...)"),
    Requirement("AC-08", "A written consent entered with the subject's EDS"),
    Requirement("AC-09", "The representative's authority is verified"),
    Requirement("AC-10", "The owner can grant access to third parties", ("ACC-10",)),
    Requirement("AC-11", "Access without consent in the legal exceptions",
                outside="needs a legal-exception identity and basis the kit is not given"),
    Requirement("AC-12", "Absence of consent is never consent: deny by default", (*_ACC_DENY, "SEC-02")),
    Requirement("AC-13", "Confidentiality, integrity and availability"),
    Requirement("AC-14", "Logging who placed, changed or deleted which e-resource, and when", ("ACC-20",)),
    Requirement("AC-15", "The patient may request information about their data", outside=_OUTSIDE_PROCESS),
    Requirement("AC-16", "Answer within 3 working days", outside=_OUTSIDE_PROCESS),
    Requirement("AC-17", "Reasoned refusal within 3 working days", outside=_OUTSIDE_PROCESS),
    Requirement("AC-18", "Automatic notification of every use, change or addition", ("ACC-22",)),
    Requirement("AC-19", "De-identification for analytics and research",
                outside="needs a research identity and a de-identified export profile the kit is not given"),
    Requirement("AC-20", "No disclosure by people who learned the data", outside=_OUTSIDE_PROCESS),
    Requirement("AC-21", "Complaints to the authority: the evidence is kept"),
    Requirement("AC-22", "Data collected in breach destroyed on demand", outside=_OUTSIDE_PROCESS),
    Requirement("AC-23", "Cross-border transfer only under the law's conditions"),
    Requirement("AC-24", "The individual follows the data access log", ("ACC-21",)),
    Requirement("AC-25", "Electronic records are entered with the worker's EDS",
                outside="the kit holds no national test PKI to sign clinical records with"),
    Requirement("AC-26", "Processing: changes, use, dissemination, blocking, destruction"),
    Requirement("AC-27", "Corrections on the patient's request within 3 working days", outside=_OUTSIDE_PROCESS),
    Requirement("MD-B", "Minimal data set at booking", ("KZ-04", "KZ-24", "KZ-25", "KZ-26", "KZ-27")),
    Requirement("MD-D", "Minimal data set at delivery of a remote service", ("KZ-05", "KZ-28", "KZ-29", "KZ-30")),
)

# What a regulator certifies on (issue 18): consent, emergency access, audit, access log, notices,
# authentication and the minimal data sets.
CRITICAL: frozenset[str] = frozenset({"TM-01", "TM-04", "AC-01", "AC-02", "AC-10", "AC-12", "AC-14", "AC-18",
                                      "AC-24", "MD-B", "MD-D"})


def by_id() -> dict[str, Requirement]:
    return {r.id: r for r in REQUIREMENTS}
