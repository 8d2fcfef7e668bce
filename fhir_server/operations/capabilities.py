"""The CapabilityStatement at ``[base]/metadata`` (FHIR R4 capabilitystatement.html), generated from
what this server implements: every R4 resource type with the same interactions, the search
parameters the search registry supports, and the operations registered."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import import_module
from typing import Any

from fhir_server import __version__
from fhir_server.interactions.base import Services
from fhir_server.jsonio import dumps
from fhir_server.operations import load_all
from fhir_server.operations.registry import registered
from fhir_server.validation.profile import KZ_PROFILES

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
TOPIC_CANONICAL = f"{BACKPORT}/capabilitystatement-subscriptiontopic-canonical"
_TYPE_INTERACTIONS = ["read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
                      "search-type"]


def _search_params(resource_type: str) -> list[dict[str, Any]]:
    from fhir_server.search import capability_search_params

    return capability_search_params(resource_type)


_CORE_OPERATIONS = {
    ("validate", "*"): "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    ("expand", "ValueSet"): "http://hl7.org/fhir/OperationDefinition/ValueSet-expand",
    ("lookup", "CodeSystem"): "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup",
    ("validate-code", "ValueSet"): "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code",
    ("validate-code", "CodeSystem"): "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code",
    ("translate", "ConceptMap"): "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate",
    ("everything", "Patient"): "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    ("export", "*"): "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
    ("export", "Patient"): "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
    ("export", "Group"): "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
    ("status", "Subscription"): "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status",
    ("events", "Subscription"): "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events",
    ("get-ws-binding-token", "Subscription"):
        "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-get-ws-binding-token",
}


def _operation(name: str, resource_type: str) -> dict[str, str]:
    definition = (_CORE_OPERATIONS.get((name, resource_type)) or _CORE_OPERATIONS.get((name, "*"))
                  or f"https://fhir.kzfhir.kz/OperationDefinition/{name}")
    return {"name": name, "definition": definition}


def _operations_for(resource_type: str | None) -> list[dict[str, str]]:
    """The operations the registry serves for a type ("*" ones on every type), or at system level."""
    names: set[str] = set()
    for level, rtype, name in registered():
        at_system = resource_type is None and level == "system"
        on_type = resource_type is not None and level != "system" and rtype in (resource_type, "*")
        if at_system or on_type:
            names.add(name)
    return [_operation(n, resource_type or "*") for n in sorted(names)]


def _resource(services: Services, resource_type: str) -> dict[str, Any]:
    multiple = services.settings.allow_multiple_conditional_delete
    sd = services.definitions.structure_definitions.get(f"http://hl7.org/fhir/StructureDefinition/{resource_type}")
    entry: dict[str, Any] = {
        "type": resource_type,
        "profile": sd["url"] if sd else f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
        "interaction": [{"code": c} for c in _TYPE_INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "full-support",
        "conditionalUpdate": True,
        "conditionalDelete": "multiple" if multiple else "single",
        "referencePolicy": ["literal", "local"],
    }
    kz = KZ_PROFILES.get(resource_type)
    if kz is not None and services.settings.validate_on_write:
        # declared profiles are enforced on every write (national strict mode also requires this one);
        # with validation switched off the server enforces nothing and claims nothing
        entry["supportedProfile"] = [kz]
    params = _search_params(resource_type)
    if params:
        entry["searchParam"] = params
    operations = _operations_for(resource_type)
    if operations:
        entry["operation"] = operations
    if resource_type == "Subscription":  # the topics served (Subscriptions Backport IG 1.1.0)
        from fhir_server.subscriptions.topics import topics

        entry["extension"] = [{"url": TOPIC_CANONICAL, "valueCanonical": url} for url in sorted(topics())]
        entry["supportedProfile"] = [f"{BACKPORT}/backport-subscription"]
    return entry


def _statement(services: Services, base_url: str) -> dict[str, Any]:
    load_all()
    import_module("fhir_server.subscriptions.operations")  # $status / $events registered
    types = sorted(services.definitions.resource_types)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),  # when this statement was generated
        "publisher": "kzfhir",
        "kind": "instance",
        "software": {"name": "kzfhir", "version": __version__},
        "implementation": {"description": "kzfhir FHIR R4 server", "url": base_url},
        "fhirVersion": "4.0.1",
        **({"implementationGuide": ["https://fhir.kzfhir.kz/ImplementationGuide/kz-core"]}
           if services.settings.validate_on_write else {}),
        "format": ["application/fhir+json", "json", "application/fhir+xml", "xml"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json", "application/fhir+xml"],
        "rest": [{
            "mode": "server",
            "documentation": "See docs/conformance.md for what is and is not supported.",
            "resource": [_resource(services, t) for t in types],
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"},
                            {"code": "search-system"}],
            **({"operation": ops} if (ops := _operations_for(None)) else {}),
            "security": {
                "cors": False,
                "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                         "code": "SMART-on-FHIR"}]}],
                "description": "OAuth2 bearer JWTs (RS256/ES256), SMART v2 scopes; consent-based access "
                               "policy (DSM-54); every access audited. See docs/security.md.",
            } if services.settings.security_enabled else {"description": "open development mode: no security"},
        }],
    }


_cache: dict[tuple[int, str, bool], bytes] = {}


def capability_statement(services: Services, base_url: str, *, pretty: bool = False) -> bytes:
    """Built once per server and base URL: it only changes when the code or configuration does."""
    key = (id(services), base_url, pretty)
    if key not in _cache:
        _cache[key] = dumps(_statement(services, base_url), pretty=pretty)
    return _cache[key]
