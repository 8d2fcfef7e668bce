"""rest: the RESTful interactions on one resource's life (R4 http.html; TM-14 "processing with ICT").

The subject is a KZ Organization (directory data: no patient consent is involved), created in REST-01 and
deleted in REST-07; a check run alone creates it first.
"""

from __future__ import annotations

from typing import Any

import httpx

from conformance.context import RunContext
from conformance.examples import valid_example
from conformance.expect import diagnostics, expect_resource, expect_status, refusal_reason
from conformance.fixtures import created_id
from conformance.http import json_body
from conformance.model import CheckFailed, Outcome, failed, passed, warning
from conformance.registry import check

GROUP = "rest"


def _etag_of(version: str) -> str:
    return f'W/"{version}"'


def _version(resource: dict[str, Any], doing: str) -> str:
    version = (resource.get("meta") or {}).get("versionId")
    if not isinstance(version, str) or not version:
        raise CheckFailed(f"{doing}: meta.versionId is missing (R4 resource.html#Meta)")
    return version


def _expect_etag(response: httpx.Response, version: str, doing: str) -> None:
    etag = response.headers.get("etag")
    if etag != _etag_of(version):
        raise CheckFailed(f"{doing}: ETag is {etag!r}, expected {_etag_of(version)} "
                          "(R4 http.html#versioning)")


async def _subject(ctx: RunContext) -> str:
    """The REST subject's id, creating it (and checking the create) when no earlier check did."""
    if ctx.rest_id is None:
        await _create(ctx)
    assert ctx.rest_id is not None
    return ctx.rest_id


async def _create(ctx: RunContext) -> httpx.Response:
    organization = await ctx.fixtures.adapt(valid_example("Organization/kz-organization-2") or {})
    response = await ctx.client.post("Organization", json=organization)
    expect_status(ctx.client, response, 201, doing="create Organization")
    new_id = created_id(response)
    if new_id is None:
        raise CheckFailed("create: no id in the body nor in the Location header")
    ctx.fixtures.track("Organization", new_id)
    ctx.rest_id, ctx.rest_versions = new_id, []
    location = response.headers.get("location", "")
    if f"Organization/{new_id}" not in location:
        raise CheckFailed(f"create: Location {location!r} does not name Organization/{new_id} "
                          "(R4 http.html#create)")
    body = json_body(response)
    version = _version(body, "create") if body else response.headers.get("etag", "").strip('W/"')
    _expect_etag(response, version, "create")
    ctx.rest_versions.append(version)
    return response


@check("REST-01", GROUP, "create: 201 with Location, id, versionId and ETag",
       ["TM-14", "R4 http.html#create"])
async def create(ctx: RunContext) -> Outcome:
    await _create(ctx)
    return passed(f"Organization/{ctx.rest_id} version {ctx.rest_versions[0]}")


@check("REST-02", GROUP, "read: 200 with the resource and ETag W/\"versionId\"",
       ["TM-14", "R4 http.html#read"])
async def read(ctx: RunContext) -> Outcome:
    resource_id = await _subject(ctx)
    response = await ctx.client.get(f"Organization/{resource_id}")
    expect_status(ctx.client, response, 200, doing="read")
    body = expect_resource(response, "Organization", doing="read")
    if body.get("id") != resource_id:
        return failed(f"read returned id {body.get('id')!r}, expected {resource_id}")
    _expect_etag(response, _version(body, "read"), "read")
    if not response.headers.get("content-type", "").startswith(("application/fhir+json", "application/json")):
        return failed(f"Content-Type {response.headers.get('content-type')!r} is not FHIR JSON")
    return passed(f"ETag {response.headers['etag']}")


@check("REST-03", GROUP, "update: 200, a new versionId and a matching ETag",
       ["TM-14", "AC-14", "R4 http.html#update"])
