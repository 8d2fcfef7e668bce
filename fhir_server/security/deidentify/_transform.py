"""The de-identification rules, applied by FHIR type while walking a resource (AC-19).

docs/deidentification.md lists every rule; keep the two in step. The walk builds new dicts and lists and
never mutates its input.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fhir_server.security.deidentify._elements import ElementType, element_index
from fhir_server.security.deidentify._patients import LITERAL_REFERENCE, PatientIndex, bundle_entries

_DROP = object()
# Types whose every value identifies or describes a person in free form.
_REMOVED_TYPES = frozenset(
    {"HumanName", "ContactPoint", "Narrative", "Annotation", "Signature", "base64Binary", "xhtml"}
)
_FREE_TEXT_TYPES = frozenset({"string", "markdown"})
_DATE_TYPES = frozenset({"date", "dateTime", "instant"})
# Strings that carry codes' labels or structure, not free text about a person.
_KEPT_STRINGS = frozenset(
    {
        "Coding.display", "Coding.version", "CodeableConcept.text", "Quantity.unit", "Age.unit", "Count.unit",
        "Distance.unit", "Duration.unit", "SampledData.data", "Organization.name", "Device.deviceName.name",
        "Questionnaire.item.linkId", "QuestionnaireResponse.item.linkId", "Composition.title",
        "Composition.section.title", "Parameters.parameter.name", "Bundle.entry.response.status",
        "Device.manufacturer", "Device.modelNumber", "Device.version.value", "Bundle.entry.response.etag",
        # passed on to the type rules in _typed, which pseudonymise or filter them:
        "Identifier.value", "Reference.reference", "Address.country", "Address.state",
    }
)  # fmt: skip
# Removed whatever their type: photographs, and server links (their URLs may hold search terms).
_REMOVED_PATHS = frozenset(
    {"Patient.photo", "Practitioner.photo", "RelatedPerson.photo", "Person.photo"}
    | {"Bundle.link", "Bundle.entry.link"}
)
_ATTACHMENT_KEPT = ("id", "contentType", "language", "size", "creation")
_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?(.*)$")
_SECURITY_PSEUDED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "PSEUDED",
    "display": "pseudonymized",
}


class Deidentifier:
    """Pseudonymises ids, references and identifiers with HMAC-SHA256 under ``secret`` and shifts dates.

    The same input id gives the same pseudonym across resources and runs with the same secret; each patient's
    dates move by one offset in ``[-date_shift_days_max, -1] ∪ [1, date_shift_days_max]`` days.
    """

    def __init__(self, secret: bytes, *, date_shift_days_max: int = 365, keep_region: bool = False) -> None:
        if len(secret) < 16:
            raise ValueError("the de-identification secret must be at least 16 bytes")
        if date_shift_days_max < 1:
            raise ValueError("date_shift_days_max must be at least 1")
        self._secret = secret
        self._max_shift = date_shift_days_max
        self._address_kept = ("use", "type", "country", "state")[: 4 if keep_region else 3]
        self._types = element_index()

    # -- keyed derivations --------------------------------------------------------------------------------
    def _digest(self, purpose: str, value: str) -> bytes:
        return hmac.new(self._secret, f"{purpose}\x1f{value}".encode(), hashlib.sha256).digest()

    def pseudonym(self, purpose: str, value: str) -> str:
        """A 32-character lowercase base32 pseudonym (a valid FHIR id; no run of 12 decimal digits)."""
        return base64.b32encode(self._digest(purpose, value)[:20]).decode().lower()

    def shift_days(self, owner_key: str) -> int:
        span = int.from_bytes(self._digest("date-shift", owner_key)[:8], "big") % (2 * self._max_shift)
        return span - self._max_shift if span < self._max_shift else span - self._max_shift + 1

    def reference(self, ref: str) -> str:
        """Rewrite a reference; contained ``#id`` references stay as they are (the contained ids are kept)."""
        if ref.startswith("#"):
            return ref
        if ref.startswith("urn:uuid:"):
            return f"urn:uuid:{uuid.UUID(bytes=self._digest('urn', ref)[:16], version=4)}"
        if ref.startswith("urn:oid:"):
            return f"urn:oid:2.25.{int.from_bytes(self._digest('urn', ref)[:16], 'big')}"
        match = LITERAL_REFERENCE.match(ref)
        if match:
            pseudo = self.pseudonym("id", f"{match['type']}/{match['id']}")
            return f"{match['base'] or ''}{match['type']}/{pseudo}{match['history'] or ''}"
        # Conditional or unrecognised references may embed identifiers: replace them wholesale.
        return f"urn:uuid:{uuid.UUID(bytes=self._digest('urn', ref)[:16], version=4)}"

    # -- public entry point -----------------------------------------------------------------------------
    def deidentify(self, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
        patients = PatientIndex.build(resources)
        owners = {
            id(res): patients.owner_key(res, url) for top in resources for url, res in bundle_entries(top)
        }
        return [self._resource(res, owners, shift=None) for res in resources]

    # -- the walk ------------------------------------------------------------------------------------------
    def _resource(self, res: dict[str, Any], owners: dict[int, str], shift: int | None) -> dict[str, Any]:
        rtype = res.get("resourceType")
        if not isinstance(rtype, str) or rtype not in self._types:
            raise ValueError(f"cannot de-identify a resource of unknown type {rtype!r}")
        contained = shift is not None
        if shift is None:
            shift = self.shift_days(owners.get(id(res), f"{rtype}/{res.get('id', '')}"))
        body = self._complex(res, rtype, owners, shift)
        head: dict[str, Any] = {"resourceType": rtype}
        if "id" in res:
            head["id"] = res["id"] if contained else self.pseudonym("id", f"{rtype}/{res['id']}")
        if not contained:
            meta = dict(body.get("meta", {}))
            meta["security"] = [*meta.get("security", []), dict(_SECURITY_PSEUDED)]
            head["meta"] = meta
        return {**head, **{k: v for k, v in body.items() if k not in head}}

    def _complex(self, node: dict[str, Any], key: str, owners: dict[int, str], shift: int) -> dict[str, Any]:
        props = self._types.get(key, {})
        out: dict[str, Any] = {}
        for name, value in node.items():
            if name == "id" or name == "resourceType":
                out[name] = value
                continue
            element = props.get(name.lstrip("_"))
            if element is None or element.path in _REMOVED_PATHS:
                continue  # unknown properties cannot be classified, so they are not exported
            if name.startswith("_"):
                # Primitive extensions (FHIR R4 §2.6.2.7) follow the fate of their primitive.
                new = (
                    self._each(value, _Step(self, _PRIMITIVE_EXTENSIONS, owners, shift))
                    if self._kept_type(element)
                    else _DROP
                )
            else:
                new = self._each(value, _Step(self, element, owners, shift))
            if new is not _DROP:
                out[name] = new
        return out

    def _kept_type(self, element: ElementType) -> bool:
        if element.code in _REMOVED_TYPES:
            return False
        return element.code not in _FREE_TEXT_TYPES or element.path in _KEPT_STRINGS

    @staticmethod
    def _each(value: Any, step: _Step) -> Any:
        if isinstance(value, list):
            items = [step(v) for v in value]
            kept = [v for v in items if v is not _DROP]
            return kept if kept else _DROP
        return step(value)

    def _value(self, value: Any, element: ElementType, owners: dict[int, str], shift: int) -> Any:
        code = element.code
        if value is None or not self._kept_type(element):
            return value if value is None else _DROP
        if code in _DATE_TYPES and isinstance(value, str):
            try:
                return shift_date(value, shift)
            except (ValueError, OverflowError):
                return _DROP  # not a valid date: it cannot be shifted, so it must not be exported
        if element.path in ("Bundle.entry.fullUrl", "Bundle.entry.response.location"):
            return self.reference(value)
        if element.path == "Bundle.entry.request.url":
            # "Patient?identifier=..." loses its criteria; a bare type ("Patient") is kept as it is.
            base = value.split("?", 1)[0]
            return self.reference(base) if "/" in base else base
        if not isinstance(value, dict):
            return value
        if code == "Resource":
            inner_shift = shift if element.path.endswith(".contained") else None
            return self._resource(value, owners, inner_shift)
        if code == "Extension" and any(k in value for k in ("valueString", "valueMarkdown")):
            return _DROP  # free-text extension values (e.g. mother's maiden name)
        out = self._complex(value, element.children or code, owners, shift)
        return self._typed(code, out)

    def _typed(self, code: str, out: dict[str, Any]) -> Any:
        """Type-specific rules applied after the children were processed."""
        if code == "Reference":
            out.pop("display", None)
            if isinstance(out.get("reference"), str):
                out["reference"] = self.reference(out["reference"])
        elif code == "Identifier" and isinstance(out.get("value"), str):
            out["value"] = self.pseudonym(f"identifier|{out.get('system', '')}", out["value"])
        elif code == "Address":
            out = {k: v for k, v in out.items() if k in self._address_kept or k in ("period", "id")}
            if not any(k in out for k in ("country", "state")):
                return _DROP
        elif code == "Attachment":
            out = {k: v for k, v in out.items() if k in _ATTACHMENT_KEPT}
        elif code == "Extension" and not any(k.startswith("value") or k == "extension" for k in out):
            return _DROP  # its value was removed; an extension with neither value nor children is invalid
        return out if out else _DROP


_PRIMITIVE_EXTENSIONS = ElementType("Element", "Element", "Element")


@dataclass(frozen=True, slots=True)
class _Step:
    """Processes one value (or one item of a repeating element) of a known element."""

    walker: Deidentifier
    element: ElementType
    owners: dict[int, str]
    shift: int

    def __call__(self, value: Any) -> Any:
        return self.walker._value(value, self.element, self.owners, self.shift)


def shift_date(value: str, days: int) -> str:
    """Shift a FHIR date/dateTime/instant by whole days, keeping its precision, time of day and offset.

    Partial dates (``YYYY``, ``YYYY-MM``) are shifted from the middle of the period they name and keep
    their precision, so they move by about ``days`` without inventing precision.
    """
    match = _PARTIAL_DATE.match(value)
    if not match:
        return value
    year, month, day, rest = match.groups()
    anchor = date(int(year), int(month or 7), int(day or (15 if month else 2)))
    moved = anchor + timedelta(days=days)
    if day:
        return moved.isoformat() + rest
    return f"{moved.year:04d}-{moved.month:02d}" if month else f"{moved.year:04d}"
