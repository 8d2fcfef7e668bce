"""Primitive values between their JSON form and the text of an XML ``value`` attribute.

FHIR R4 json.html §2.6.2: ``boolean`` is a JSON boolean, ``integer``/``positiveInt``/``unsignedInt``
and ``decimal`` are JSON numbers, every other primitive is a JSON string. XML carries them all as
text, so XML → JSON needs the type (from the definitions) to pick the JSON form. Decimals keep their
exact literal both ways (datatypes.html "decimal": precision is significant): the server's JSON
carries them as :class:`fhir_server.jsonio.Decimal`, which remembers its text.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from fhir_server.definitions import get_definitions
from fhir_server.errors import FhirError
from fhir_server.jsonio import Decimal

INTEGER_TYPES = frozenset({"integer", "positiveInt", "unsignedInt"})
_INTEGER_LITERAL = re.compile(r"-?(0|[1-9][0-9]*)")


@cache
def _decimal_regex() -> re.Pattern[str]:
    """The lexical form of a decimal from its R4 definition (the regex extension on ``decimal.value``)."""
    return re.compile(get_definitions().regexes["decimal"])


def to_text(value: Any, type_code: str, path: str) -> str:
    """The XML attribute text of one JSON primitive value of ``type_code``."""
    if type_code == "boolean":
        if isinstance(value, bool):
            return "true" if value else "false"
    elif type_code == "decimal" or type_code in INTEGER_TYPES:
        if isinstance(value, Decimal):
            return value.text
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, float):
            return repr(value)  # a float the server computed (e.g. a search score), never parsed input
    elif isinstance(value, str):
        return value
    raise FhirError("invalid", f"{path} must be a JSON {_json_kind(type_code)} for the {type_code} type",
                    code="value", expression=path)


def from_text(text: str, type_code: str, path: str) -> Any:
    """The JSON value of one XML ``value`` attribute of ``type_code``."""
    if type_code == "boolean":
        if text in ("true", "false"):
            return text == "true"
    elif type_code in INTEGER_TYPES:
        # Any integer JSON can carry; the ranges (positiveInt >= 1 ...) are the validator's 422.
        if _INTEGER_LITERAL.fullmatch(text):
            return int(text)
    elif type_code == "decimal":
        if _decimal_regex().fullmatch(text):
            # The same value the JSON parser (jsonio.loads) gives for this literal: an int without a
            # fraction or exponent, else a Decimal that keeps the text.
            return int(text) if _INTEGER_LITERAL.fullmatch(text) else Decimal(text)
    else:
        return text
    raise FhirError("invalid", f"{path}: {text!r} is not a valid {type_code}", code="value", expression=path)


def _json_kind(type_code: str) -> str:
    if type_code == "boolean":
        return "boolean"
    if type_code == "decimal" or type_code in INTEGER_TYPES:
        return "number"
    return "string"
