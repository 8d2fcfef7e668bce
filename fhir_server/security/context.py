"""The per-request context every interaction receives (architecture.md, core decision 6)."""

from __future__ import annotations

import itertools
import os
import secrets
from dataclasses import dataclass, field

_PROCESS = f"{os.getpid():x}-{secrets.token_hex(4)}"
_COUNTER = itertools.count(1)


def next_request_id() -> str:
    """Unique per request: the process tag plus a counter (cheaper than uuid4 on every read)."""
    return f"{_PROCESS}-{next(_COUNTER):x}"


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is asking, for whom and why. Frozen: never mutated while a request runs.

    ``fhir_user`` is a relative reference (``Practitioner/1``, ``Patient/7``, ``RelatedPerson/3``);
    ``role`` is one of the roles in docs/security.md; ``scopes`` are SMART v2 scope strings.
    """

    request_id: str = field(default_factory=lambda: next_request_id())
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
    # Added for issue 5 (security helper); all optional so existing callers are unaffected.
    # break_glass_until: epoch seconds after which break_glass_reason is no longer honoured (AC-02).
    break_glass_until: int | None = None
    # SMART launch context ("Patient/123") that `patient/` scopes are bound to.
    launch_patient: str | None = None
    # OAuth client (client_id/azp) and token id (jti), recorded by the BALP audit (AC-14).
    client_id: str | None = None
    token_id: str | None = None

    @classmethod
    def system(cls) -> RequestContext:
        """Context for the server's own work (start-up, jobs) and for open mode (security disabled)."""
        return cls(subject="kzfhir", role="system", scopes=("system/*.cruds",), authenticated=True)
