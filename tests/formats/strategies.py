"""Hypothesis strategies for random FHIR JSON resources, built from the compiled R4 definitions.

Not valid FHIR (cardinality, bindings and invariants are ignored) but of exactly the shapes the JSON
format allows: any element of any type, arrays, primitives with ``_name`` siblings aligned by
``null``, extensions, wrapped resources, narratives written in several equivalent XHTML styles, and
decimals carried as exact literals. That is what a format converter has to get right.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from fhir_server.formats.xml_schema import Kind, XmlField, XmlNode, get_schema
from fhir_server.jsonio import Decimal

SCHEMA = get_schema()
RESOURCE_TYPES = sorted(SCHEMA.resource_types)

# XML 1.0 characters (no C0 controls but tab/LF/CR, no surrogates, no U+FFFE/U+FFFF).
_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff",
                       min_codepoint=0x09).filter(lambda c: c in "\t\n\r" or ord(c) >= 0x20)
TEXT = st.text(_CHARS, min_size=1, max_size=12)

_DECIMALS = st.from_regex(r"-?(0|[1-9][0-9]{0,8})(\.[0-9]{1,6})?([eE][+-]?[0-9]{1,2})?", fullmatch=True)


def _decimal(text: str) -> Any:
    """What jsonio.loads gives for this literal: an int without fraction or exponent, else a Decimal."""
    return int(text) if text.lstrip("-").isdigit() else Decimal(text)


def primitive_value(type_code: str) -> st.SearchStrategy[Any]:
    if type_code == "boolean":
        return st.booleans()
    if type_code in ("integer", "unsignedInt", "positiveInt"):
        return st.integers(-(2**31), 2**31 - 1)
    if type_code == "decimal":
        return _DECIMALS.map(_decimal)
    return TEXT


_TAGS = st.sampled_from(["p", "b", "i", "span", "td", "br", "a"])


@st.composite
def xhtml_div(draw: st.DrawFn) -> str:
    """A narrative in the styles the official examples mix: ``&quot;`` or ``"``, ``<x/>`` or ``<x></x>``,
    CR or LF, attributes with ``>`` and entities."""
    parts = ['<div xmlns="http://www.w3.org/1999/xhtml">']
    for _ in range(draw(st.integers(0, 4))):
        tag = draw(_TAGS)
        attr = draw(st.sampled_from(["", ' class="x"', ' title="a &gt; b"', " title='q\"'"]))
        inner = draw(st.sampled_from(["", "text", "a &quot;q&quot; b", 'a "q" b', "x &amp; y", "l1\r\nl2", "é\u00a0"]))
        empty = draw(st.sampled_from([f"<{tag}{attr}/>", f"<{tag}{attr}></{tag}>", f"<{tag}{attr} />"]))
        parts.append(empty if not inner else f"<{tag}{attr}>{inner}</{tag}>")
        parts.append(draw(st.sampled_from(["", "\n  ", "\t"])))
    parts.append("</div>")
    return "".join(parts)


def _primitive_meta(draw: st.DrawFn, depth: int) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if draw(st.booleans()):
        meta["id"] = draw(TEXT)
    if depth > 0 and (not meta or draw(st.booleans())):
        meta["extension"] = draw(st.lists(extension(depth - 1), min_size=1, max_size=2))
    return meta or {"id": draw(TEXT)}


def _primitive_item(draw: st.DrawFn, f: XmlField, depth: int) -> tuple[Any, Any]:
    shape = draw(st.sampled_from(["value", "value", "both", "meta"]))
    value = None if shape == "meta" else draw(primitive_value(f.type_code))
    meta = _primitive_meta(draw, depth) if shape != "value" else None
    return value, meta


def _put_primitive(draw: st.DrawFn, out: dict[str, Any], f: XmlField, depth: int) -> None:
    if not f.is_array:
        value, meta = _primitive_item(draw, f, depth)
        items = [(value, meta)]
    else:
        items = [_primitive_item(draw, f, depth) for _ in range(draw(st.integers(1, 3)))]
    values = [v for v, _ in items]
    metas = [m for _, m in items]
    if any(v is not None for v in values):
        out[f.name] = values if f.is_array else values[0]
    if any(m is not None for m in metas):
        out["_" + f.name] = metas if f.is_array else metas[0]


def _one(draw: st.DrawFn, f: XmlField, depth: int) -> Any:
    if f.kind is Kind.XHTML:
        return draw(xhtml_div())
    if f.kind is Kind.RESOURCE:
        return draw(resource(depth - 1))
    if f.kind is Kind.ATTRIBUTE:
        return draw(TEXT)
    return draw(element(SCHEMA.nodes[str(f.node)], depth - 1))


def _fields(draw: st.DrawFn, node: XmlNode, depth: int) -> list[XmlField]:
    candidates = [f for f in node.fields.values()
                  if depth > 0 or f.kind in (Kind.PRIMITIVE, Kind.ATTRIBUTE, Kind.XHTML)]
    if not candidates:
        return []
    return draw(st.lists(st.sampled_from(candidates), max_size=4, unique_by=lambda f: f.name))


def _fill(draw: st.DrawFn, node: XmlNode, depth: int, out: dict[str, Any]) -> dict[str, Any]:
    for f in _fields(draw, node, depth):
        if f.kind is Kind.PRIMITIVE:
            _put_primitive(draw, out, f, depth)
        elif f.is_array:
            out[f.name] = [_one(draw, f, depth) for _ in range(draw(st.integers(1, 2)))]
        else:
            out[f.name] = _one(draw, f, depth)
    return out


@st.composite
def element(draw: st.DrawFn, node: XmlNode, depth: int) -> dict[str, Any]:
    return _fill(draw, node, max(depth, 0), {})


@st.composite
def extension(draw: st.DrawFn, depth: int) -> dict[str, Any]:
    ext = _fill(draw, SCHEMA.nodes["Extension"], depth, {})
    ext["url"] = draw(TEXT)
    return ext


@st.composite
def resource(draw: st.DrawFn, depth: int = 3, types: list[str] | None = None) -> dict[str, Any]:
    rtype = draw(st.sampled_from(types or RESOURCE_TYPES))
    return _fill(draw, SCHEMA.nodes[rtype], max(depth, 0), {"resourceType": rtype})
