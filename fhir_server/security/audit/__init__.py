"""Audit (issue 5 part 3): BALP AuditEvent builders, the sink seam, the hash chain, access log."""

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
    CHAIN_DDL,
    GENESIS_HASH,
    ChainReport,
    ChainRow,
    append_events,
    canonical_bytes,
    events_for_patient,
    link,
    make_row,
    patient_of,
    read_rows,
    verify_chain,
    verify_database,
)
from fhir_server.security.audit.codes import MAJOR_FAILURE, MINOR_FAILURE, SERIOUS_FAILURE, SUCCESS
from fhir_server.security.audit.memory import MemoryAuditSink
from fhir_server.security.audit.notify import break_glass_notice
from fhir_server.security.audit.protocols import AuditSink

__all__ = [
    "CHAIN_DDL",
    "DEFAULT_SOURCE",
    "GENESIS_HASH",
    "MAJOR_FAILURE",
    "MINOR_FAILURE",
    "SERIOUS_FAILURE",
    "SUCCESS",
    "AuditSink",
    "AuditSource",
    "AuditTarget",
    "ChainReport",
    "ChainRow",
    "MemoryAuditSink",
    "access_log_entry",
    "append_events",
    "break_glass_notice",
    "canonical_bytes",
    "denied_event",
    "events_for_patient",
    "failed_authentication_event",
    "interaction_for",
    "link",
    "make_row",
    "patient_of",
    "read_rows",
    "rest_event",
    "rest_events",
    "verify_chain",
    "verify_database",
]
