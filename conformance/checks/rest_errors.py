"""rest: error answers (R4 http.html#Status-Codes): the right status and an OperationOutcome, always."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from conformance.context import RunContext
from conformance.examples import valid_example
from conformance.expect import diagnostics, is_operation_outcome, refusal_reason
from conformance.fixtures import created_id
from conformance.model import Outcome, failed, passed, warning
from conformance.registry import check

GROUP = "rest"


def _judge_error(ctx: RunContext, response: httpx.Response, allowed: tuple[int, ...], what: str) -> Outcome:
    if response.status_code in allowed:
        if not is_operation_outcome(response):
            return failed(f"{what}: {response.status_code} without an OperationOutcome")
        return passed(f"{what}: {response.status_code} ({diagnostics(response)})")
    problem = refusal_reason(ctx.client, response, what)
    if problem is not None:
        raise problem
    return failed(f"{what}: expected {' or '.join(map(str, allowed))}, got {response.status_code}: "
                  f"{diagnostics(response)}")


async def _valid_organization(ctx: RunContext) -> dict[str, Any]:
    """A valid KZ Organization, so that the one defect a check adds is the only reason to refuse it."""
    return await ctx.fixtures.adapt(valid_example("Organization/kz-organization-3") or {})


def _track_if_created(ctx: RunContext, response: httpx.Response, resource_type: str) -> None:
    new_id = created_id(response) if response.is_success else None
    if new_id:
        ctx.fixtures.track(resource_type, new_id)


@check("REST-08", GROUP, "read of an unknown id gives 404 with an OperationOutcome",
       ["TM-14", "R4 http.html#read"])
async def unknown_id(ctx: RunContext) -> Outcome:
    response = await ctx.client.get(f"Organization/conformance-absent-{uuid.uuid4().hex[:16]}")
    return _judge_error(ctx, response, (404,), "unknown id")


@check("REST-09", GROUP, "malformed JSON is refused with 400 and an OperationOutcome",
       ["TM-14", "R4 http.html#create", "R4 json.html"])
async def malformed_json(ctx: RunContext) -> Outcome:
    response = await ctx.client.post("Organization", content=b'{"resourceType": "Organization", "name": ',
                                      headers={"Content-Type": "application/fhir+json"})
    _track_if_created(ctx, response, "Organization")
    return _judge_error(ctx, response, (400,), "malformed JSON")


@check("REST-10", GROUP, "content of the wrong type is refused with 400/422 and an OperationOutcome",
       ["TM-14", "R4 http.html#create", "R4 datatypes.html#boolean"])
async def wrong_primitive_type(ctx: RunContext) -> Outcome:
    response = await ctx.client.post("Organization", json={**await _valid_organization(ctx), "active": "yes"})
    _track_if_created(ctx, response, "Organization")
    return _judge_error(ctx, response, (400, 422), "Organization.active = \"yes\"")


@check("REST-11", GROUP, "an unknown element is refused with 400/422", ["TM-14", "R4 json.html"])
async def unknown_element(ctx: RunContext) -> Outcome:
    organization = {**await _valid_organization(ctx), "colour": "green"}
    response = await ctx.client.post("Organization", json=organization)
    _track_if_created(ctx, response, "Organization")
    if response.is_success:
        return warning("Organization.colour was accepted: unknown content may be silently dropped or stored")
    return _judge_error(ctx, response, (400, 422), "unknown element Organization.colour")
