"""The per-request context every interaction receives (architecture.md, core decision 6)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is asking, for whom and why. Frozen: never mutated while a request runs.

    ``fhir_user`` is a relative reference (``Practitioner/1``, ``Patient/7``, ``RelatedPerson/3``);
    ``role`` is one of the roles in docs/security.md; ``scopes`` are SMART v2 scope strings.
    """

    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    client_ip: str | None = None
    subject: str | None = None
    fhir_user: str | None = None
    role: str | None = None
    organization_bin: str | None = None
    scopes: tuple[str, ...] = ()
    on_behalf_of: str | None = None
    purpose_of_use: str | None = None
    break_glass_reason: str | None = None
    legal_basis: str | None = None
    authenticated: bool = False

    @classmethod
    def system(cls) -> RequestContext:
        """Context for the server's own work (start-up, jobs) and for open mode (security disabled)."""
        return cls(subject="kzfhir", role="system", scopes=("system/*.cruds",), authenticated=True)
