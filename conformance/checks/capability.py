"""capability: what ``GET [base]/metadata`` declares (R4 http.html#capabilities, capabilitystatement.html)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conformance.capability import (
    claims_kz_profile,
    interactions,
    operations,
    resource_entry,
    rest_server,
    search_params,
)
from conformance.context import RunContext
from conformance.expect import diagnostics
from conformance.http import json_body
from conformance.model import CheckSkipped, Outcome, failed, passed, warning
from conformance.registry import check
from conformance.validation import KZ_PROFILES

GROUP = "capability"


def _statement(ctx: RunContext) -> dict[str, Any]:
    if ctx.capability is None:
        raise CheckSkipped("no CapabilityStatement to inspect (see CAP-01)")
    return ctx.capability


def _missing(cs: dict[str, Any], wanted: Mapping[str, tuple[str, ...]]) -> list[str]:
    gaps = []
    for resource_type, codes in wanted.items():
        if resource_entry(cs, resource_type) is None:
            gaps.append(f"{resource_type} (not listed)")
            continue
        absent = [c for c in codes if c not in interactions(cs, resource_type)]
        if absent:
            gaps.append(f"{resource_type}: {', '.join(absent)}")
    return gaps


@check("CAP-01", GROUP, "GET /metadata returns a CapabilityStatement for a server",
       ["TM-14", "R4 http.html#capabilities"])
async def metadata_is_capability_statement(ctx: RunContext) -> Outcome:
    response = await ctx.client.get("metadata")
    body = json_body(response)
    if response.status_code != 200 or body is None or body.get("resourceType") != "CapabilityStatement":
        ctx.capability = None
        return failed(f"expected 200 with a CapabilityStatement, got {response.status_code}: "
                      f"{diagnostics(response)}")
    ctx.capability = body
    if body.get("kind") not in ("instance", "capability"):
        return failed(f"CapabilityStatement.kind is {body.get('kind')!r}, expected 'instance' for a server")
    if rest_server(body).get("mode") != "server":
        return failed("no rest entry with mode 'server'")
    software = body.get("software") or {}
    return passed(f"{software.get('name', 'unnamed software')} {software.get('version', '')}".strip())


@check("CAP-02", GROUP, "fhirVersion is 4.0.1 (FHIR R4)", ["TM-14", "R4 capabilitystatement.html"])
async def fhir_version_is_r4(ctx: RunContext) -> Outcome:
    version = _statement(ctx).get("fhirVersion")
    if version == "4.0.1":
        return passed("fhirVersion 4.0.1")
    if isinstance(version, str) and version.startswith("4.0."):
        return warning(f"fhirVersion {version}: an R4 pre-release, the KZ IG is published for 4.0.1")
    return failed(f"fhirVersion {version!r}: the KZ IG and this kit target FHIR R4 4.0.1")


@check("CAP-03", GROUP, "JSON is offered and answered as application/fhir+json",
       ["TM-14", "R4 http.html#mime-type"])
async def json_format(ctx: RunContext) -> Outcome:
    formats = [str(f) for f in _statement(ctx).get("format") or []]
    if not any(f in ("json", "application/fhir+json") for f in formats):
        return failed(f"CapabilityStatement.format {formats} does not list json")
    response = await ctx.client.get("metadata", params={"_format": "json"})
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("application/fhir+json"):
        return passed(f"format {formats}; Content-Type {content_type}")
    if content_type.startswith("application/json"):
        return warning(f"answered as {content_type}; R4 names application/fhir+json")
    return failed(f"_format=json answered with Content-Type {content_type!r}")


@check("CAP-04", GROUP, "Schedule, Slot and Appointment support the scheduling interactions",
       ["TM-05", "TM-06", "R4 http.html"])
async def scheduling_resources(ctx: RunContext) -> Outcome:
    wanted = {"Schedule": ("read", "search-type", "create"), "Slot": ("read", "search-type", "create"),
              "Appointment": ("read", "search-type", "create", "update")}
    gaps = _missing(_statement(ctx), wanted)
    return failed("missing: " + "; ".join(gaps)) if gaps else passed("Schedule, Slot, Appointment declared")


@check("CAP-05", GROUP, "The ten KZ profiled resource types are declared with create, read and search",
       ["MD-B", "MD-D", "AC-07", "AC-14", "R4 capabilitystatement.html"])
async def kz_resource_types(ctx: RunContext) -> Outcome:
    # AuditEvents are written by the server itself (AC-14): read and search suffice.
    wanted = {t: ("read", "search-type") if t == "AuditEvent" else ("create", "read", "search-type")
              for t in KZ_PROFILES}
    gaps = _missing(_statement(ctx), wanted)
    return failed("missing: " + "; ".join(gaps)) if gaps else passed(f"{len(wanted)} types declared")


@check("CAP-06", GROUP, "KZ search parameters iin (Patient, Practitioner), bin (Organization) are declared",
       ["TM-04", "MD-B", "R4 search.html"])
async def kz_search_parameters(ctx: RunContext) -> Outcome:
    cs = _statement(ctx)
    wanted = {("Patient", "iin"), ("Patient", "identifier"), ("Practitioner", "iin"), ("Organization", "bin")}
    absent = sorted(f"{t}.{p}" for t, p in wanted if p not in search_params(cs, t))
    if absent:
        return failed(f"not declared: {', '.join(absent)}")
    return passed("iin, bin and identifier declared")


@check("CAP-07", GROUP, "$validate is declared for the KZ resource types",
       ["R4 operation-resource-validate.html"])
async def validate_operation(ctx: RunContext) -> Outcome:
    cs = _statement(ctx)
    absent = [t for t in KZ_PROFILES if "validate" not in operations(cs, t)]
    if not absent:
        return passed("$validate declared")
    return warning(f"$validate not declared for {', '.join(absent)}: vendors cannot pre-check content")


@check("CAP-08", GROUP, "The KZ profiles are declared (resource.profile / supportedProfile)",
       ["MD-B", "MD-D", "R4 capabilitystatement-definitions.html#CapabilityStatement.rest.resource"])
async def kz_profiles_declared(ctx: RunContext) -> Outcome:
    cs = _statement(ctx)
    undeclared = [t for t in KZ_PROFILES if not claims_kz_profile(cs, t)]
    if not undeclared:
        return passed("every KZ profile declared: invalid KZ content must be refused (KZ-2x)")
    return warning(f"KZ profiles not declared for {', '.join(undeclared)}: invalid KZ content of those types "
                   "must be refused all the same (KZ-2x)")
