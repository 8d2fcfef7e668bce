"""Turn the values a search expression selects into index rows, by parameter type and FHIR type.

The mapping of FHIR types to index values follows FHIR R4 search §3.1.1.4 (one table per parameter
type): e.g. a token over a CodeableConcept indexes every coding's system|code, and its text and the
codings' displays for ``:text``; a string over a HumanName indexes family, given, prefix, suffix and
text. Values whose type is unknown (from the full FHIRPath engine) are recognised by their shape.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from fhir_server.definitions import required_codes
from fhir_server.search.dates import MAX_TIME, MIN_TIME, date_range
from fhir_server.search.numbers import number_value
from fhir_server.search.references import parse_reference
from fhir_server.search.rows import IDENTIFIER_SUFFIX, OF_TYPE_SUFFIX
from fhir_server.search.text import normalize

INF = 1.0e308  # an open end of a Range; finite so that sort keys stay JSON in paging cursors
QUANTITY_TYPES = frozenset({"Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity", "MoneyQuantity"})
_STRING_PARTS = {
    "HumanName": ("text", "family", "given", "prefix", "suffix"),
    "Address": ("text", "line", "city", "district", "state", "postalCode", "country"),
}
_PRIMITIVE_STRINGS = frozenset(
    {"string", "code", "id", "uri", "url", "canonical", "oid", "uuid", "markdown", "date", "dateTime", "instant"}
)


class RowSink:
    """Mutable row lists for one resource during extraction."""

    __slots__ = ("dates", "numbers", "quantities", "references", "strings", "tokens", "uris")

    def __init__(self) -> None:
        self.tokens: list[tuple[str, int, str | None, str | None, str | None]] = []
        self.strings: list[tuple[str, int, str, str]] = []
        self.dates: list[tuple[str, int, int, int]] = []
        self.numbers: list[tuple[str, int, float, float]] = []
        self.quantities: list[tuple[str, int, str | None, str | None, str | None, float, float]] = []
        self.references: list[tuple[str, int, str | None, str | None, str | None, str | None]] = []
        self.uris: list[tuple[str, int, str]] = []


Converter = Callable[[RowSink, str, int, Any, str, str | None], bool]


@cache
def implicit_system(valueset: str | None) -> str | None:
    """The code system of a ``code`` element bound to a value set drawn from one system."""
    if valueset is None:
        return None
    codes = required_codes(valueset)
    if codes is None:
        return None
    systems = {system for system, _ in codes[1]}
    return systems.pop() if len(systems) == 1 else None


def _text(value: Any) -> str | None:
    return normalize(value) if isinstance(value, str) and value else None


def _shape(value: Any) -> str:
    """Best guess of the FHIR type of a value from the full engine."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "decimal"
    if not isinstance(value, dict):
        return "unknown"
    keys = value.keys()
    for name, marker in (("Reference", "reference"), ("CodeableConcept", "coding"), ("Coding", "code")):
        if marker in keys:
            return name
    if "start" in keys or "end" in keys:
        return "Period"
    if "family" in keys or "given" in keys:
        return "HumanName"
    if "value" in keys:
        return "Quantity" if isinstance(value.get("value"), int | float) else "Identifier"
    return "unknown"


def token(sink: RowSink, param: str, grp: int, value: Any, leaf: str, valueset: str | None) -> bool:
    rows = sink.tokens
    if leaf == "unknown":
        leaf = _shape(value)
    if leaf == "CodeableConcept":
        displays = set()
        for coding in value.get("coding", ()):
            display = _text(coding.get("display"))
            displays.add(display)
            rows.append((param, grp, coding.get("system"), coding.get("code"), display))
        text = _text(value.get("text"))
        if text is not None and text not in displays:  # a text equal to a display adds nothing
            rows.append((param, grp, None, None, text))
    elif leaf == "Coding":
        rows.append((param, grp, value.get("system"), value.get("code"), _text(value.get("display"))))
    elif leaf == "Identifier":
        ident = value.get("value")
        type_cc = value.get("type") or {}
        rows.append((param, grp, value.get("system"), ident, _text(type_cc.get("text"))))
        for coding in type_cc.get("coding", ()):
            code = f"{coding.get('code')}|{ident}"
            rows.append((param + OF_TYPE_SUFFIX, grp, coding.get("system"), code, None))
    elif leaf == "ContactPoint":
        rows.append((param, grp, value.get("system"), value.get("value"), None))
    elif leaf == "boolean" or isinstance(value, bool):
        rows.append((param, grp, None, "true" if value else "false", None))
    elif isinstance(value, str):
        rows.append((param, grp, implicit_system(valueset), value, None))
    else:
        return False
    return True


