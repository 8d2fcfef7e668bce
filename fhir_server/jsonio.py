"""JSON in and out of the server.

Decimals keep their exact text (FHIR R4 datatypes.html: decimal precision is significant, ``1.50``
is not ``1.5``): they are parsed into :class:`Decimal` floats that remember their literal and are
written back byte for byte. Everything else goes through orjson.

Request bodies are held to what every later stage (validation, indexing, storage, orjson and every
client parser) can carry, and anything else is refused here with the place it was found
(docs/limits.md). RFC 8259 leaves these to the implementation; FHIR R4 json.html requires valid
Unicode and well-formed property names:

- a member with an empty name, or a name given twice in one object (RFC 8259 §4 "names SHOULD be
  unique": parsers disagree on which duplicate wins, which would let a signed document say one thing
  to the signature check and another to the store);
- a lone UTF-16 surrogate escape such as ``"\\ud800"`` (not a Unicode scalar value: no UTF-8 encoding
  exists, so it can be neither stored nor echoed back);
- a number whose magnitude is beyond an IEEE 754 double (RFC 8259 §6 interoperability: ``1e400``);
  an integer beyond 64 bits that is still a finite double is kept, exactly, as :class:`BigInt`;
- nesting deeper than ``max_json_depth`` (orjson cannot write more than 254 levels back out).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

BOM = b"\xef\xbb\xbf"
MAX_DEPTH = 128  # settings.max_json_depth (docs/configuration.md), set once at start-up by configure()
_INT64_LOW, _UINT64_HIGH = -(2**63), 2**64  # what orjson reads and writes as an integer
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # only escapes can produce a surrogate
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # a decoded pair is one code point: any left is lone


class Decimal(float):
    """A JSON number with a fraction or exponent, carrying its original literal."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> Decimal:
        obj = float.__new__(cls, text)
        obj.text = text
        return obj

    def __reduce__(self) -> tuple[type[Decimal], tuple[str]]:
        # rebuilt from its literal: the default (a float, then the slots as state) pickles three times the
        # bytes and unpickles a third slower, which the $import workers' results pay per decimal
        return Decimal, (self.text,)


class BigInt(int):
    """An integer literal beyond 64 bits (a valid FHIR decimal); written back as its exact digits."""


class JsonInputError(ValueError):
    """Input the server refuses, with a FHIRPath-like ``expression`` of where it is (None: unknown)."""

    def __init__(self, message: str, expression: str | None = None) -> None:
        super().__init__(message)
        self.expression = expression


class _Problem(Exception):
    """Raised by the fast hooks; the slow path then finds where the problem is."""


def configure(max_depth: int) -> None:
    """The nesting limit from the settings (``max_json_depth``), set once at start-up."""
    global MAX_DEPTH
    MAX_DEPTH = max_depth


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs) or "" in obj:
        raise _Problem
    return obj


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Problem
    return value


def _integer(text: str) -> int:
    if len(text) < 19:
        return int(text)
    _finite(text)  # at most 309 digits from here on: int() is cheap and within Python's digit limit
    value = int(text)
    return value if _INT64_LOW <= value < _UINT64_HIGH else BigInt(value)


def _decimal(text: str) -> Decimal:
    value = Decimal(text)
    if not math.isfinite(value):
        raise _Problem
    return value


_decoder = json.JSONDecoder(parse_float=_decimal, parse_int=_integer, parse_constant=_reject_constant,
                            object_pairs_hook=_members)


def loads(data: bytes | str) -> Any:
    """Parse JSON (a leading UTF-8 BOM is tolerated). Raises :class:`JsonInputError` (a ValueError)
    for input the server refuses and ValueError for input that is not JSON."""
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        if raw.startswith(BOM):
            raw = raw[3:]
        text = raw.decode("utf-8")  # UnicodeDecodeError is a ValueError
    else:
        text = data.lstrip("\ufeff")
        raw = b"\\ud800" if _LONE_SURROGATE.search(text) else text.encode("utf-8", "surrogatepass")
    try:
        doc = _decoder.decode(text)
    except _Problem:
        raise _locate(text) from None
    except RecursionError:
        raise JsonInputError(f"the JSON is nested deeper than {MAX_DEPTH} levels") from None
    if (type(doc) in (dict, list) and _too_deep(doc, MAX_DEPTH)) or _SURROGATE_ESCAPE.search(raw) is not None:
        problem = _first_problem(doc, _root(doc), 0, strings=True)
        if problem is not None:
            raise JsonInputError(*problem)
    return doc


