"""Profile validation driven by StructureDefinition snapshots (FHIR R4 §5.1 Profiling, §2.12).

Public API::

    registry = ProfileRegistry()                       # R4 core + the KZ IG (profiles/package)
    policy = ProfilePolicy.national()                  # or ProfilePolicy() for a plain R4 server
    issues = validate_profiles(resource, policy.profiles_for(resource), registry=registry,
                               terminology=service, policy=policy)
    issues = validate_core_invariants(resource, registry)   # R4 invariants when no profile applies

``validate_profiles`` also evaluates every core invariant the profile inherits, so callers need not run
``validate_core_invariants`` as well for the same resource.
"""

from __future__ import annotations

from fhir_server.validation.profile.api import validate_core_invariants, validate_profiles
from fhir_server.validation.profile.checks import Terminology
from fhir_server.validation.profile.errata import BINDING_ERRATA, INVARIANT_ERRATA
from fhir_server.validation.profile.policy import KZ_BASE, KZ_PROFILES, ProfilePolicy
from fhir_server.validation.profile.registry import ProfileRegistry
from fhir_server.validation.profile.snapshot import SnapshotError, generate_snapshot

__all__ = [
    "BINDING_ERRATA",
    "INVARIANT_ERRATA",
    "KZ_BASE",
    "KZ_PROFILES",
    "ProfilePolicy",
    "ProfileRegistry",
    "SnapshotError",
    "Terminology",
    "generate_snapshot",
    "validate_core_invariants",
    "validate_profiles",
]
