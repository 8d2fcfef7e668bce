"""transaction: a Bundle is applied all-or-nothing and its ``urn:uuid:`` references are resolved
(R4 http.html#transaction), as when an MIS pushes a remote consultation with its readings."""

from __future__ import annotations

import uuid
from typing import Any

from conformance.context import RunContext
from conformance.examples import MARKER_SYSTEM, valid_example
from conformance.expect import diagnostics, expect_resource, expect_status, refusal_reason
from conformance.http import json_body
from conformance.model import Outcome, failed, passed
from conformance.registry import check

GROUP = "transaction"


def _entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": full_url, "resource": resource,
            "request": {"method": "POST", "url": str(resource["resourceType"])}}


def _locations(bundle: dict[str, Any]) -> list[str]:
    """``Type/id`` of each entry's response.location (``[base]/Type/id/_history/v`` or relative)."""
    found = []
    for entry in bundle.get("entry") or []:
        location = str(((entry or {}).get("response") or {}).get("location") or "")
        parts = location.split("/_history/")[0].rstrip("/").split("/")
        found.append("/".join(parts[-2:]) if len(parts) >= 2 else "")
    return found


@check("TX-01", GROUP, "A transaction creates every entry and resolves urn:uuid references",
       ["TM-11", "TM-14", "MD-D", "R4 http.html#transaction", "R4 bundle.html#references"])
async def transaction_resolves_references(ctx: RunContext) -> Outcome:
    encounter_url, observation_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    encounter = await ctx.fixtures.adapt(valid_example("Encounter/kz-encounter-1") or {})
    observation = await ctx.fixtures.adapt(valid_example("Observation/kz-observation-1") or {})
    observation["encounter"] = {"reference": encounter_url}
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [_entry(encounter_url, encounter), _entry(observation_url, observation)]}
    response = await ctx.client.post("", json=bundle)
    expect_status(ctx.client, response, 200, doing="transaction")
    result = expect_resource(response, "Bundle", doing="transaction")
    locations = _locations(result)
    for location in locations:
        if location:
            ctx.fixtures.track(*_type_and_id(location))
    if result.get("type") != "transaction-response" or len(locations) != 2 or not all(locations):
        return failed(f"expected a transaction-response with 2 located entries, got type "
                      f"{result.get('type')!r} and locations {locations}")
    if not locations[0].startswith("Encounter/") or not locations[1].startswith("Observation/"):
        return failed(f"entry responses out of order or of the wrong type: {locations}")
    read = await ctx.client.get(locations[1])
    expect_status(ctx.client, read, 200, doing=f"read {locations[1]}")
    reference = (expect_resource(read, "Observation", doing="read").get("encounter") or {}).get("reference")
    if reference != locations[0]:
        return failed(f"Observation.encounter is {reference!r}, expected {locations[0]} "
                      "(urn:uuid not resolved)")
    return passed(f"created {locations[0]} and {locations[1]}; reference resolved")


@check("TX-02", GROUP, "A transaction with one invalid entry changes nothing",
       ["TM-14", "AC-13", "R4 http.html#transaction"])
async def transaction_is_atomic(ctx: RunContext) -> Outcome:
    marker = uuid.uuid4().hex
    good = await ctx.fixtures.adapt(valid_example("Organization/kz-organization-2") or {})
    good["identifier"] = [*good.get("identifier", []), {"system": MARKER_SYSTEM, "value": marker}]
    bad = {**await ctx.fixtures.adapt(valid_example("Organization/kz-organization-3") or {}), "active": "yes"}
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [_entry(f"urn:uuid:{uuid.uuid4()}", good), _entry(f"urn:uuid:{uuid.uuid4()}", bad)]}
    response = await ctx.client.post("", json=bundle)
    if response.is_success:
        for location in _locations(json_body(response) or {}):
            if location:
                ctx.fixtures.track(*_type_and_id(location))
        return failed("the transaction was accepted although Organization.active = \"yes\" is invalid")
    problem = refusal_reason(ctx.client, response, "transaction")
    if problem is not None:
        raise problem
    if not 400 <= response.status_code < 500:
        return failed(f"expected a 4xx refusal, got {response.status_code}: {diagnostics(response)}")
    return await _nothing_written(ctx, marker, response.status_code)


async def _nothing_written(ctx: RunContext, marker: str, status: int) -> Outcome:
    search = await ctx.client.get("Organization", params={"identifier": f"{MARKER_SYSTEM}|{marker}"})
    expect_status(ctx.client, search, 200, doing="search for the first entry")
    entries = expect_resource(search, "Bundle", doing="search").get("entry") or []
    if entries:
        for entry in entries:
            new_id = _entry_id(entry)
            if new_id:
                ctx.fixtures.track("Organization", new_id)
        return failed(f"refused with {status}, yet the valid first entry was stored: not atomic")
    return passed(f"refused with {status}; the valid first entry was not stored")


def _type_and_id(location: str) -> tuple[str, str]:
    kind, _, resource_id = location.partition("/")
    return kind, resource_id


def _entry_id(entry: Any) -> str | None:
    resource = entry.get("resource") if isinstance(entry, dict) else None
    value = resource.get("id") if isinstance(resource, dict) else None
    return value if isinstance(value, str) else None

