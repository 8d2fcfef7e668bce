"""Audit (issue 5 part 3): BALP AuditEvent builders, the sink seam, the hash chain's rules, access log.

No SQL here: the rows live in a backend behind the audit seam (storage/audit.py), which gets these
rules injected (``rules.CHAIN_RULES``, composed in fhir_server/backends.py)."""

from fhir_server.security.audit.access_log import access_log_entry
from fhir_server.security.audit.balp import (
    DEFAULT_SOURCE,
    AuditSource,
    AuditTarget,
    denied_event,
    failed_authentication_event,
    interaction_for,
    rest_event,
    rest_events,
)
from fhir_server.security.audit.chain import (
    GENESIS_HASH,
    ChainReport,
    ChainRow,
    canonical_bytes,
    link,
    make_row,
    patient_of,
    verify_chain,
)
from fhir_server.security.audit.codes import MAJOR_FAILURE, MINOR_FAILURE, SERIOUS_FAILURE, SUCCESS
from fhir_server.security.audit.notify import break_glass_notice

__all__ = [
    "DEFAULT_SOURCE",
    "GENESIS_HASH",
    "MAJOR_FAILURE",
    "MINOR_FAILURE",
    "SERIOUS_FAILURE",
    "SUCCESS",
    "AuditSource",
    "AuditTarget",
    "ChainReport",
    "ChainRow",
    "access_log_entry",
    "break_glass_notice",
    "canonical_bytes",
    "denied_event",
    "failed_authentication_event",
    "interaction_for",
    "link",
    "make_row",
    "patient_of",
    "rest_event",
    "rest_events",
    "verify_chain",
]
