"""FHIR R4 canonical JSON (R4 §2.6.2.6 "Canonical JSON"): the bytes every JSON-carried signature covers.

The R4 rules are: no whitespace other than inside property values and narrative xhtml, properties ordered
alphabetically. R4 does not define number or string escaping, so those follow RFC 8785 (JCS, which R5 adopts):
keys sorted by UTF-16 code units, strings escaped minimally, numbers printed as ECMAScript prints a double.
Consequence documented in docs/signing.md: a decimal's lexical precision (``1.50`` vs ``1.5``) is not
signed, only its value. String values are kept verbatim (no whitespace folding) so any change to a value
changes the canonical bytes.

The method URIs select what is signed (R4 §2.6.2.6): ``json`` everything; ``#data`` without ``text``;
``#static`` without ``text`` and ``meta``; ``#narrative`` only ``id`` and ``text``; ``#document`` everything
but the root Bundle's ``id`` and ``meta``. A Bundle's own ``signature`` is always removed: a signature cannot
cover itself.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

CANONICAL_JSON = "http://hl7.org/fhir/canonicalization/json"
DATA = CANONICAL_JSON + "#data"
STATIC = CANONICAL_JSON + "#static"
NARRATIVE = CANONICAL_JSON + "#narrative"
DOCUMENT = CANONICAL_JSON + "#document"
METHODS = (CANONICAL_JSON, DATA, STATIC, NARRATIVE, DOCUMENT)
# R4 §2.5 defines the same fragments for XML; they select the same parts of the resource.
CANONICAL_XML = "http://hl7.org/fhir/canonicalization/xml"
XML_DOCUMENT = CANONICAL_XML + "#document"


class CanonicalizationError(ValueError):
    """The value cannot be canonicalised (NaN, infinity, unpaired surrogate, unknown method...)."""


def prune(resource: dict[str, Any], method: str = CANONICAL_JSON) -> dict[str, Any]:
    """The part of ``resource`` the method signs (a shallow copy; the input is not modified)."""
    if method.startswith(CANONICAL_XML):
        method = CANONICAL_JSON + method[len(CANONICAL_XML) :]
    if method not in METHODS:
        raise CanonicalizationError(f"unknown canonicalization method {method}")
    out = dict(resource)
    if out.get("resourceType") == "Bundle":
        out.pop("signature", None)
    if method == NARRATIVE:
        return {k: v for k, v in out.items() if k in ("resourceType", "id", "text")}
    drop = {
        DATA: ("text",),
        STATIC: ("text", "meta"),
        DOCUMENT: ("id", "meta") if out.get("resourceType") == "Bundle" else (),
    }.get(method, ())
    for key in drop:
        out.pop(key, None)
    return out


def canonicalize(resource: dict[str, Any], method: str = CANONICAL_JSON) -> bytes:
    """Canonical UTF-8 bytes of ``resource`` under ``method``."""
    return serialize(prune(resource, method))


def serialize(value: Any) -> bytes:
    """RFC 8785 serialisation of a JSON value (dict/list/str/int/float/bool/None)."""
    parts: list[str] = []
    _write(value, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalizationError(f"string holds an unpaired surrogate: {exc}") from exc


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(sorted(value, key=_utf16_key)):
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif value is None or isinstance(value, bool):
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float | Decimal):
        out.append(format_number(float(value)))
    else:
        raise CanonicalizationError(f"{type(value).__name__} is not a JSON value")


def _utf16_key(key: str) -> bytes:
    if not isinstance(key, str):
        raise CanonicalizationError(f"object key {key!r} is not a string")
    return key.encode("utf-16-be", "surrogatepass")


def format_number(x: float) -> str:
    """ECMAScript Number::toString (ECMA-262 §7.1.12.1), as RFC 8785 §3.2.2.3 requires."""
    if math.isnan(x) or math.isinf(x):
        raise CanonicalizationError("NaN and Infinity are not JSON numbers")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr gives the shortest digits that round-trip, the same digits ECMAScript chooses.
    _, digit_tuple, exponent = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent = int(exponent) + (len(digit_tuple) - len(digits))
    k = len(digits)
    n = exponent + k
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        body = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body


def method_from_target_format(target_format: str | None, resource_type: str | None, xml: bool = False) -> str:
    """Canonicalization method named in ``Signature.targetFormat`` (``...;canonicalization=URI``).

    Without one, a Bundle is taken as a document (``#document``) and anything else as the plain method.
    """
    for param in (target_format or "").split(";")[1:]:
        name, _, uri = param.strip().partition("=")
        if name.strip() == "canonicalization":
            return uri.strip().strip('"')
    base = CANONICAL_XML if xml else CANONICAL_JSON
    return base + "#document" if resource_type == "Bundle" else base


def target_format(method: str, media_type: str = "application/fhir+json") -> str:
    return f"{media_type};canonicalization={method}"