async def update(ctx: RunContext) -> Outcome:
    resource_id = await _subject(ctx)
    current = await ctx.client.get(f"Organization/{resource_id}")
    expect_status(ctx.client, current, 200, doing="read before update")
    body = expect_resource(current, "Organization", doing="read before update")
    before = _version(body, "read before update")
    body["name"] = f"{body.get('name', 'Organization')} (conformance update)"
    response = await ctx.client.put(f"Organization/{resource_id}", json=body)
    expect_status(ctx.client, response, 200, doing="update")
    after = _version(expect_resource(response, "Organization", doing="update"), "update")
    if after == before or (after.isdigit() and before.isdigit() and int(after) <= int(before)):
        return failed(f"versionId went from {before} to {after}: an update must create a new version")
    _expect_etag(response, after, "update")
    ctx.rest_versions.append(after)
    return passed(f"version {before} -> {after}, ETag {response.headers['etag']}")


@check("REST-04", GROUP, "vread: an earlier version stays readable", ["TM-14", "AC-14", "R4 http.html#vread"])
async def vread(ctx: RunContext) -> Outcome:
    resource_id = await _subject(ctx)
    first = ctx.rest_versions[0] if ctx.rest_versions else "1"
    response = await ctx.client.get(f"Organization/{resource_id}/_history/{first}")
    expect_status(ctx.client, response, 200, doing="vread")
    body = expect_resource(response, "Organization", doing="vread")
    if _version(body, "vread") != first:
        return failed(f"vread of version {first} returned version {_version(body, 'vread')}")
    return passed(f"version {first} read back")


@check("REST-05", GROUP, "history: a history Bundle lists every version",
       ["TM-14", "AC-14", "R4 http.html#history"])
async def history(ctx: RunContext) -> Outcome:
    resource_id = await _subject(ctx)
    response = await ctx.client.get(f"Organization/{resource_id}/_history")
    expect_status(ctx.client, response, 200, doing="history")
    bundle = expect_resource(response, "Bundle", doing="history")
    if bundle.get("type") != "history":
        return failed(f"Bundle.type is {bundle.get('type')!r}, expected 'history'")
    versions = {(e.get("resource") or {}).get("meta", {}).get("versionId") for e in bundle.get("entry") or []
                if isinstance(e, dict)}
    missing = [v for v in ctx.rest_versions if v not in versions]
    if missing:
        return failed(f"versions {missing} are not in the history (found {sorted(map(str, versions))})")
    return passed(f"{len(bundle.get('entry') or [])} entries")


@check("REST-06", GROUP, "update with a stale If-Match is refused with 412",
       ["TM-14", "R4 http.html#concurrency"])
async def stale_if_match(ctx: RunContext) -> Outcome:
    resource_id = await _subject(ctx)
    current = await ctx.client.get(f"Organization/{resource_id}")
    expect_status(ctx.client, current, 200, doing="read before update")
    body = expect_resource(current, "Organization", doing="read before update")
    # Make the version just read stale by updating once, then update again claiming that version.
    stale = _etag_of(_version(body, "read"))
    newer = await ctx.client.put(f"Organization/{resource_id}", json=body)
    expect_status(ctx.client, newer, 200, doing="update")
    ctx.rest_versions.append(_version(expect_resource(newer, "Organization", doing="update"), "update"))
    response = await ctx.client.put(f"Organization/{resource_id}", json=body, headers={"If-Match": stale})
    if response.status_code == 412:
        return passed("412 Precondition Failed")
    if response.is_success:
        ctx.rest_versions.append(_version(json_body(response) or body, "update"))
        return warning("If-Match was ignored: concurrent updates can silently overwrite each other")
    problem = refusal_reason(ctx.client, response, "update with stale If-Match")
    if problem is not None:
        raise problem
    return failed(f"expected 412, got {response.status_code}: {diagnostics(response)}")


@check("REST-07", GROUP, "delete, then read gives 410 Gone", ["TM-14", "AC-26", "R4 http.html#delete"])
async def delete(ctx: RunContext) -> Outcome:
    resource_id = await _subject(ctx)
    response = await ctx.client.delete(f"Organization/{resource_id}")
    expect_status(ctx.client, response, 200, 202, 204, doing="delete")
    ctx.rest_id = None
    gone = await ctx.client.get(f"Organization/{resource_id}")
    if gone.status_code != 410:
        return failed(f"read after delete gave {gone.status_code}, expected 410 Gone: {diagnostics(gone)}")
    return passed(f"delete {response.status_code}, read 410")
