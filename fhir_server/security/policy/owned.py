"""Resources that belong to the caller who created them, not to a patient (issue 15 §4).

A ``Subscription`` is its owner's: only the owner (and an administrator) may read, search, update or
delete it, or run ``$status`` / ``$events`` on it. Its notifications are judged under the owner's
identity (fhir_server/subscriptions/). The owner is written into the stored resource by the server
(``OWNER_EXTENSION``, never taken from the client: fhir_server/subscriptions/ownership.py), so the
decision stays pure: it needs only the caller and the resource.

The decision depends on the resource's content, so the compiled read by id never caches it
(security/read_gate.py ``_servable``).
"""

from __future__ import annotations

from typing import Any

from fhir_server.security.context import RequestContext
from fhir_server.security.policy.decision import Action, Decision, Verdict
from fhir_server.security.refs import KZ_BASE
from fhir_server.security.roles import ADMIN

OWNED_TYPES = frozenset({"Subscription"})
OWNER_EXTENSION = f"{KZ_BASE}/StructureDefinition/kz-subscription-owner"


def owner_key(ctx: RequestContext) -> str:
    """Who a caller is, stably across tokens: the token subject and the organisation it acts for."""
    return f"{ctx.subject or ''}|{ctx.organization_bin or ''}"


def owner_of(resource: dict[str, Any]) -> str | None:
    for ext in resource.get("extension", []) or []:
        if isinstance(ext, dict) and ext.get("url") == OWNER_EXTENSION and isinstance(ext.get("valueString"), str):
            return str(ext["valueString"])
    return None


def owned_verdict(ctx: RequestContext, action: Action, resource: dict[str, Any]) -> Verdict:
    if ctx.role == ADMIN and action is not Action.CREATE:
        return Verdict(Decision.AUTHORIZED, "administrators manage subscriptions", ("oversight",))
    if owner_of(resource) == owner_key(ctx):
        return Verdict(Decision.AUTHORIZED, "the caller's own subscription", ("self",))
    return Verdict.reject("a Subscription is visible to its owner (and administrators) only")
