"""Checks of FHIR primitive values in their JSON form (FHIR R4 datatypes.html §2.24.0.1, json.html §2.6.2.1).

The lexical rules are the regexes the R4 type definitions carry; Python's ``re`` runs them with
``re.ASCII`` so that ``\\s`` means what it means in the XML Schema/Java flavour the spec was written for.
Calendar validity ("Dates SHALL be valid dates") is checked on top of the regexes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MAX_STRING_BYTES = 1024 * 1024  # string.maxLength in the R4 definitions

_B64 = re.compile(r"[0-9a-zA-Z+/=\s]*", re.ASCII)

Check = Callable[[object], str | None]


def _valid_calendar_date(text: str) -> bool:
    if len(text) < 10:
        return True  # year or year-month precision
    try:
        date(int(text[0:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return False
    return True


def _string_check(type_code: str, regex: str | None) -> Check:
    pattern = re.compile(regex, re.ASCII) if regex else None
    dated = type_code in ("date", "dateTime", "instant")

    def check(value: object) -> str | None:
        if not isinstance(value, str):
            return f"a {type_code} must be a JSON string, not {_json_kind(value)}"
        if value == "":
            return f"a {type_code} must not be empty (FHIR json.html: no empty values)"
        if len(value) > MAX_STRING_BYTES // 4 and len(value.encode()) > MAX_STRING_BYTES:
            return f"a {type_code} must not exceed 1 MB"
        if pattern is not None and pattern.fullmatch(value) is None:
            return f"{value[:80]!r} is not a valid {type_code}"
        if dated and not _valid_calendar_date(value):
            return f"{value!r} is not a valid calendar date"
        return None

    return check


def _base64_check(value: object) -> str | None:
    if not isinstance(value, str):
        return f"a base64Binary must be a JSON string, not {_json_kind(value)}"
    if _B64.fullmatch(value) is None:
        return "not valid base64"
    stripped = "".join(value.split())
    if len(stripped) % 4 != 0:
        return "base64 length must be a multiple of 4"
    return None


def _int_check(low: int, high: int, type_code: str) -> Check:
    def check(value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"a {type_code} must be a JSON integer, not {_json_kind(value)}"
        if not low <= value <= high:
            return f"{value} is out of range for {type_code} ({low}..{high})"
        return None

    return check


def _decimal_check(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"a decimal must be a JSON number, not {_json_kind(value)}"
    return None


def _boolean_check(value: object) -> str | None:
    if not isinstance(value, bool):
        return f"a boolean must be JSON true or false, not {_json_kind(value)}"
    return None


def _xhtml_check(value: object) -> str | None:
    if not isinstance(value, str):
        return f"xhtml must be a JSON string, not {_json_kind(value)}"
    if not value.lstrip().startswith("<div"):
        return "narrative xhtml must be a <div> element (FHIR narrative.html §2.4.0.1)"
    return None


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def build_checks(regexes: dict[str, str]) -> dict[str, Check]:
    """One check per primitive type code, built from the regexes of the R4 type definitions."""
    checks: dict[str, Check] = {}
    for type_code in ("canonical", "code", "date", "dateTime", "id", "instant", "markdown", "oid", "string",
                      "time", "uri", "url", "uuid"):
        checks[type_code] = _string_check(type_code, regexes.get(type_code))
    checks["base64Binary"] = _base64_check
    checks["boolean"] = _boolean_check
    checks["decimal"] = _decimal_check
    checks["integer"] = _int_check(INT32_MIN, INT32_MAX, "integer")
    checks["positiveInt"] = _int_check(1, INT32_MAX, "positiveInt")
    checks["unsignedInt"] = _int_check(0, INT32_MAX, "unsignedInt")
    checks["xhtml"] = _xhtml_check
    return checks


json_kind = _json_kind
