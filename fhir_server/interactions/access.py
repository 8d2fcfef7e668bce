"""The interactions' side of the access policy: one session per request (security/enforcement.py)."""

from __future__ import annotations

from typing import Any

import orjson

from fhir_server.interactions.base import Services
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.context import RequestContext
from fhir_server.security.enforcement import AccessSession, Enforcer
from fhir_server.security.policy import Action, Verdict
from fhir_server.storage.protocols import StoredResource

__all__ = ["Action", "AuditTarget", "parsed", "see_stored", "session"]

def session(services: Services, ctx: RequestContext) -> AccessSession:
    """The request's access session (``build_services`` always sets an enforcer; a disabled one when
    security is off, whose checks all pass and which records nothing)."""
    enforcer: Enforcer = services.enforcer
    return enforcer.session(ctx)


def parsed(stored: StoredResource) -> dict[str, Any]:
    """The stored JSON for policy decisions (orjson: fast; exact decimals do not matter here)."""
    assert stored.data is not None
    data: dict[str, Any] = orjson.loads(stored.data)
    return data


async def see_stored(access: AccessSession, action: Action, stored: StoredResource, interaction: str
                     ) -> tuple[Verdict, set[str]]:
    """Check one stored version the caller is about to receive or change (403 + audit if refused)."""
    target = AuditTarget(interaction, stored.type, stored.id, str(stored.version))
    return await access.check(action, parsed(stored), target)
