"""terminology: the KZ ValueSets the profiles bind are served by ``$expand`` and ``$validate-code``
(R4 valueset-operation-expand.html, valueset-operation-validate-code.html). A server that offers
neither operation gets a warning: the KZ rules require coded data, not a terminology service."""

from __future__ import annotations

from typing import Any

import httpx

from conformance.capability import operations
from conformance.context import RunContext
from conformance.expect import diagnostics, refusal_reason
from conformance.http import json_body
from conformance.model import Outcome, failed, passed, warning
from conformance.registry import check
from terminology import KZ_BASE, default_service

GROUP = "terminology"
# The KZ ValueSets bound by the KZ profiles' MD-B/MD-D elements (funding, channel, form, diagnosis data set).
KZ_VALUESETS = tuple(f"{KZ_BASE}/ValueSet/kz-{name}" for name in (
    "funding-source", "telecom-channel", "remote-service-form", "diagnosis-kind", "diagnosis-type",
    "disease-character", "observation-entry-method",
))
_NOT_OFFERED = (400, 404, 405, 501)


def _local_codes(url: str) -> set[tuple[str, str]]:
    expansion = default_service().expand(url).get("expansion", {})
    return {(str(c.get("system")), str(c.get("code"))) for c in expansion.get("contains", [])}


def _served_codes(valueset: dict[str, Any]) -> set[tuple[str, str]]:
    contains = (valueset.get("expansion") or {}).get("contains") or []
    return {(str(c.get("system")), str(c.get("code"))) for c in contains if isinstance(c, dict)}


def _not_offered(ctx: RunContext, response: httpx.Response, operation: str) -> Outcome | None:
    if response.status_code in _NOT_OFFERED and operation not in operations(ctx.capability, "ValueSet"):
        return warning(f"ValueSet/${operation} is not offered "
                       f"({response.status_code}: {diagnostics(response)})")
    problem = refusal_reason(ctx.client, response, f"ValueSet/${operation}")
    if problem is not None:
        raise problem
    return None


@check("TERM-01", GROUP, "ValueSet/$expand of the KZ ValueSets returns every KZ code",
       ["MD-B", "MD-D", "R4 valueset-operation-expand.html"])
async def expand_kz_valuesets(ctx: RunContext) -> Outcome:
    problems = []
    for url in KZ_VALUESETS:
        response = await ctx.client.get("ValueSet/$expand", params={"url": url})
        if response.status_code != 200:
            unavailable = _not_offered(ctx, response, "expand")
            if unavailable is not None:
                return unavailable
            problems.append(f"{url}: {response.status_code} {diagnostics(response)}")
            continue
        missing = _local_codes(url) - _served_codes(json_body(response) or {})
        if missing:
            problems.append(f"{url}: missing {sorted(code for _, code in missing)}")
    if problems:
        return failed("; ".join(problems))
    return passed(f"{len(KZ_VALUESETS)} KZ ValueSets expanded with all their codes")


async def _validate_code(ctx: RunContext, url: str, system: str, code: str) -> httpx.Response:
    params = {"url": url, "system": system, "code": code}
    return await ctx.client.get("ValueSet/$validate-code", params=params)


def _result(response: httpx.Response) -> bool | None:
    body = json_body(response) or {}
    if body.get("resourceType") != "Parameters":
        return None
    results = [p.get("valueBoolean") for p in body.get("parameter") or [] if isinstance(p, dict)
               and p.get("name") == "result"]
    return results[0] if results and isinstance(results[0], bool) else None


@check("TERM-02", GROUP, "ValueSet/$validate-code accepts a KZ code and rejects an unknown one",
       ["MD-B", "MD-D", "R4 valueset-operation-validate-code.html"])
async def validate_kz_code(ctx: RunContext) -> Outcome:
    url = KZ_VALUESETS[0]
    system, code = sorted(_local_codes(url))[0]
    member = await _validate_code(ctx, url, system, code)
    if member.status_code != 200:
        unavailable = _not_offered(ctx, member, "validate-code")
        return unavailable or failed(f"{member.status_code}: {diagnostics(member)}")
    stranger = await _validate_code(ctx, url, system, "conformance-not-a-code")
    verdicts = (_result(member), _result(stranger))
    if verdicts != (True, False):
        return failed(f"result for {code!r} was {verdicts[0]}, for an unknown code {verdicts[1]} "
                      "(expected true, false in a Parameters resource)")
    return passed(f"{system}|{code} valid, unknown code invalid")
