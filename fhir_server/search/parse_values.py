"""Parse one search parameter value by parameter type (FHIR R4 search §3.1.1.4–§3.1.1.5).

Unparseable values (a bad date, a quantity without a number) raise ``SearchError`` naming the
parameter, which becomes a 400 with an OperationOutcome (issue 3 item 7).
"""

from __future__ import annotations

from typing import cast

from fhir_server.search.dates import date_range
from fhir_server.search.errors import SearchError
from fhir_server.search.numbers import parse_decimal
from fhir_server.search.query import (
    PREFIXES,
    CompositeValue,
    DateValue,
    InValue,
    MissingValue,
    NumberValue,
    Prefix,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TextValue,
    TokenValue,
    UriValue,
    Value,
)
from fhir_server.search.references import parse_reference

_ESCAPES = {",": ",", "|": "|", "$": "$", "\\": "\\"}


def split_escaped(raw: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split on unescaped ``sep``; the parts keep their escapes (R4 search §3.1.1.5.7 "Escaping")."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw) and raw[i + 1] in _ESCAPES:
            current.append(raw[i : i + 2])  # escapes stay until the final ``unescape``
            i += 2
            continue
        if ch == sep and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(raw: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw) and raw[i + 1] in _ESCAPES:
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def _prefix(raw: str) -> tuple[Prefix, str]:
    if len(raw) > 2 and raw[:2] in PREFIXES and (raw[2].isdigit() or raw[2] in "-+."):
        return cast(Prefix, raw[:2]), raw[2:]
    return "eq", raw


def parse_date(param: str, raw: str) -> DateValue:
    prefix, text = _prefix(unescape(raw))
    rng = date_range(text)
    if rng is None:
        raise SearchError(param, f"'{raw}' is not a valid date, dateTime or instant")
    return DateValue(prefix, rng[0], rng[1])


def parse_number(param: str, raw: str) -> NumberValue:
    prefix, text = _prefix(unescape(raw))
    parsed = parse_decimal(text)
    if parsed is None:
        raise SearchError(param, f"'{raw}' is not a valid number")
    return NumberValue(prefix, *parsed)


def parse_quantity(param: str, raw: str) -> QuantityValue:
    parts = split_escaped(raw, "|", maxsplit=2)
    number = parse_number(param, parts[0])
    system = unescape(parts[1]) if len(parts) > 1 and parts[1] else None
    code = unescape(parts[2]) if len(parts) > 2 and parts[2] else None
    if len(parts) == 2:
        raise SearchError(param, f"'{raw}' is not a valid quantity (number|system|code)")
    return QuantityValue(number, system, code)


def parse_token(param: str, raw: str) -> TokenValue:
    parts = split_escaped(raw, "|", maxsplit=1)
    if len(parts) == 1:
        if not parts[0]:
            raise SearchError(param, "empty token value")
        return TokenValue(None, unescape(parts[0]), any_system=True)
    system, code = unescape(parts[0]) or None, unescape(parts[1]) or None
    if system is None and code is None:
        raise SearchError(param, "token value '|' has neither system nor code")
    return TokenValue(system, code, any_system=False)


def parse_reference_value(param: str, raw: str, type_modifier: str | None, base_url: str | None) -> ReferenceValue:
    text = unescape(raw)
    if not text:
        raise SearchError(param, "empty reference value")
    if base_url and text.startswith(base_url.rstrip("/") + "/"):
        text = text[len(base_url.rstrip("/")) + 1 :]  # a reference to this server is relative
    if "/" not in text and ":" not in text and "|" not in text:
        return ReferenceValue(type_modifier, text)  # a bare id (R4 §3.1.1.4.10)
    parsed = parse_reference(text, canonical="|" in text)
    if parsed is None:
        raise SearchError(param, f"'{raw}' is not a valid reference")
    ref_type, ref_id, version, url = parsed
    if type_modifier and ref_type and ref_type != type_modifier:
        raise SearchError(param, f"reference '{raw}' is not of type {type_modifier}")
    return ReferenceValue(ref_type, ref_id, version, url)


def parse_missing(param: str, raw: str) -> MissingValue:
    if raw not in ("true", "false"):
        raise SearchError(param, ":missing takes 'true' or 'false'")
    return MissingValue(raw == "true")


def parse_simple(param: str, ptype: str, raw: str) -> Value:
    """A value of one parameter type, without modifiers (also used for composite components)."""
    if ptype == "token":
        return parse_token(param, raw)
    if ptype == "date":
        return parse_date(param, raw)
    if ptype == "number":
        return parse_number(param, raw)
    if ptype == "quantity":
        return parse_quantity(param, raw)
    if ptype == "reference":
        return parse_reference_value(param, raw, None, None)
    if ptype == "uri":
        return UriValue(unescape(raw))
    if ptype == "string":
        return StringValue(unescape(raw))
    raise SearchError(param, f"parameters of type {ptype} are not supported", code="not-supported")


def parse_composite(param: str, raw: str, component_types: tuple[str, ...]) -> CompositeValue:
    parts = split_escaped(raw, "$")
    if len(parts) != len(component_types):
        raise SearchError(param, f"composite value needs {len(component_types)} parts separated by '$'")
    return CompositeValue(tuple(parse_simple(param, t, p) for t, p in zip(component_types, parts, strict=True)))


def parse_modified(param: str, ptype: str, modifier: str | None, raw: str) -> Value:
    """One OR-ed value of ``param`` under ``modifier`` (already validated for the type)."""
    if modifier == "missing":
        return parse_missing(param, raw)
    if modifier == "text" and ptype == "token":
        return TextValue(unescape(raw))
    if modifier in ("in", "not-in"):
        return InValue(unescape(raw))
    if ptype == "reference" and modifier in ("above", "below"):
        return UriValue(unescape(raw))
    if ptype == "token" and modifier == "of-type":
        parts = split_escaped(raw, "|")
        if len(parts) != 3 or not all(parts):
            raise SearchError(param, ":of-type takes system|code|value")
        return TokenValue(unescape(parts[0]), f"{unescape(parts[1])}|{unescape(parts[2])}", any_system=False)
    return parse_simple(param, ptype, raw)
