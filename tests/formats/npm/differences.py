"""Every way kzfhir's FHIR XML conversion differs from the npm ``fhir`` package's, with the reason.

``compare.py`` runs both converters over every official R4 example (and ``extra/``) and records the
differences by category; ``tests/formats/test_xml_npm_agreement.py`` re-checks a committed sample of
npm's output. A difference no category explains is ``unexplained``, and there are none.
"""

from __future__ import annotations

import decimal
from typing import Any

from lxml import etree

from fhir_server.jsonio import Decimal

CATEGORIES = {
    "narrative-whitespace": "npm drops whitespace-only text nodes inside the XHTML narrative (it re-serialises "
                            "the div); kzfhir carries the narrative verbatim",
    "decimal-literal": "npm writes decimals as JavaScript numbers and loses trailing zeros (105.00 becomes 105); "
                       "R4 datatypes.html: the precision of a decimal is significant",
    "decimal-exponent": "npm's xmlToJson refuses a decimal with an exponent (1E-22), which the R4 decimal "
                        "regex allows",
    "extension-only-array": "a primitive array with extensions but no values (_event without event): npm's "
                            "jsonToXml drops the element, its xmlToJson adds an empty event: []",
    "valueless-array-item": "npm's xmlToJson throws (\"Cannot convert undefined or null to object\") on a "
                            "repeating primitive item with extensions but no value, even in XML it wrote itself",
    "unescaped-lt": "npm's jsonToXml leaves '<' unescaped in a narrative attribute value: its XML is not "
                    "well-formed",
    "unexplained": "a difference none of the above explains",
}

_XHTML = "{http://www.w3.org/1999/xhtml}"
Found = list[tuple[str, str]]  # (category, path)


def _c14n(element: etree._Element, *, strip: bool) -> bytes:
    copy = etree.fromstring(etree.tostring(element))
    if strip:
        for node in copy.iter():
            if node.text is not None and not node.text.strip():
                node.text = None
            if node.tail is not None and not node.tail.strip():
                node.tail = None
    copy.tail = None
    return bytes(etree.tostring(copy, method="c14n"))


def _narrative(a: etree._Element, b: etree._Element, path: str, out: Found) -> None:
    if _c14n(a, strip=False) != _c14n(b, strip=False):
        out.append(("narrative-whitespace" if _c14n(a, strip=True) == _c14n(b, strip=True) else "unexplained", path))


def _number(text: str) -> decimal.Decimal | None:
    try:
        return decimal.Decimal(text)
    except decimal.InvalidOperation:
        return None


def _extension_only(el: etree._Element) -> bool:
    children = [c for c in el if isinstance(c.tag, str)]
    return "value" not in el.attrib and bool(children) and all(
        c.tag.endswith("}extension") or _extension_only(c) for c in children)


def _elements(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def xml_differences(ours: etree._Element, npm: etree._Element, path: str = "") -> Found:
    """How npm's XML of a resource differs from kzfhir's (both parsed)."""
    out: Found = []
    _xml(ours, npm, path or ours.tag.split("}")[1], out)
    return out


def _xml(ours: etree._Element, npm: etree._Element, path: str, out: Found) -> None:
    if ours.tag.startswith(_XHTML):
        _narrative(ours, npm, path, out)
        return
    if dict(ours.attrib) != dict(npm.attrib):
        a, b = ours.get("value"), npm.get("value")
        same_number = a is not None and b is not None and _number(a) is not None and _number(a) == _number(b)
        rest_equal = {k: v for k, v in ours.attrib.items() if k != "value"} == {
            k: v for k, v in npm.attrib.items() if k != "value"}
        out.append(("decimal-literal" if same_number and rest_equal else "unexplained", path))
    theirs = _elements(npm)
    j = 0
    for child in _elements(ours):
        name = child.tag.split("}")[1]
        if j < len(theirs) and theirs[j].tag == child.tag:
            _xml(child, theirs[j], f"{path}.{name}", out)
            j += 1
        elif _extension_only(child):
            out.append(("extension-only-array", f"{path}.{name}"))
        else:
            out.append(("unexplained", f"{path}.{name}"))
            return
    if j < len(theirs):
        out.append(("unexplained", f"{path}.{theirs[j].tag.split('}')[1]}"))


def _json_extension_only(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_json_extension_only(v) for v in value)
    return isinstance(value, dict) and bool(value) and all(
        k.startswith("_") or _json_extension_only(v) for k, v in value.items())


def json_differences(original: Any, other: Any, path: str = "") -> Found:
    """How a JSON form of a resource (npm's, or kzfhir's reading of npm's XML) differs from the original."""
    out: Found = []
    _json(original, other, path or str(original.get("resourceType")), out)
    return out


def _json(a: Any, b: Any, path: str, out: Found) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a.keys() | b.keys():
            if key not in b:
                out.append(("extension-only-array" if _json_extension_only(a[key]) else "unexplained", f"{path}.{key}"))
            elif key not in a:
                empty = b[key] == [] and "_" + key in a
                out.append(("extension-only-array" if empty else "unexplained", f"{path}.{key}"))
            elif key == "div" and isinstance(a[key], str) and isinstance(b[key], str):
                if a[key] != b[key]:
                    _json_narrative(a[key], b[key], f"{path}.{key}", out)
            else:
                _json(a[key], b[key], f"{path}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _json(x, y, f"{path}[{i}]", out)
    elif _literal(a) != _literal(b):
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
        equal = numbers and decimal.Decimal(_literal(a)[1]) == decimal.Decimal(_literal(b)[1])
        out.append(("decimal-literal" if equal else "unexplained", path))


def _json_narrative(a: str, b: str, path: str, out: Found) -> None:
    try:
        theirs = etree.fromstring(b.encode())
    except etree.XMLSyntaxError as exc:
        out.append((error_category(str(exc)), path))
        return
    _narrative(etree.fromstring(a.encode()), theirs, path, out)


def _literal(value: Any) -> tuple[str, Any]:
    if isinstance(value, Decimal):
        return "number", value.text
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number", repr(value)
    return type(value).__name__, value


def error_category(message: str) -> str:
    """The category of an npm conversion that failed, or of kzfhir refusing npm's XML."""
    if "decimal number" in message:
        return "decimal-exponent"
    if "Unescaped '<'" in message:
        return "unescaped-lt"
    if "Cannot convert undefined or null to object" in message:
        return "valueless-array-item"
    return "unexplained"
