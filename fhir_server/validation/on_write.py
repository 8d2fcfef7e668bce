"""Profile validation as a write-time validator (issue 4 §4-5): declared ``meta.profile`` entries plus
the profiles the deployment makes mandatory, after the base structural validation."""

from __future__ import annotations

from typing import Any

from fhir_server.config import Settings
from fhir_server.validation.issues import Issue
from fhir_server.validation.profile import (
    ProfilePolicy,
    ProfileRegistry,
    Terminology,
    validate_core_invariants,
    validate_profiles,
)


class ProfileValidation:
    """Callable ``(resource, mode) -> issues`` appended to ``Services.extra_validators``."""

    def __init__(self, settings: Settings, terminology: Terminology | None = None,
                 registry: ProfileRegistry | None = None) -> None:
        self.registry = registry or ProfileRegistry()
        self.terminology = terminology
        if settings.require_kz_profiles:
            self.policy = ProfilePolicy.national(relaxed_iin=settings.relaxed_iin)
        else:
            self.policy = ProfilePolicy(relaxed_iin=settings.relaxed_iin)
        self.invariants_always = settings.validate_invariants_on_write

    def __call__(self, resource: dict[str, Any], mode: str) -> list[Issue]:
        return self.validate(resource, self.policy.profiles_for(resource), invariants=self.invariants_always)

    def validate(self, resource: dict[str, Any], profiles: list[str], *, invariants: bool) -> list[Issue]:
        if profiles:
            # validate_profiles also evaluates every core invariant the profiles inherit
            return validate_profiles(resource, profiles, registry=self.registry, terminology=self.terminology,
                                     policy=self.policy)
        if invariants:
            return validate_core_invariants(resource, self.registry, relaxed_iin=self.policy.relaxed_iin)
        return []


def merge(issues: list[Issue]) -> list[Issue]:
    """Structure and profile validators may both report one finding: keep the first of each."""
    seen: set[tuple[str, str | None, str]] = set()
    out: list[Issue] = []
    for issue in issues:
        key = (issue.code, issue.expression, issue.severity)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out
