"""Verified JWT claims -> RequestContext (docs/security.md, "Token claims").

Only claims of a token whose signature, issuer, audience and lifetime were already checked reach
this module. Every claim is validated for shape: a claim that is present but malformed fails the
whole token (401) instead of being silently dropped, because a dropped ``fhirUser`` or role could
change who the caller is taken to be.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fhir_server.i18n import msg
from fhir_server.security.auth.errors import AuthError
from fhir_server.security.context import RequestContext
from fhir_server.security.refs import is_bin, ref_type, relative_ref
from fhir_server.security.roles import FHIR_USER_TYPES, ROLES, SYSTEM

_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_TEXT_LIMIT = 500


def _string(claims: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, str) or not value.strip():
            raise AuthError(f"claim {name!r} must be a non-empty string")
        return value.strip()
    return None


def clean_text(value: str | None, what: str) -> str | None:
    """Free text from a claim or header (reasons, legal bases): bounded, no control characters."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if len(text) > _TEXT_LIMIT or any(ord(ch) < 32 for ch in text):
        raise AuthError(f"{what} must be at most {_TEXT_LIMIT} printable characters")
    return text


def purpose_code(value: str | None) -> str | None:
    """A v3 PurposeOfUse code, accepting ``system|code`` spellings."""
    if value is None:
        return None
    code = value.rsplit("|", 1)[-1].strip()
    if not _CODE.match(code):
        raise AuthError("purpose of use must be a code such as TREAT or ETREAT")
    return code


def _reference(claims: Mapping[str, Any], name: str) -> str | None:
    raw = _string(claims, name)
    if raw is None:
        return None
    ref = relative_ref(raw)
    if ref is None:
        raise AuthError(f"claim {name!r} must be a FHIR reference such as Practitioner/123")
    return ref


def _role(claims: Mapping[str, Any], fhir_user: str | None) -> str:
    role = _string(claims, "role", "kzfhir_role")
    if role is None:
        raise AuthError(msg("auth.no_role"))
    if role not in ROLES:
        raise AuthError(msg("auth.unknown_role", role=role))
    allowed = FHIR_USER_TYPES.get(role)
    if allowed is not None and ref_type(fhir_user) not in allowed:
        kinds = " or ".join(sorted(allowed))
        raise AuthError(msg("auth.role_needs_fhir_user", role=role, kinds=kinds))
    return role


def _organization_bin(claims: Mapping[str, Any], role: str) -> str | None:
    value = _string(claims, "bin", "organization")
    if value is not None and not is_bin(value):
        raise AuthError(msg("auth.bad_bin"))
    if role == SYSTEM and value is None:
        # A backend system acts for its organisation (SMART backend services): it must say which.
        raise AuthError(msg("auth.system_needs_bin"))
    return value


def _scopes(claims: Mapping[str, Any]) -> tuple[str, ...]:
    value = claims.get("scope", claims.get("scp"))
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise AuthError("claim 'scope' must be a space-separated string")


def _launch_patient(claims: Mapping[str, Any]) -> str | None:
    """SMART launch context: the ``patient`` claim is a Patient id (or reference)."""
    launch = _string(claims, "patient")
    if launch is None:
        return None
    ref = relative_ref(launch if "/" in launch else f"Patient/{launch}")
    if ref_type(ref) != "Patient":
        raise AuthError("claim 'patient' must be a Patient id")
    return ref


def _break_glass(claims: Mapping[str, Any], token_exp: int) -> tuple[str | None, int | None]:
    """Break-glass from the token: ``break_glass: {reason, exp}`` or ``break_glass`` + ``bg_exp``.

    The session ends at the earlier of its own ``exp`` and the token's ``exp`` (AC-02: time-limited).
    """
    value = claims.get("break_glass")
    if value is None:
        return None, None
    if isinstance(value, Mapping):
        reason, until = value.get("reason"), value.get("exp")
    else:
        reason, until = value, claims.get("bg_exp")
    if not isinstance(reason, str):
        raise AuthError(msg("auth.break_glass_reason"))
    if not isinstance(until, int) or isinstance(until, bool):
        raise AuthError(msg("auth.break_glass_exp"))
    return clean_text(reason, "break-glass reason"), min(until, token_exp)


def context_from_claims(claims: Mapping[str, Any]) -> RequestContext:
    """Map verified claims onto a RequestContext (client IP and headers are added by the caller)."""
    subject = _string(claims, "sub")
    if subject is None:
        raise AuthError(msg("auth.no_subject"))
    fhir_user = _reference(claims, "fhirUser")
    role = _role(claims, fhir_user)
    reason, until = _break_glass(claims, int(claims["exp"]))
    return RequestContext(
        subject=subject,
        fhir_user=fhir_user,
        role=role,
        organization_bin=_organization_bin(claims, role),
        scopes=_scopes(claims),
        on_behalf_of=_reference(claims, "on_behalf_of"),
        purpose_of_use=purpose_code(_string(claims, "purpose_of_use")),
        break_glass_reason=reason,
        break_glass_until=until,
        legal_basis=clean_text(_string(claims, "legal_basis"), "legal basis"),
        launch_patient=_launch_patient(claims),
        client_id=_string(claims, "client_id", "azp"),
        token_id=_string(claims, "jti"),
        authenticated=True,
    )
