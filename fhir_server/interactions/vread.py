"""vread: ``GET [base]/[type]/[id]/_history/[vid]`` (FHIR R4 http.html §3.1.0.3)."""

from __future__ import annotations

from fhir_server.errors import FhirError
from fhir_server.interactions.access import Action, AuditTarget, see_stored, session
from fhir_server.interactions.base import FhirResponse, Services, check_id, check_type, version_headers
from fhir_server.security.context import RequestContext


async def handle(services: Services, ctx: RequestContext, resource_type: str, resource_id: str, version: str,
                 *, base_url: str) -> FhirResponse:
    check_type(services, resource_type)
    check_id(resource_id)
    access = session(services, ctx)
    if access.enabled:
        await access.start(Action.VREAD, resource_type, AuditTarget("vread", resource_type, resource_id, version),
                           instance_level=True)
    if not (version.isascii() and version.isdigit()) or len(version) > 18:  # issue 12: not '³', not > 64 bits
        raise FhirError("not_found", f"{resource_type}/{resource_id} has no version {version[:40]!r}")
    stored = await services.store.vread(resource_type, resource_id, int(version))
    if stored is None:
        raise FhirError("not_found", f"{resource_type}/{resource_id} has no version {version}")
    headers = version_headers(stored, base_url, location=False)
    if stored.deleted:
        raise FhirError("gone", f"version {version} of {resource_type}/{resource_id} is a deletion",
                        headers=headers)
    if access.enabled:
        verdict, ids = await see_stored(access, Action.VREAD, stored, "vread")
        access.record(AuditTarget("vread", resource_type, resource_id, version), verdict, ids)
        await access.flush()
    return FhirResponse(200, stored.data, headers, stored)
