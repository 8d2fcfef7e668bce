"""AuditEvents of the authorization server (AC-14): every sign-in, failed sign-in, token issued and token
request refused. They are DICOM "User Authentication / Login" events like the resource server's refused
bearer tokens (security/audit/balp.py ``failed_authentication_event``), with the person or client who signed
in as the agent when it succeeded, and they go into the same hash chain (``Enforcer.record_durably``)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from joserfc.errors import JoseError
from joserfc.jws import extract_compact

from fhir_server.security.audit.balp import failed_authentication_event
from fhir_server.security.audit.codes import SUCCESS

Record = Callable[[list[dict[str, Any]], list[Any]], Awaitable[None]]


def failure(description: str, *, client_ip: str | None, request_id: str) -> dict[str, Any]:
    return failed_authentication_event(description, client_ip=client_ip, request_id=request_id)


def success(description: str, *, who: str | None, subject: str, client_id: str | None, client_ip: str | None,
            request_id: str) -> dict[str, Any]:
    event = failed_authentication_event(description, client_ip=client_ip, request_id=request_id)
    event["outcome"] = SUCCESS
    agent = event["agent"][0]
    agent["who"] = {"reference": who} if who else {"identifier": {"value": subject}}
    agent["altId"] = subject
    if client_id:
        event["agent"].append({"type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                                                    "code": "110150", "display": "Application"}]},
                               "who": {"identifier": {"value": client_id}}, "requestor": False})
    return event


def issued(token_response: dict[str, Any], grant_type: str, *, client_ip: str | None,
           request_id: str) -> dict[str, Any] | None:
    """The event of a token this server just signed, read back from its own claims."""
    try:
        claims = json.loads(extract_compact(str(token_response["access_token"]).encode("ascii")).payload)
    except (KeyError, JoseError, ValueError, UnicodeError):
        return None
    who = claims.get("fhirUser")
    reference = "/".join(str(who).rstrip("/").split("/")[-2:]) if who else None
    return success(f"{grant_type}: token issued, scope {claims.get('scope', '')}", who=reference,
                   subject=str(claims.get("sub")), client_id=claims.get("client_id"), client_ip=client_ip,
                   request_id=request_id)
