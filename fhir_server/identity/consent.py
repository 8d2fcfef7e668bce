"""The consent screen's rules: which of the scopes a client asks for the person may deselect, and when a
remembered answer stands in for the screen.

Identity and launch-context scopes (``openid``, ``fhirUser``, ``profile``, ``launch``, ``launch/patient``)
carry no data and the app cannot work without them: they are shown but not optional. Resource scopes and
``offline_access`` / ``online_access`` are optional. The answer is remembered per user and client
(``Registry.save_consent``); it stands while the client asks for nothing the person was not shown, and the
person or an administrator can revoke it (``kzfhir user consent-revoke``), which also ends the client's
refresh-token chains for that person."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fhir_server.identity.registry import Consent, Registry

REQUIRED = frozenset({"openid", "fhirUser", "profile", "launch", "launch/patient"})


@dataclass(frozen=True, slots=True)
class Choice:
    required: tuple[str, ...]
    optional: tuple[str, ...]

    @property
    def all(self) -> frozenset[str]:
        return frozenset(self.required) | frozenset(self.optional)


def choice(scopes: Iterable[str]) -> Choice:
    items = list(dict.fromkeys(scopes))
    return Choice(tuple(s for s in items if s in REQUIRED), tuple(s for s in items if s not in REQUIRED))


def remembered(offer: Choice, consent: Consent | None) -> frozenset[str] | None:
    """The scopes to grant without asking again, or None when the screen must be shown."""
    if consent is None or not offer.all <= consent.asked:
        return None
    known = frozenset(offer.required) | (frozenset(offer.optional) & consent.approved)
    return known or None  # nothing approved before: ask again rather than send an empty grant


def approved(offer: Choice, ticked: Iterable[str]) -> frozenset[str]:
    """What the person approved: the required scopes and the optional ones left ticked (nothing else)."""
    return frozenset(offer.required) | (frozenset(offer.optional) & frozenset(ticked))


def ordered(scopes: Iterable[str], grant: frozenset[str]) -> str:
    return " ".join(s for s in dict.fromkeys(scopes) if s in grant)


def revoke_consent(registry: Registry, username: str, client_id: str) -> int | None:
    """Forget the person's answer for the client and end the client's refresh-token chains for them, with
    the access tokens issued in them (the next sign-in asks again). The number of chains ended, or None
    when there was no consent."""
    if not registry.revoke_consent(username, client_id):
        return None
    families = registry.families(username, client_id)
    for family in families:
        registry.revoke_family(family)
    return len(families)