def string(sink: RowSink, param: str, grp: int, value: Any, leaf: str, valueset: str | None) -> bool:
    if isinstance(value, str):
        sink.strings.append((param, grp, normalize(value), value))
        return True
    if not isinstance(value, dict):
        return False
    parts = _STRING_PARTS.get(leaf if leaf != "unknown" else _shape(value))
    if parts is None:
        return False
    for key in parts:
        v = value.get(key)
        for s in v if isinstance(v, list) else (v,):
            if isinstance(s, str) and s:
                sink.strings.append((param, grp, normalize(s), s))
    return True


def date(sink: RowSink, param: str, grp: int, value: Any, leaf: str, valueset: str | None) -> bool:
    if isinstance(value, str):
        rng = date_range(value)
        if rng is None:
            return False
        sink.dates.append((param, grp, rng[0], rng[1]))
        return True
    if not isinstance(value, dict):
        return False
    if "start" in value or "end" in value:  # Period: an open side is unbounded (R4 datatypes §2.24.0.10)
        start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
        sink.dates.append((param, grp, start[0] if start else MIN_TIME, end[1] if end else MAX_TIME))
        return True
    events = value.get("event")  # Timing: each event date
    found = False
    for ev in events if isinstance(events, list) else ():
        found = date(sink, param, grp, ev, "dateTime", None) or found
    return found


def number(sink: RowSink, param: str, grp: int, value: Any, leaf: str, valueset: str | None) -> bool:
    v = number_value(value)
    if v is not None:
        sink.numbers.append((param, grp, v, v))
        return True
    if isinstance(value, dict) and ("low" in value or "high" in value):  # Range
        low = number_value((value.get("low") or {}).get("value"))
        high = number_value((value.get("high") or {}).get("value"))
        sink.numbers.append((param, grp, -INF if low is None else low, INF if high is None else high))
        return True
    return False


def quantity(sink: RowSink, param: str, grp: int, value: Any, leaf: str, valueset: str | None) -> bool:
    if not isinstance(value, dict):
        return False
    if leaf == "Range" or "low" in value or "high" in value:
        low, high = value.get("low") or {}, value.get("high") or {}
        unit = low if low else high
        lo, hi = number_value(low.get("value")), number_value(high.get("value"))
        sink.quantities.append((param, grp, unit.get("system"), unit.get("code"), unit.get("unit"),
                                -INF if lo is None else lo, INF if hi is None else hi))
        return True
    v = number_value(value.get("value"))
    if v is None:
        return False
    if leaf == "Money" or "currency" in value:
        currency = value.get("currency")
        sink.quantities.append((param, grp, "urn:iso:std:iso:4217", currency, currency, v, v))
    else:
        sink.quantities.append((param, grp, value.get("system"), value.get("code"), value.get("unit"), v, v))
    return True


def reference(sink: RowSink, param: str, grp: int, value: Any, leaf: str, valueset: str | None) -> bool:
    if isinstance(value, str):  # canonical / uri used as a reference
        parsed = parse_reference(value, canonical=leaf in ("canonical", "uri", "url", "string", "unknown"))
        if parsed is None:
            return False
        sink.references.append((param, grp, *parsed))
        return True
    if not isinstance(value, dict):
        return False
    found = False
    ref = value.get("reference")
    if isinstance(ref, str):
        parsed = parse_reference(ref, canonical=False)
        if parsed is not None:
            sink.references.append((param, grp, *parsed))
            found = True
    ident = value.get("identifier")
    if isinstance(ident, dict):
        sink.tokens.append((param + IDENTIFIER_SUFFIX, grp, ident.get("system"), ident.get("value"), None))
        found = True
    return found


def uri(sink: RowSink, param: str, grp: int, value: Any, leaf: str, valueset: str | None) -> bool:
    if isinstance(value, str):
        sink.uris.append((param, grp, value))
        return True
    return False


CONVERTERS: dict[str, Converter] = {
    "token": token, "string": string, "date": date, "number": number,
    "quantity": quantity, "reference": reference, "uri": uri,
}

# Leaf types each parameter type can index; a compiled path ending elsewhere is dropped (and, when a
# parameter keeps no path at all, it is reported unsupported for that resource type).
ACCEPTED: dict[str, frozenset[str]] = {
    "token": frozenset({"CodeableConcept", "Coding", "Identifier", "ContactPoint", "boolean"})
    | _PRIMITIVE_STRINGS,
    "string": frozenset({"HumanName", "Address"}) | _PRIMITIVE_STRINGS,
    "date": frozenset({"date", "dateTime", "instant", "Period", "Timing"}),
    "number": frozenset({"decimal", "integer", "positiveInt", "unsignedInt", "Range"}),
    "quantity": QUANTITY_TYPES | {"Money", "Range"},
    "reference": frozenset({"Reference", "canonical", "uri", "url"}),
    "uri": frozenset({"uri", "url", "canonical", "oid", "uuid", "string"}),
}
