"""The two entry points: validation against profiles, and the R4 core invariants alone."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_server.validation.issues import Issue, Severity
from fhir_server.validation.profile.checks import Terminology
from fhir_server.validation.profile.policy import ProfilePolicy
from fhir_server.validation.profile.registry import CORE_PREFIX, ProfileRegistry
from fhir_server.validation.profile.snapshot import SnapshotError
from fhir_server.validation.profile.walker import Walk

__all__ = ["validate_core_invariants", "validate_profiles"]


def _unique(issues: list[Issue]) -> list[Issue]:
    """Several profiles share their base rules; report each finding once, in order."""
    return list(dict.fromkeys(issues))


def validate_profiles(
    resource: dict[str, Any],
    profile_urls: Iterable[str],
    *,
    registry: ProfileRegistry,
    terminology: Terminology | None = None,
    policy: ProfilePolicy | None = None,
    invariants: bool = True,
    requested: Iterable[str] = (),
    memo: dict[Any, Any] | None = None,
    fast: bool = True,
) -> list[Issue]:
    """Validate ``resource`` against each profile (cardinality, types, fixed/pattern, slicing, bindings,
    invariants, references, extensions). Unknown profile URLs give a warning (an error when the policy
    requires the profile or the caller asked for it by name in ``requested``); a profile for another
    resource type gives an error. ``invariants=False`` leaves the FHIRPath invariants out. ``memo``: subtrees
    judged before are not walked again (``Walk.memo``; for a caller whose profiles and terminology stay the same
    while it lives). ``fast=False`` walks without the shortcuts (``Walk.fast``), the reference they are tested
    against. The resource is never modified.
    """
    walk = Walk(registry, terminology, relaxed_iin=policy.relaxed_iin if policy else False, invariants=invariants,
                memo=memo, fast=fast)
    resource_type = str(resource.get("resourceType"))
    required = set(policy.required.get(resource_type, ())) if policy else set()
    required.update(requested)
    for url in dict.fromkeys(profile_urls):
        try:
            profile = registry.compiled(url)
        except (SnapshotError, KeyError, TypeError, ValueError) as exc:  # an uploaded profile that is broken
            walk.issues.append(Issue("error", "exception", f"Profile {url} cannot be used: {exc}",
                                     f"{resource_type}.meta.profile"))
            continue
        if profile is None:
            severity: Severity = "error" if url in required else "warning"
            walk.issues.append(Issue(severity, "not-supported", f"Profile {url} is not known; not validated",
                                     f"{resource_type}.meta.profile"))
        elif profile.type != resource_type:
            walk.issues.append(Issue("error", "invalid", f"Profile {url} is for {profile.type}, not "
                                     f"{resource_type}", f"{resource_type}.meta.profile"))
        else:
            walk.resource(resource, profile, resource_type, resource)
    return _unique(walk.issues)


def validate_core_invariants(
    resource: dict[str, Any], registry: ProfileRegistry, *, relaxed_iin: bool = False
) -> list[Issue]:
    """The invariants of the R4 base definition of the resource and of every data type it uses,
    including contained and Bundle entry resources (R4 §2.12.0.3 constraints), with errata applied.
    """
    resource_type = str(resource.get("resourceType"))
    profile = registry.compiled(CORE_PREFIX + resource_type)
    if profile is None:
        return [Issue("error", "not-supported", f"Unknown resource type {resource_type}", resource_type)]
    walk = Walk(registry, None, relaxed_iin=relaxed_iin, invariants_only=True)
    walk.resource(resource, profile, resource_type, resource)
    return _unique(walk.issues)
