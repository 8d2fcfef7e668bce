"""References and identifiers the security layer compares: one normal form for each.

Tokens, Consents and care relationships name people in several spellings (relative
``Practitioner/1``, absolute ``https://host/fhir/Practitioner/1/_history/2``, logical
``{"identifier": {...}}``). Everything is normalised here before it is compared, so a spelling
difference can never turn into an accidental grant or a missed deny.
"""

from __future__ import annotations

import re
from typing import Any

#: Canonical base of the Kazakhstan IG (docs/profiles: one base URL chosen once).
KZ_BASE = "https://fhir.kzfhir.kz"
IIN_SYSTEM = f"{KZ_BASE}/sid/iin"
BIN_SYSTEM = f"{KZ_BASE}/sid/bin"

_TYPE = r"[A-Z][A-Za-z]{1,63}"
_ID = r"[A-Za-z0-9\-.]{1,64}"
_RELATIVE = re.compile(rf"^({_TYPE})/({_ID})$")
_TAIL = re.compile(rf"(?:^|/)({_TYPE})/({_ID})(?:/_history/{_ID})?$")
_BIN = re.compile(r"^\d{12}$")


def relative_ref(value: str | None) -> str | None:
    """``Type/id`` for a relative or absolute literal reference, dropping any ``_history`` part.

    Returns None for anything else (contained ``#x``, URNs, malformed text) so callers treat it
    as "no identity" rather than guessing.
    """
    if not value or not isinstance(value, str):
        return None
    match = _TAIL.search(value.strip())
    if match is None:
        return None
    return f"{match.group(1)}/{match.group(2)}"


def ref_type(ref: str | None) -> str | None:
    """The resource type of a relative reference (``Patient/7`` -> ``Patient``)."""
    if ref is None:
        return None
    match = _RELATIVE.match(ref)
    return match.group(1) if match else None


def ref_id(ref: str | None) -> str | None:
    """The id of a relative reference (``Patient/7`` -> ``7``)."""
    if ref is None:
        return None
    match = _RELATIVE.match(ref)
    return match.group(2) if match else None


def reference_keys(reference: Any) -> set[str]:
    """All comparison keys of a FHIR Reference: ``Type/id`` and ``system|value`` of its identifier."""
    keys: set[str] = set()
    if not isinstance(reference, dict):
        return keys
    literal = relative_ref(reference.get("reference"))
    if literal:
        keys.add(literal)
    identifier = reference.get("identifier")
    if isinstance(identifier, dict) and identifier.get("system") and identifier.get("value"):
        keys.add(f"{identifier['system']}|{identifier['value']}")
    return keys


def is_bin(value: object) -> bool:
    """A BIN is twelve digits (kz-domain §1); the checksum is the signing package's concern."""
    return isinstance(value, str) and _BIN.match(value) is not None


def bin_key(bin_value: str) -> str:
    """The identity key an Organization actor given by BIN compares against."""
    return f"{BIN_SYSTEM}|{bin_value}"
