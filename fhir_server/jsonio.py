"""JSON in and out of the server.

Decimals keep their exact text (FHIR R4 datatypes.html: decimal precision is significant, ``1.50``
is not ``1.5``): they are parsed into :class:`Decimal` floats that remember their literal and are
written back byte for byte. Everything else goes through orjson.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

BOM = b"\xef\xbb\xbf"


class Decimal(float):
    """A JSON number with a fraction or exponent, carrying its original literal."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> Decimal:
        obj = float.__new__(cls, text)
        obj.text = text
        return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


def loads(data: bytes | str) -> Any:
    """Parse JSON bytes (a leading UTF-8 BOM is tolerated). Raises ValueError on bad input."""
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        if raw.startswith(BOM):
            raw = raw[3:]
        text = raw.decode("utf-8")  # UnicodeDecodeError is a ValueError
    else:
        text = data.lstrip("\ufeff")
    return _decoder.decode(text)


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return orjson.Fragment(obj.text)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(obj: Any, *, pretty: bool = False) -> bytes:
    option = orjson.OPT_PASSTHROUGH_SUBCLASS | (orjson.OPT_INDENT_2 if pretty else 0)
    return orjson.dumps(obj, default=_default, option=option)


def fragment(data: bytes) -> orjson.Fragment:
    """Embed already serialised JSON bytes in a document without parsing them again."""
    return orjson.Fragment(data)


def reload(data: bytes) -> Any:
    """Parse bytes the server wrote itself (trusted, no BOM) keeping decimals exact."""
    return _decoder.decode(data.decode("utf-8"))
