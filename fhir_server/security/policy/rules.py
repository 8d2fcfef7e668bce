"""Role rules that are policy choices rather than FHIR definitions (docs/security.md, "Roles")."""

from __future__ import annotations

from dataclasses import dataclass, field

from fhir_server.security.refs import KZ_BASE

#: What a patient (or a verified representative acting for them) may create/update in their own
#: compartment. Everything else there is a medical record entered by medical workers with their
#: EDS (AC-25); a patient asks for corrections through a request (Task, AC-27).
PATIENT_WRITABLE = frozenset(
    {
        "Observation",  # manual entry of readings (TM-24)
        "Consent",  # giving and revoking consent (AC-01, AC-06)
        "QuestionnaireResponse",
        "Communication",  # messages with medical workers (TM-02)
        "Appointment",  # booking (TM-06)
        "AppointmentResponse",
        "Task",  # data-subject and correction requests (AC-15, AC-27)
        "DocumentReference",  # documents the patient provides (AC-05)
    }
)

#: Consent statuses a medical worker may record on a patient's behalf: a request for consent
#: (AC-04) or a written form awaiting the patient's activation. Only the patient, a verified
#: representative, or the organisation's system (recording a signed written consent, AC-08)
#: can make a Consent active.
WORKER_CONSENT_STATUSES = frozenset({"draft", "proposed"})

#: Task.code system that marks a data-subject request (AC-15..AC-17) on the admin's queue.
DSR_TASK_SYSTEM = f"{KZ_BASE}/CodeSystem/kz-data-subject-request"


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """Tunable parts of the policy; the defaults are the documented behaviour."""

    patient_writable: frozenset[str] = PATIENT_WRITABLE
    #: Operations (names without ``$``) an auditor may run: oversight only.
    oversight_operations: frozenset[str] = frozenset({"access-log", "access-report", "audit-verify", "notifications"})
    #: Operations an admin may run in addition (queue handling, audit verification).
    admin_operations: frozenset[str] = field(
        default_factory=lambda: frozenset({"access-log", "audit-verify", "data-subject-request", "notifications",
                                           "data-report", "dsr-answer", "dsr-overdue", "expunge", "access-report",
                                           "block", "unblock", "deliveries", "conformance-run",
                                           "conformance-runs"})
    )
    dsr_task_system: str = DSR_TASK_SYSTEM
