"""Development signing key and tokens (``kzfhir token``) for tests and demos.

The key is an ES256 (P-256) JWK created on first use in ``./data/dev-jwks.json``. The file is a
JWKS holding the *private* key, so it doubles as the key set the server trusts in dev mode
(``TokenVerifier.for_development``); only its public members are used for verification. It is
written with mode 0600. Never ship it: production deployments configure the identity
provider's JWKS instead.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

from fhir_server.security.auth.verifier import DEV_AUDIENCE, DEV_ISSUER
from fhir_server.security.roles import ADMIN, AUDITOR, LEGAL_EXCEPTION, PATIENT, RELATED_PERSON, SYSTEM

DEV_JWKS_PATH = Path("data/dev-jwks.json")
DEV_CLIENT_ID = "kzfhir-dev-cli"

#: Scopes a dev token gets when none are asked for: the widest the role can use.
DEFAULT_SCOPES: dict[str, tuple[str, ...]] = {
    PATIENT: ("patient/*.cruds",),
    RELATED_PERSON: ("patient/*.cruds", "user/*.cruds"),
    SYSTEM: ("system/*.cruds",),
    AUDITOR: ("user/AuditEvent.rs", "user/Patient.r"),
    ADMIN: ("user/*.cruds",),
    LEGAL_EXCEPTION: ("user/*.rs",),
}
_FALLBACK_SCOPES = ("user/*.cruds",)


def ensure_dev_key(path: Path = DEV_JWKS_PATH) -> ECKey:
    """The development ES256 key, generated (and saved as a one-key JWKS) on first use."""
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        return ECKey.import_key(data["keys"][0])
    key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"}, private=True)
    key.ensure_kid()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump({"keys": [key.as_dict(private=True)]}, handle, indent=2)
    return key


def issue_dev_token(
    role: str,
    fhir_user: str | None,
    scopes: Sequence[str] | None = None,
    bin: str | None = None,
    ttl_seconds: int = 3600,
    break_glass: str | None = None,
    key_path: Path = DEV_JWKS_PATH,
    *,
    extra_claims: Mapping[str, Any] | None = None,
    now: int | None = None,
) -> str:
    """A signed development token for ``role`` bound to ``fhir_user`` (e.g. ``Practitioner/1``).

    ``break_glass`` (a reason) adds a break-glass session limited to the token lifetime and at most
    one hour (AC-02). ``extra_claims`` adds or overrides claims (``purpose_of_use``,
    ``legal_basis``, ``patient``, ``on_behalf_of`` ...).
    """
    key = ensure_dev_key(key_path)
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": fhir_user or f"dev-{role}",
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "client_id": DEV_CLIENT_ID,
        "role": role,
        "scope": " ".join(scopes if scopes is not None else DEFAULT_SCOPES.get(role, _FALLBACK_SCOPES)),
    }
    if fhir_user:
        claims["fhirUser"] = fhir_user
    if bin:
        claims["bin"] = bin
    if break_glass:
        claims["break_glass"] = {"reason": break_glass, "exp": issued + min(ttl_seconds, 3600)}
    claims.update(extra_claims or {})
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])
