"""Profile validation as a write-time validator (issue 4 §4-5, issue 14 §1-2): declared ``meta.profile``
entries, the profiles the deployment makes mandatory and those R4 implies, or the R4 base definition, after
the base structural validation. ``$validate`` calls the same ``ProfileValidation.validate``."""

from __future__ import annotations

from typing import Any

from fhir_server.config import Settings
from fhir_server.validation.bundles import bundle_issues, parameters_issues
from fhir_server.validation.issues import Issue
from fhir_server.validation.profile import (
    ProfilePolicy,
    ProfileRegistry,
    SnapshotError,
    Terminology,
    generate_snapshot,
    validate_profiles,
)
from fhir_server.validation.profile.core_profiles import implied_profiles
from fhir_server.validation.profile.errata import apply_example_errata
from fhir_server.validation.profile.registry import CORE_PREFIX


class ProfileValidation:
    """Callable ``(resource, mode) -> issues`` appended to ``Services.extra_validators``.

    Every resource is walked against profiles (``validate``): those it declares, those the deployment makes
    mandatory, and the R4 base definition of its type when none applies (extensions and their contexts,
    reference targets, bindings, choice types). Invariants and the profiles R4 implies by content (vital
    signs) run when asked (``$validate``, or the ``validate_invariants_on_write`` setting on writes);
    invariants always run for profiled resources.
    """

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
        """``profiles``: the policy's profiles for the resource, plus any the caller asks for by name (an
        unknown one of those is an error; an unknown declared ``meta.profile`` is a warning)."""
        strict = invariants  # $validate, or writes with validate_invariants_on_write: the reference's rules
        declared = set(resource.get("meta", {}).get("profile", [])) if isinstance(resource.get("meta"), dict) else set()
        requested = [p for p in profiles if p not in declared]
        # The profiles R4 implies by content (vital signs) are, like the invariants, R4 rules beyond the
        # definition of the type: always in $validate, on writes with validate_invariants_on_write.
        implied = implied_profiles(resource) if invariants else []
        chosen = list(dict.fromkeys([*profiles, *implied]))
        profiled = any(self.registry.compiled(url) is not None for url in chosen)
        if profiled:
            invariants = True  # validate_profiles evaluates every core invariant the profiles inherit
        else:
            chosen.append(CORE_PREFIX + str(resource.get("resourceType")))  # no known profile: the base rules
        issues = validate_profiles(resource, chosen, registry=self.registry, terminology=self.terminology,
                                   policy=self.policy, invariants=invariants, requested=requested)
        if resource.get("resourceType") == "Bundle" and strict:
            issues += bundle_issues(resource, self.registry.is_resource_type)
        elif resource.get("resourceType") == "Parameters" and strict:
            issues += parameters_issues(resource, self.registry.is_resource_type)
        elif resource.get("resourceType") == "StructureDefinition":
            issues += self._usable_profile(resource)
        if not strict:
            issues = [issue for issue in issues if _enforced_when_lenient(issue) or not _strict_only(issue, profiled)]
        return apply_example_errata(resource, issues)

    def _usable_profile(self, sd: dict[str, Any]) -> list[Issue]:
        """A StructureDefinition stored here becomes a profile (validation/uploaded.py): its snapshot must be
        derivable from its differential and base."""
        if "snapshot" in sd or sd.get("derivation") != "constraint" or "differential" not in sd:
            return []
        try:
            generate_snapshot(sd, self.registry.structure)
        except SnapshotError as exc:
            return [Issue("error", "exception", f"Error generating the snapshot: {exc}", "StructureDefinition")]
        except (KeyError, TypeError, ValueError) as exc:
            return [Issue("error", "exception", f"Error generating the snapshot: {exc!r}", "StructureDefinition")]
        return []


# What a default (lenient) write enforces of the base walk of an unprofiled resource. Its other findings, the
# Bundle rules and extensions nobody defines are errors in $validate and with validate_invariants_on_write, and
# a default write leaves them out (docs/validation.md, "strict and lenient").
def _enforced_when_lenient(issue: Issue) -> bool:
    text = issue.diagnostics
    return (
        (": a reference to " in text and " is not allowed here" in text)  # reference target types
        or text.endswith("a modifier extension must be understood")  # unknown modifierExtension
        or (text.startswith("Extension ") and " is not allowed on " in text)  # extension context
        or text.startswith("Extension.value[x]: type ")  # extension value type
        or text.startswith("Error generating the snapshot")  # an uploaded profile that cannot be used
    )


def _strict_only(issue: Issue, profiled: bool) -> bool:
    """An error only $validate (and a strict server) reports: a default write leaves it out."""
    if not issue.is_error:
        return False
    if profiled:  # a declared or mandatory profile is enforced whole, as it always was; undefined extensions
        return issue.diagnostics.startswith("Unknown extension ")  # stay a warning there
    return True


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
