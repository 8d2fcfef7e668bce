"""The kit's own judgement of a resource read back from the server: the KZ profiles, validated locally
with the project's profile validator (not the server's), so a server cannot pass by being lenient."""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir_server.validation import Issue
from fhir_server.validation.profile import KZ_PROFILES, ProfilePolicy, ProfileRegistry, validate_profiles
from terminology import default_service

__all__ = ["KZ_PROFILES", "format_issues", "kz_profile_issues"]


@cache
def _registry() -> ProfileRegistry:
    return ProfileRegistry()


def kz_profile_issues(resource: dict[str, Any]) -> list[Issue]:
    """Issues against the resource's declared profiles plus the KZ profile of its type (national policy)."""
    policy = ProfilePolicy.national()
    return validate_profiles(resource, policy.profiles_for(resource), registry=_registry(),
                             terminology=default_service(), policy=policy)


def format_issues(issues: list[Issue], limit: int = 5) -> str:
    shown = [f"{i.expression or '-'}: {i.diagnostics}" for i in issues[:limit]]
    more = f" (+{len(issues) - limit} more)" if len(issues) > limit else ""
    return "; ".join(shown) + more
