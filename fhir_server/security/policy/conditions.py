"""The question put to a Consent, and how one provision's conditions are tested against it.

R4 Consent.provision: every condition element that is present restricts the rule; an absent
element means "any". Within one element, any listed value matches (a list is a set of
alternatives). A condition the server cannot evaluate on the data (a ``dataPeriod`` on a resource
that has no date at all) does not match, so an unverifiable permit never grants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from fhir_server.security.fhirtime import period_covers
from fhir_server.security.policy.compartment import clinical_instant
from fhir_server.security.refs import reference_keys, relative_ref

Coding = tuple[str | None, str]
CONSENT_ACTION_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentaction"
RESOURCE_TYPES_SYSTEM = "http://hl7.org/fhir/resource-types"


class ResourceFacts:
    """The data side of an AccessRequest, each part read from the resource the first time a provision's
    condition asks for it: most provisions test only the actor, action and purpose, and walking a resource
    for its codings, references and clinical date cost more than the rest of a decision (a write unit of an
    ``$import`` judges a thousand resources). The answers are those of an eager reading: the resource is
    not changed while it is judged."""

    def __init__(self, resource: dict[str, Any]) -> None:
        self._resource = resource

    @cached_property
    def _meta(self) -> dict[str, Any]:
        raw = self._resource.get("meta")
        return raw if isinstance(raw, dict) else {}

    @cached_property
    def _body(self) -> dict[str, Any]:
        return {key: value for key, value in self._resource.items() if key != "meta"}

    @cached_property
    def resource_ref(self) -> str | None:
        rid = self._resource.get("id")
        return f"{self._resource.get('resourceType')}/{rid}" if rid else None

    @cached_property
    def profiles(self) -> frozenset[str]:
        return frozenset(p for p in self._meta.get("profile", []) if isinstance(p, str))

    @cached_property
    def codings(self) -> frozenset[Coding]:
        return frozenset(_walk_codings(self._body))

    @cached_property
    def labels(self) -> frozenset[Coding]:
        return frozenset(_walk_codings(self._meta.get("security", [])))

    @cached_property
    def references(self) -> frozenset[str]:
        return frozenset(_walk_references(self._body))

    @cached_property
    def data_instant(self) -> float | None:
        return clinical_instant(self._resource)


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """What is being asked of a patient's Consents: who, doing what, why, on which data, when."""

    actors: frozenset[str]
    actions: frozenset[str]
    purpose: str
    resource_type: str
    at: float
    about: ResourceFacts  # the data (``describe_resource``)

    @property
    def resource_ref(self) -> str | None:
        return self.about.resource_ref

    @property
    def profiles(self) -> frozenset[str]:
        return self.about.profiles

    @property
    def codings(self) -> frozenset[Coding]:
        return self.about.codings

    @property
    def labels(self) -> frozenset[Coding]:
        return self.about.labels

    @property
    def references(self) -> frozenset[str]:
        return self.about.references

    @property
    def data_instant(self) -> float | None:
        return self.about.data_instant


def _walk_codings(node: Any) -> Iterator[Coding]:
    if isinstance(node, dict):
        code = node.get("code")
        if isinstance(code, str):
            system = node.get("system")
            yield (system if isinstance(system, str) else None, code)
        for value in node.values():
            yield from _walk_codings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_codings(item)


def _walk_references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = relative_ref(node.get("reference")) if isinstance(node.get("reference"), str) else None
        if ref:
            yield ref
        for value in node.values():
            yield from _walk_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_references(item)


def describe_resource(resource: dict[str, Any]) -> ResourceFacts:
    """The data-side facts of an AccessRequest, read from the resource as the conditions need them."""
    return ResourceFacts(resource)


def _codings_of(items: Any) -> Iterator[Coding]:
    """Codings of a list of Coding or CodeableConcept values."""
    for item in items or []:
        if not isinstance(item, dict):
            continue
        for coding in item.get("coding", [item]) if "coding" in item else [item]:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                system = coding.get("system")
                yield (system if isinstance(system, str) else None, coding["code"])


def _coding_in(wanted: Coding, present: frozenset[Coding]) -> bool:
    system, code = wanted
    return any(code == c and (system is None or system == s) for s, c in present)


def _actor_matches(actors: Any, request: AccessRequest) -> bool:
    return any(isinstance(actor, dict) and reference_keys(actor.get("reference")) & request.actors for actor in actors)


def _action_matches(actions: Any, request: AccessRequest) -> bool:
    return any(
        code in request.actions and system in (None, CONSENT_ACTION_SYSTEM) for system, code in _codings_of(actions)
    )


def _class_matches(classes: Any, request: AccessRequest) -> bool:
    for system, code in _codings_of(classes):
        if code == request.resource_type and system in (None, RESOURCE_TYPES_SYSTEM):
            return True
        if code in request.profiles:
            return True
    return False


def _data_matches(data: Any, request: AccessRequest) -> bool:
    for item in data or []:
        if not isinstance(item, dict) or not isinstance(item.get("reference"), dict):
            continue
        target = relative_ref(item["reference"].get("reference"))
        if target is None:
            continue
        if target == request.resource_ref:
            return True
        # related / dependents / authoredby: approximated as "the resource references the target".
        if item.get("meaning") != "instance" and target in request.references:
            return True
    return False


def provision_matches(provision: dict[str, Any], request: AccessRequest) -> bool:
    """True when every condition present on the provision holds for the request."""
    checks: tuple[tuple[str, Callable[[Any], bool]], ...] = (
        ("period", lambda v: period_covers(v, request.at)),
        ("actor", lambda v: _actor_matches(v, request)),
        ("action", lambda v: _action_matches(v, request)),
        ("purpose", lambda v: any(code == request.purpose for _, code in _codings_of(v))),
        ("class", lambda v: _class_matches(v, request)),
        ("code", lambda v: any(_coding_in(c, request.codings) for c in _codings_of(v))),
        ("securityLabel", lambda v: any(_coding_in(c, request.labels) for c in _codings_of(v))),
        ("data", lambda v: _data_matches(v, request)),
        (
            "dataPeriod",
            lambda v: request.data_instant is not None and period_covers(v, request.data_instant),
        ),
    )
    return all(check(provision[name]) for name, check in checks if provision.get(name) not in (None, [], {}))
