"""Reading a CapabilityStatement (R4 capabilitystatement.html): what the server says it supports."""

from __future__ import annotations

from typing import Any

from fhir_server.validation.profile import KZ_BASE, KZ_PROFILES

__all__ = [
    "claims_kz_profile",
    "interactions",
    "operations",
    "resource_entry",
    "rest_server",
    "search_params",
    "security_services",
]


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def rest_server(cs: dict[str, Any] | None) -> dict[str, Any]:
    """The ``rest`` entry in server mode ({} when there is none)."""
    rests = _dicts((cs or {}).get("rest"))
    return next((r for r in rests if r.get("mode") == "server"), rests[0] if rests else {})


def resource_entry(cs: dict[str, Any] | None, resource_type: str) -> dict[str, Any] | None:
    return next((r for r in _dicts(rest_server(cs).get("resource")) if r.get("type") == resource_type), None)


def interactions(cs: dict[str, Any] | None, resource_type: str) -> set[str]:
    entry = resource_entry(cs, resource_type) or {}
    return {str(i.get("code")) for i in _dicts(entry.get("interaction"))}


def search_params(cs: dict[str, Any] | None, resource_type: str) -> set[str]:
    entry = resource_entry(cs, resource_type) or {}
    return {str(p.get("name")) for p in _dicts(entry.get("searchParam"))}


def operations(cs: dict[str, Any] | None, resource_type: str | None = None) -> set[str]:
    """Operation names (without ``$``) declared for the type, plus those declared system-wide."""
    rest = rest_server(cs)
    entry = (resource_entry(cs, resource_type) or {}) if resource_type else {}
    found = _dicts(entry.get("operation")) + _dicts(rest.get("operation"))
    return {str(op.get("name", "")).lstrip("$") for op in found}


def claims_kz_profile(cs: dict[str, Any] | None, resource_type: str) -> bool:
    """Does the server say it enforces the KZ profile of the type? Its resource ``profile`` or a
    ``supportedProfile`` names it, or the statement claims the KZ ImplementationGuide as a whole."""
    wanted = KZ_PROFILES.get(resource_type)
    entry = resource_entry(cs, resource_type) or {}
    declared = [entry.get("profile"), *(entry.get("supportedProfile") or [])]
    if wanted and any(isinstance(p, str) and p.split("|")[0] == wanted for p in declared):
        return True
    guides = (cs or {}).get("implementationGuide") or []
    return any(isinstance(g, str) and g.startswith(f"{KZ_BASE}/ImplementationGuide/") for g in guides)


def security_services(cs: dict[str, Any] | None) -> list[str]:
    security = rest_server(cs).get("security") or {}
    return [str(c.get("code")) for s in _dicts(security.get("service")) for c in _dicts(s.get("coding"))]
