"""Samples of the data the vendor holds: ``GET [type]?_count=N`` as the kit's writer (AuditEvents as the
auditor when one is given), the kit's own resources left out, so the vendor-data checks judge the
vendor's records and not the kit's examples. Personal data never reach the report: checks name records
by id and mask identifiers (``mask``)."""

from __future__ import annotations

import re
from typing import Any

from conformance.access.leaks import resources_in
from conformance.access.scenario import Scenario
from conformance.context import RunContext
from conformance.expect import diagnostics
from conformance.http import json_body
from conformance.identities import Identity
from conformance.model import CheckSkipped

__all__ = ["mask", "read_person", "sample"]

_DIGITS = re.compile(r"\b(\d{8})(\d{4})\b")
_MAX_COUNT = 200


def mask(text: str) -> str:
    """IINs/BINs (12 digits) shown by their last four digits only."""
    return _DIGITS.sub(lambda m: "••••••••" + m.group(2), text)


def _own(ctx: RunContext) -> set[str]:
    return set(ctx.fixtures.created) | set(ctx.fixtures.access_consents)


def _sampler(ctx: RunContext, resource_type: str) -> Identity | None:
    """AuditEvents are read as the auditor (given, or minted for the access scenario), the rest as the
    writer."""
    if resource_type != "AuditEvent":
        return None
    if isinstance(ctx.scenario, Scenario) and ctx.scenario.auditor is not None:
        return ctx.scenario.auditor
    return ctx.cast.auditor if ctx.cast is not None else None


async def sample(ctx: RunContext, resource_type: str) -> list[dict[str, Any]]:
    """Up to ``ctx.sample_count`` of the vendor's resources of the type (cached per run). CheckSkipped
    when the search is refused or nothing of the vendor's is visible to the kit."""
    cached = ctx.samples.get(resource_type)
    if isinstance(cached, CheckSkipped):
        raise CheckSkipped(str(cached))
    if isinstance(cached, list):
        return cached
    try:
        found = await _fetch(ctx, resource_type)
    except CheckSkipped as exc:
        ctx.samples[resource_type] = exc
        raise
    ctx.samples[resource_type] = found
    return found


async def _fetch(ctx: RunContext, resource_type: str) -> list[dict[str, Any]]:
    own = _own(ctx)
    mine = sum(1 for ref in own if ref.startswith(f"{resource_type}/"))
    count = str(min(ctx.sample_count + mine, _MAX_COUNT))
    response = await ctx.client.get(resource_type, params={"_count": count}, identity=_sampler(ctx, resource_type))
    if response.status_code != 200:
        raise CheckSkipped(f"{resource_type}?_count={count}: {response.status_code} {diagnostics(response)}")
    body = json_body(response) or {}
    found = [r for r in resources_in(body) if r.get("resourceType") == resource_type
             and f"{resource_type}/{r.get('id')}" not in own]
    if not found:
        raise CheckSkipped(f"no {resource_type} of the vendor is visible to the kit's token")
    return found[: ctx.sample_count]


async def read_person(ctx: RunContext, reference: str) -> dict[str, Any] | None:
    """A Patient/Practitioner a sampled record names, read once per run (None: not readable)."""
    people = ctx.samples.setdefault("_people", {})
    if reference not in people:
        response = await ctx.client.get(reference)
        body = json_body(response)
        people[reference] = body if response.status_code == 200 and body else None
    found: dict[str, Any] | None = people[reference]
    return found
