"""Profile validation as a write-time validator (issue 4 §4-5, issue 14 §1-2): declared ``meta.profile``
entries, the profiles the deployment makes mandatory and those R4 implies, or the R4 base definition, after
the base structural validation. ``$validate`` calls the same ``ProfileValidation.validate`` at the strict
level; writes at the ``write_validation`` level."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal, cast

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

Level = Literal["strict", "standard", "lenient"]
LEVELS: tuple[Level, ...] = ("strict", "standard", "lenient")


def write_level(settings: Settings) -> Level:
    """The judgement writes use: ``write_validation``, or the deprecated ``validate_invariants_on_write``."""
    if settings.validate_invariants_on_write is not None:
        return "strict" if settings.validate_invariants_on_write else "lenient"
    level = settings.write_validation
    if level not in LEVELS:  # the setting's pattern keeps it one of them
        raise ValueError(f"KZFHIR_WRITE_VALIDATION must be one of {', '.join(LEVELS)}, not {level!r}")
    return cast(Level, level)


class ProfileValidation:
    """Callable ``(resource, mode) -> issues`` appended to ``Services.extra_validators``.

    Every resource is walked against profiles (``validate``): those it declares, those the deployment makes
    mandatory, and the R4 base definition of its type when none applies (extensions and their contexts,
    reference targets, bindings, choice types). How much of the reference validator's judgement applies is
    the level (docs/validation.md, "Strict and lenient"): ``$validate`` is always ``strict``; writes use
    ``write_validation`` (``standard`` by default: every invariant and Bundle rule, issue 14 §2).
    """

    def __init__(self, settings: Settings, terminology: Terminology | None = None,
                 registry: ProfileRegistry | None = None) -> None:
        self.registry = registry or ProfileRegistry()
        self.terminology = terminology
        if settings.require_kz_profiles:
            self.policy = ProfilePolicy.national(relaxed_iin=settings.relaxed_iin)
        else:
            self.policy = ProfilePolicy(relaxed_iin=settings.relaxed_iin)
        self.level = write_level(settings)
        # Subtrees judged before (profile/walker.py ``Walk.memo``): off in the server, whose profiles and
        # terminology change as they are uploaded; an ``$import`` worker process, which lives for one job, sets it.
        self.memo: dict[Any, Any] | None = None
        # False: the walk without its shortcuts (profile/walker.py ``Walk.fast``), for the tests that hold them to it
        self.fast = True

    def __call__(self, resource: dict[str, Any], mode: str) -> list[Issue]:
        return self.validate(resource, self.policy.profiles_for(resource), level=self.level)

    def validate(self, resource: dict[str, Any], profiles: list[str], *, level: Level = "strict") -> list[Issue]:
        """``profiles``: the policy's profiles for the resource, plus any the caller asks for by name (an
        unknown one of those is an error; an unknown declared ``meta.profile`` is a warning)."""
        declared = set(resource.get("meta", {}).get("profile", [])) if isinstance(resource.get("meta"), dict) else set()
        requested = [p for p in profiles if p not in declared]
        # The profiles R4 implies by content (vital signs) are R4 rules beyond the definition of the type that
        # most senders do not meet (Synthea's vital signs miss their slices): strict only.
        implied = implied_profiles(resource) if level == "strict" else []
        chosen = list(dict.fromkeys([*profiles, *implied]))
        profiled = any(self.registry.compiled(url) is not None for url in chosen)
        # validate_profiles evaluates every core invariant a profile inherits; of an unprofiled resource only
        # above the lenient level
        invariants = profiled or level != "lenient"
        if not profiled:
            chosen.append(CORE_PREFIX + str(resource.get("resourceType")))  # no known profile: the base rules
        issues = validate_profiles(resource, chosen, registry=self.registry, terminology=self.terminology,
                                   policy=self.policy, invariants=invariants, requested=requested, memo=self.memo,
                                   fast=self.fast)
        if resource.get("resourceType") == "Bundle" and level != "lenient":
            issues += bundle_issues(resource, self.registry.is_resource_type)
        elif resource.get("resourceType") == "Parameters" and level != "lenient":
            issues += parameters_issues(resource, self.registry.is_resource_type)
        elif resource.get("resourceType") == "StructureDefinition":
            issues += self._usable_profile(resource)
        if level == "standard":
            issues = [_as_warning(i) if _relaxed_when_standard(i, profiled) else i for i in issues]
        elif level == "lenient":
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


_CARDINALITY = (" minimum required = ", " maximum allowed = ", " requires at least ", " allows at most ")


def _relaxed_when_standard(issue: Issue, profiled: bool) -> bool:
    """What a standard write keeps with a warning instead of refusing (docs/validation.md, "Strict and lenient"):

    - an extension no package or upload defines, which the walk cannot judge: Synthea's and US Core's
      (``us-core-race``, ``…/synthea/disability-adjusted-life-years``) are the common case; the reference
      validator too only warns in example domains. An unknown *modifier* extension stays an error: it changes
      the meaning of what carries it (R4 extensibility.html §2.4.2.1);
    - a RESTful ``fullUrl`` naming another id than its entry's (R4 §3.3.1 "SHALL NOT disagree"): MIS systems
      number the entries of a signed document apart from the ids, and the receiver cannot correct a signed
      document without breaking its signature;
    - of a resource no known profile covers, the cardinality of the parts of a known extension (its
      sub-extensions and their slices): the access policy reads a representative's authority recorded as
      ``verified: true`` alone (``security/policy/relationships.py``, AC-09), which the KZ IG's
      ``kz-representative-authority`` (document and verifiedBy 1..1) does not allow. The context and value
      types of extensions stay errors, and a declared profile is enforced whole.
    """
    if not issue.is_error:
        return False
    text = issue.diagnostics
    return (text.startswith("Unknown extension ") and not text.endswith("a modifier extension must be understood")) \
        or (" looks like a RESTful server URL, so it must end with the resource's type and id " in text) \
        or (not profiled and (text.startswith("Extension.") or " of Extension." in text)
            and any(c in text for c in _CARDINALITY))


def _as_warning(issue: Issue) -> Issue:
    return replace(issue, severity="warning")


# What a lenient write (write_validation=lenient) enforces of the base walk of an unprofiled resource. Its
# other findings, the Bundle rules and extensions nobody defines are left out (docs/validation.md, "Strict and
# lenient").
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
