"""vread: ``GET [base]/[type]/[id]/_history/[vid]`` (FHIR R4 http.html §3.1.0.3)."""

from __future__ import annotations

from fhir_server.errors import FhirError
from fhir_server.i18n import msg
from fhir_server.interactions.base import FhirResponse, check_id, check_type, version_headers
from fhir_server.interactions.request import FhirRequest
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action

#: Versions are positive integers the server assigned (ASCII digits; no larger than SQLite's integers).
MAX_VERSION = 2**63 - 1


def parse_version(version: str, resource_type: str, resource_id: str) -> int:
    """The version number of a vread URL; an id that cannot be a version is simply not one (404)."""
    if not (version.isascii() and version.isdigit()) or int(version) > MAX_VERSION or int(version) < 1:
        raise FhirError("not_found", msg("resource.no_version", type=resource_type, id=resource_id,
                                         version=version[:40]))
    return int(version)


async def handle(req: FhirRequest, resource_type: str, resource_id: str, version: str) -> FhirResponse:
    check_type(req.services, resource_type)
    check_id(resource_id)
    await req.access.gate(Action.VREAD, resource_type, AuditTarget("vread", resource_type, resource_id, version),
                          instance=True)
    stored = await req.access.vread(resource_type, resource_id, parse_version(version, resource_type, resource_id))
    return FhirResponse(200, stored.data, version_headers(stored, req.base_url, location=False), stored)
