"""Who a Bundle signature claims as signer: the IIN / BIN the certificate must carry (AC-25, TM-10).

``Bundle.signature.who`` names the signer (R4 Signature.who: Practitioner, PractitionerRole,
Organization, ...). A document Bundle carries its own resources, so the reference is resolved against
the Bundle's entries, by ``fullUrl`` or by ``Type/id``. A logical reference (``who.identifier`` with
the IIN or BIN system) is read directly, for a signer that is a server resource outside the document.
``Signature.onBehalfOf`` names the organisation, whose BIN an employee certificate carries
(kz-domain §5.1). What cannot be resolved is reported as unchecked, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.security.refs import BIN_SYSTEM, IIN_SYSTEM, relative_ref


@dataclass(frozen=True, slots=True)
class ExpectedSigner:
    """The identifiers the signer's certificate must carry, and the signer's resource type if known."""

    iin: str | None = None
    bin: str | None = None
    who_type: str | None = None

    @property
    def known(self) -> bool:
        return self.iin is not None or self.bin is not None


def _entries_index(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Entry resources by ``fullUrl`` and by ``Type/id``."""
    index: dict[str, dict[str, Any]] = {}
    entries = bundle.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str):
            index[full_url] = resource
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if isinstance(rtype, str) and isinstance(rid, str):
            index.setdefault(f"{rtype}/{rid}", resource)
    return index


def _resolve(index: dict[str, dict[str, Any]], reference: Any) -> dict[str, Any] | None:
    if not isinstance(reference, dict):
        return None
    literal = reference.get("reference")
    if not isinstance(literal, str):
        return None
    if literal in index:
        return index[literal]
    relative = relative_ref(literal)
    return index.get(relative) if relative else None


def entry_resource(bundle: dict[str, Any], reference: Any) -> dict[str, Any] | None:
    """The entry resource a Reference points to inside this Bundle, if any."""
    return _resolve(_entries_index(bundle), reference)


def identifier_value(holder: dict[str, Any] | None, system: str) -> str | None:
    """The value of the identifier with ``system`` (a resource's list or a Reference's single one)."""
    if holder is None:
        return None
    found = holder.get("identifier")
    candidates = found if isinstance(found, list) else [found]
    for identifier in candidates:
        if isinstance(identifier, dict) and identifier.get("system") == system:
            value = identifier.get("value")
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


def _from_resource(index: dict[str, dict[str, Any]], resource: dict[str, Any]) -> ExpectedSigner:
    rtype = resource.get("resourceType")
    if rtype == "Practitioner":
        return ExpectedSigner(iin=identifier_value(resource, IIN_SYSTEM), who_type=rtype)
    if rtype == "Organization":
        return ExpectedSigner(bin=identifier_value(resource, BIN_SYSTEM), who_type=rtype)
    if rtype == "PractitionerRole":  # the person's IIN and their organisation's BIN
        practitioner = _resolve(index, resource.get("practitioner"))
        organization = _resolve(index, resource.get("organization"))
        return ExpectedSigner(iin=identifier_value(practitioner, IIN_SYSTEM),
                              bin=identifier_value(organization, BIN_SYSTEM), who_type=rtype)
    return ExpectedSigner(who_type=rtype if isinstance(rtype, str) else None)


def expected_signer(bundle: dict[str, Any], signature: dict[str, Any]) -> ExpectedSigner:
    """The IIN / BIN named by ``Signature.who`` (and ``onBehalfOf``) in this Bundle."""
    index = _entries_index(bundle)
    who = signature.get("who")
    resource = _resolve(index, who)
    found = _from_resource(index, resource) if resource is not None else ExpectedSigner()
    if isinstance(who, dict):  # a logical reference adds what the resource did not say
        who_type = found.who_type or (who.get("type") if isinstance(who.get("type"), str) else None)
        found = ExpectedSigner(found.iin or identifier_value(who, IIN_SYSTEM),
                               found.bin or identifier_value(who, BIN_SYSTEM), who_type)
    if found.bin is None:
        on_behalf = signature.get("onBehalfOf")
        organization = _resolve(index, on_behalf)
        bin_value = identifier_value(organization, BIN_SYSTEM) or (
            identifier_value(on_behalf, BIN_SYSTEM) if isinstance(on_behalf, dict) else None)
        found = ExpectedSigner(found.iin, bin_value, found.who_type)
    return found
