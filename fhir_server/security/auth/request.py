"""HTTP request -> RequestContext: the bearer token plus the security headers (docs/security.md).

Headers read here (names are case-insensitive):

``Authorization: Bearer <jwt>``
    required unless anonymous access is switched on.
``X-Purpose-Of-Use: <code>``
    v3 PurposeOfUse for this request (``TREAT``, ``ETREAT``, ``HRESCH`` ...); overrides the claim.
``X-Break-Glass-Reason: <text>``
    starts emergency access (AC-02). Honoured only until ``min(token exp, token iat + window)``
    (``VerifierConfig.break_glass_window_seconds``; a token without ``iat`` counts as issued
    ``max_lifetime_seconds`` before its ``exp``), and only for the practitioner role by the
    policy; every use is audited with purpose ``BTG`` and notified to the patient.
``X-Legal-Basis: <text>``
    the legal ground (court order, investigation request number ...) for the ``legal-exception``
    role (AC-11); the policy refuses that role without it.
``X-Request-Id: <id>``
    correlation id recorded in the AuditEvent; a fresh one is generated when absent or unusable.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from fhir_server.i18n import msg
from fhir_server.security.auth.claims import clean_text, purpose_code
from fhir_server.security.auth.errors import AuthError
from fhir_server.security.auth.verifier import TokenVerifier
from fhir_server.security.context import RequestContext, next_request_id

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class LowerCaseHeaders(dict[str, str]):
    """Headers whose names are all lower case (as ASGI delivers them): no case-insensitive scan needed."""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = headers.get(lowered)
        if value is None and not isinstance(headers, LowerCaseHeaders):
            value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _bearer(value: str) -> str:
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(msg("auth.bearer_header"))
    return token.strip()


def request_id_header(headers: Mapping[str, str]) -> str | None:
    """The client's ``X-Request-Id`` when usable as an audit identifier, else None."""
    return usable_request_id(_header(headers, "X-Request-Id"))


def usable_request_id(value: str | None) -> str | None:
    """``value`` when usable as an audit identifier (1-64 of ``A-Za-z0-9._-``), else None."""
    return value if value and _REQUEST_ID.match(value) else None


async def context_from_request(
    headers: Mapping[str, str],
    client_ip: str | None,
    verifier: TokenVerifier,
    *,
    allow_anonymous: bool = False,
) -> RequestContext:
    """Authenticate one request. Raises AuthError (-> 401 + OperationOutcome) when the token is
    missing (and anonymous access is off), malformed, expired, not yet valid or wrongly signed.
    """
    authorization = _header(headers, "Authorization")
    request_id = request_id_header(headers) or next_request_id()
    if authorization is None:
        if not allow_anonymous:
            raise AuthError(msg("auth.required"))
        return RequestContext(client_ip=client_ip, request_id=request_id)
    verified = await verifier.verify_token(_bearer(authorization))
    context = dataclasses.replace(verified.context, client_ip=client_ip, request_id=request_id)
    purpose = purpose_code(clean_text(_header(headers, "X-Purpose-Of-Use"), "X-Purpose-Of-Use"))
    legal_basis = clean_text(_header(headers, "X-Legal-Basis"), "X-Legal-Basis")
    context = dataclasses.replace(
        context,
        purpose_of_use=purpose or context.purpose_of_use,
        legal_basis=legal_basis or context.legal_basis,
    )
    reason = clean_text(_header(headers, "X-Break-Glass-Reason"), "X-Break-Glass-Reason")
    if reason is None:
        return context
    # without iat the window starts at the earliest issue the lifetime rule allows (issue 10 §6)
    window_end = verified.issued_for_windows + verifier.config.break_glass_window_seconds
    return dataclasses.replace(
        context, break_glass_reason=reason, break_glass_until=min(verified.expires_at, window_end)
    )