def _too_deep(node: Any, budget: int) -> bool:
    """True when containers nest deeper than ``budget`` (one pass, stops once the budget is spent;
    written for speed: it runs on every body)."""
    if budget == 0:
        return True
    for value in node.values() if type(node) is dict else node:
        kind = type(value)
        if (kind is dict or kind is list) and _too_deep(value, budget - 1):
            return True
    return False


# -- the slow path: only for refused input, to say where the problem is --

class _Members(list[tuple[str, Any]]):
    """An object as its list of members, duplicates and empty names included."""


class _Number(str):
    """A number literal, unconverted."""


_lenient = json.JSONDecoder(parse_float=_Number, parse_int=_Number, parse_constant=_reject_constant,
                            object_pairs_hook=_Members)


def _root(doc: Any) -> str:
    if isinstance(doc, dict | _Members):
        items = doc.items() if isinstance(doc, dict) else doc
        name = next((v for k, v in items if k == "resourceType"), None)
        if isinstance(name, str) and name.isidentifier():
            return name
    return "$this"


def _locate(text: str) -> JsonInputError:
    try:
        doc = _lenient.decode(text)
    except RecursionError:
        return JsonInputError(f"the JSON is nested deeper than {MAX_DEPTH} levels")
    problem = _first_problem(doc, _root(doc), 0, strings=True)
    return JsonInputError(*(problem or ("the JSON cannot be read",)))


def _first_problem(node: Any, path: str, depth: int, *, strings: bool) -> tuple[str, str] | None:
    """(message, expression) of the first refused thing in document order, or None."""
    if isinstance(node, dict | _Members | list) and depth >= MAX_DEPTH:
        return f"the JSON is nested deeper than {MAX_DEPTH} levels", path
    if isinstance(node, dict | _Members):
        return _member_problem(list(node.items()) if isinstance(node, dict) else node, path, depth, strings)
    if isinstance(node, list):
        for i, item in enumerate(node):
            found = _first_problem(item, f"{path}[{i}]", depth + 1, strings=strings)
            if found is not None:
                return found
        return None
    if isinstance(node, _Number) and not math.isfinite(float(node)):
        return f"the number {node[:40]} is beyond the range of a decimal (RFC 8259 §6)", path
    if isinstance(node, str) and strings and _LONE_SURROGATE.search(node):
        return "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff escape), which is not Unicode text", path
    return None


def _member_problem(members: list[tuple[str, Any]], path: str, depth: int, strings: bool) -> tuple[str, str] | None:
    seen: set[str] = set()
    for name, value in members:
        if name == "":
            return "an object has a member with an empty name", path
        if _LONE_SURROGATE.search(name):
            return "a member name holds a lone UTF-16 surrogate, which is not Unicode text", path
        if name in seen:
            return f"the member '{name}' appears twice in one object", f"{path}.{name}"
        seen.add(name)
        found = _first_problem(value, f"{path}.{name}", depth + 1, strings=strings)
        if found is not None:
            return found
    return None


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return orjson.Fragment(obj.text)
    if isinstance(obj, BigInt):
        return orjson.Fragment(str(int(obj)))
    if isinstance(obj, str):  # a text with a catalogue key (i18n.Message) is written as its English text
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(obj: Any, *, pretty: bool = False) -> bytes:
    option = orjson.OPT_PASSTHROUGH_SUBCLASS | (orjson.OPT_INDENT_2 if pretty else 0)
    return orjson.dumps(obj, default=_default, option=option)


def fragment(data: bytes) -> orjson.Fragment:
    """Embed already serialised JSON bytes in a document without parsing them again."""
    return orjson.Fragment(data)


def reload(data: bytes) -> Any:
    """Parse bytes the server wrote itself (trusted, no BOM) keeping decimals exact."""
    return _trusted.decode(data.decode("utf-8"))


_trusted = json.JSONDecoder(parse_float=Decimal, parse_int=_integer, parse_constant=_reject_constant)
