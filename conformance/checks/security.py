"""security: refusals without valid credentials (TM-01, AC-12) and their shape; audit exposure (AC-14).

These checks only show that bad credentials are refused. They cannot show that good ones are limited
to what consent allows: a proxy rejecting bad tokens in front of an open server passes them. That is
the access group's work (checks/access_*.py), and AC-12 is decided there (requirements.py).
"""

from __future__ import annotations

import base64
import json
import time

import httpx

from conformance.capability import interactions, security_services
from conformance.context import RunContext
from conformance.expect import diagnostics, is_operation_outcome
from conformance.model import Outcome, failed, passed, skipped, warning
from conformance.registry import check

GROUP = "security"
_CLINICAL_SEARCH = "Observation"  # patient data of every kind of deployment


def _unsigned_token() -> str:
    """A JWT with ``alg: none`` and plausible claims: a server that skips signature checks accepts it."""
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"sub": "conformance-kit", "role": "system", "bin": "940140000385", "scope": "system/*.cruds",
              "iat": now, "exp": now + 300}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def _anonymous(ctx: RunContext) -> httpx.Response:
    return await ctx.client.get(_CLINICAL_SEARCH, params={"_count": "1"}, anonymous=True)


async def _with_token(ctx: RunContext, token: str) -> httpx.Response:
    return await ctx.client.get(_CLINICAL_SEARCH, params={"_count": "1"},
                                headers={"Authorization": f"Bearer {token}"})


def _judge_refusal(response: httpx.Response, allowed: tuple[int, ...], what: str) -> Outcome:
    """Patient data for a caller without valid credentials is a failure whatever the kit was given: an
    open endpoint is not conformant (TM-01, AC-12), even a test deployment the kit runs against anonymously."""
    if response.status_code in allowed:
        return passed(f"{what}: {response.status_code} ({diagnostics(response)})")
    if response.is_success:
        return failed(f"{what}: clinical search answered ({response.status_code}): the endpoint is open")
    return failed(f"{what}: expected {' or '.join(map(str, allowed))}, got {response.status_code}: "
                  f"{diagnostics(response)}")


@check("SEC-01", GROUP, "The CapabilityStatement declares how clients authenticate",
       ["TM-01", "TM-04", "R4 capabilitystatement-definitions.html#CapabilityStatement.rest.security"])
async def security_declared(ctx: RunContext) -> Outcome:
    services = security_services(ctx.capability)
    if services:
        return passed(f"rest.security.service: {', '.join(services)}")
    return warning("rest.security.service is absent: clients cannot discover the authentication scheme")


@check("SEC-02", GROUP, "A clinical search without a token is refused (401/403)",
       ["TM-01", "AC-12", "R4 security.html"])
async def anonymous_refused(ctx: RunContext) -> Outcome:
    return _judge_refusal(await _anonymous(ctx), (401, 403), "no Authorization header")


@check("SEC-03", GROUP, "A malformed bearer token is refused with 401", ["TM-01", "TM-04", "AC-12"])
async def malformed_token_refused(ctx: RunContext) -> Outcome:
    return _judge_refusal(await _with_token(ctx, "not-a-jwt"), (401,), "malformed token")


@check("SEC-04", GROUP, "An unsigned (alg=none) token is refused with 401", ["TM-01", "TM-04", "AC-12"])
async def unsigned_token_refused(ctx: RunContext) -> Outcome:
    return _judge_refusal(await _with_token(ctx, _unsigned_token()), (401,), "alg=none token")


@check("SEC-05", GROUP, "Refusals are OperationOutcomes in FHIR JSON",
       ["TM-01", "R4 http.html#Status-Codes", "R4 operationoutcome.html"])
async def refusals_are_outcomes(ctx: RunContext) -> Outcome:
    answers = [await _anonymous(ctx), await _with_token(ctx, "not-a-jwt")]
    refusals = [r for r in answers if r.status_code in (401, 403)]
    if not refusals:
        return skipped("the endpoint refused nothing (see SEC-02/SEC-03): no refusal to inspect")
    bad = [r.status_code for r in refusals if not is_operation_outcome(r)]
    if bad:
        return failed(f"refusals {bad} carry no OperationOutcome with issues")
    return passed(f"{len(refusals)} refusal(s) carried an OperationOutcome")


@check("SEC-06", GROUP, "AuditEvents can be read and searched (who did what, when)",
       ["AC-14", "TM-13", "TM-18", "R4 auditevent.html"])
async def audit_events_exposed(ctx: RunContext) -> Outcome:
    declared = interactions(ctx.capability, "AuditEvent")
    if {"read", "search-type"} <= declared:
        return passed("AuditEvent read and search-type declared")
    return warning("AuditEvent read/search-type not declared: the access log cannot be checked from outside")
