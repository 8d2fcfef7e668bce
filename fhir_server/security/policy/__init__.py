"""The consent engine: one decision point for every interaction and every resource (issue 5 part 2)."""

from fhir_server.security.policy.compartment import clinical_instant
from fhir_server.security.policy.conditions import AccessRequest, describe_resource, provision_matches
from fhir_server.security.policy.consent import Ruling, consent_counts, evaluate_consent, evaluate_consents
from fhir_server.security.policy.decision import (
    CONSENT_ACTIONS,
    READ_ACTIONS,
    WRITE_ACTIONS,
    Action,
    Decision,
    Verdict,
    smart_permissions,
)
from fhir_server.security.policy.engine import AccessPolicy, total_allowed
from fhir_server.security.policy.facts import FactsCache, FactsLoader, PatientFacts, load_facts
from fhir_server.security.policy.grants import break_glass_active
from fhir_server.security.policy.issues import consent_issues
from fhir_server.security.policy.relationships import (
    REPRESENTATIVE_AUTHORITY_URL,
    caller_identities,
    verified_representatives,
)
from fhir_server.security.policy.rules import DSR_TASK_SYSTEM, PATIENT_WRITABLE, PolicySettings

__all__ = [
    "CONSENT_ACTIONS",
    "DSR_TASK_SYSTEM",
    "PATIENT_WRITABLE",
    "READ_ACTIONS",
    "REPRESENTATIVE_AUTHORITY_URL",
    "WRITE_ACTIONS",
    "AccessPolicy",
    "AccessRequest",
    "Action",
    "Decision",
    "FactsCache",
    "FactsLoader",
    "PatientFacts",
    "PolicySettings",
    "Ruling",
    "Verdict",
    "break_glass_active",
    "caller_identities",
    "clinical_instant",
    "consent_counts",
    "consent_issues",
    "describe_resource",
    "evaluate_consent",
    "evaluate_consents",
    "load_facts",
    "provision_matches",
    "smart_permissions",
    "total_allowed",
    "verified_representatives",
]
