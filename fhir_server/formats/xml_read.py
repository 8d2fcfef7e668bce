"""FHIR XML bytes → the same JSON dicts the server gets from a JSON body (FHIR R4 xml.html, json.html).

The root element names the ``resourceType``; attributes and child elements are looked up in the
compiled definitions (``xml_schema``), so an unknown element, a FHIR element outside the FHIR
namespace or a second occurrence of a single-valued element is a 400 with the element's path.
Primitive ``value`` attributes become JSON booleans, numbers (decimals as exact ``Decimal``) or strings;
their ``id``/``extension`` go to the ``_name`` sibling, aligned with ``null`` in arrays. Comments and
processing instructions outside the narrative carry no data (xml.html) and are dropped. Element order
is not enforced on input: the content, not the order, is what the structure validator then checks.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from fhir_server.errors import FhirError
from fhir_server.formats import xml_safe
from fhir_server.formats.xhtml import XHTML_NS, div_spans, div_string
from fhir_server.formats.xml_schema import Kind, XmlField, XmlNode, XmlSchema, get_schema
from fhir_server.formats.xml_values import from_text
from fhir_server.formats.xml_write import FHIR_NS

_FHIR = f"{{{FHIR_NS}}}"
_XHTML = f"{{{XHTML_NS}}}"
_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"  # xsi:schemaLocation hints carry no data


def _invalid(path: str, message: str, code: str = "structure") -> FhirError:
    return FhirError("invalid", f"{path}: {message}", code=code, expression=path)


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith(_FHIR):
        return FHIR_NS, tag[len(_FHIR):]
    if tag.startswith(_XHTML):
        return XHTML_NS, tag[len(_XHTML):]
    ns, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return ns, local


def _text_free(text: str | None, path: str) -> None:
    if text is not None and not text.isspace():
        raise _invalid(path, f"text {text.strip()[:40]!r} is not allowed here; FHIR values are in value attributes")


class _Reader:
    def __init__(self, schema: XmlSchema, source: bytes, encoding: str | None) -> None:
        self.schema = schema
        self.source = source
        self.encoding = (encoding or "UTF-8").upper().replace("_", "-")
        self.spans: list[tuple[int, int]] | None = None
        self.text = ""
        self.divs = 0

    def resource(self, el: etree._Element, path: str) -> dict[str, Any]:
        ns, rtype = _local(el.tag) if isinstance(el.tag, str) else ("", "")
        if ns != FHIR_NS or rtype not in self.schema.resource_types:
            raise _invalid(path or rtype or "XML", f"<{rtype}> in namespace {ns!r} is not a FHIR resource")
        out: dict[str, Any] = {"resourceType": rtype}
        return self.content(el, self.schema.nodes[rtype], path or rtype, out)

    def content(self, el: etree._Element, node: XmlNode, path: str, out: dict[str, Any]) -> dict[str, Any]:
        for key, value in el.attrib.items():
            f = node.fields.get(key)
            if f is None or f.kind is not Kind.ATTRIBUTE:
                if key.startswith(_XSI):
                    continue
                raise _invalid(f"{path}.{key}", f"{node.key} has no attribute {key!r}")
            out[key] = value
        _text_free(el.text, path)
        seen: dict[str, XmlField] = {}
        values: dict[str, list[Any]] = {}
        metas: dict[str, list[Any]] = {}
        for child in el:
            _text_free(child.tail, path)
            if not isinstance(child.tag, str):
                continue  # a comment or processing instruction
            ns, name = _local(child.tag)
            f = node.fields.get(name)
            if f is None or f.kind is Kind.ATTRIBUTE or ns != (XHTML_NS if f.kind is Kind.XHTML else FHIR_NS):
                raise _invalid(f"{path}.{name}", f"{node.key} has no element <{name}> in namespace {ns!r}")
            got = values.setdefault(name, [])
            if got and not f.is_array:
                raise _invalid(f"{path}.{name}", f"{name} occurs more than once but takes one value")
            seen[name] = f
            item_path = f"{path}.{name}[{len(got)}]" if f.is_array else f"{path}.{name}"
            value, meta = self.item(child, f, item_path)
            got.append(value)
            metas.setdefault(name, []).append(meta)
        for name, f in seen.items():
            _put(out, f, values[name], metas[name])
        return out

    def item(self, el: etree._Element, f: XmlField, path: str) -> tuple[Any, Any]:
        if f.kind is Kind.PRIMITIVE:
            attrib = el.attrib
            if len(el) == 0 and len(attrib) == 1 and "value" in attrib:  # the common case: a bare value
                _text_free(el.text, path)
                return from_text(attrib["value"], f.type_code, path), None
            meta = self.content(el, self.schema.nodes[str(f.node)], path, {})
            text = meta.pop("value", None)
            if text is None and not meta:
                raise _invalid(path, "an element needs a value attribute or extensions (FHIR R4 xml.html)")
            return (None if text is None else from_text(text, f.type_code, path)), (meta or None)
        if f.kind is Kind.XHTML:
            return div_string(el, self.div_source()), None
        if f.kind is Kind.RESOURCE:
            return self.wrapped(el, path), None
        return self.content(el, self.schema.nodes[str(f.node)], path, {}), None

    def wrapped(self, el: etree._Element, path: str) -> dict[str, Any]:
        if el.attrib:
            raise _invalid(path, "a resource wrapper element takes no attributes")
        _text_free(el.text, path)
        inner = [child for child in el if isinstance(child.tag, str)]
        for child in el:
            _text_free(child.tail, path)
        if len(inner) != 1:
            raise _invalid(path, f"must hold exactly one resource element, not {len(inner)}")
        return self.resource(inner[0], path)

    def div_source(self) -> str | None:
        """The source text of the next narrative div in document order (the reader visits them in order)."""
        if self.spans is None:
            self.spans = []
            if self.encoding in ("UTF-8", "UTF8"):
                try:
                    self.text = self.source.decode("utf-8").removeprefix("\ufeff")
                    self.spans = div_spans(self.text)
                except UnicodeDecodeError:
                    pass
        index, self.divs = self.divs, self.divs + 1
        if index >= len(self.spans):
            return None
        start, end = self.spans[index]
        return self.text[start:end]


def _put(out: dict[str, Any], f: XmlField, values: list[Any], metas: list[Any]) -> None:
    if f.kind is not Kind.PRIMITIVE:
        out[f.name] = values if f.is_array else values[0]
    elif not f.is_array:
        if values[0] is not None:
            out[f.name] = values[0]
        if metas[0] is not None:
            out["_" + f.name] = metas[0]
    else:  # json.html §2.6.2.2: both arrays keep every position, null where that side is absent
        if any(v is not None for v in values):
            out[f.name] = values
        if any(m is not None for m in metas):
            out["_" + f.name] = metas


def resource_from_xml(data: bytes, what: str = "the body") -> dict[str, Any]:
    """The JSON dict of one FHIR XML document; FhirError (400) naming the element for anything wrong."""
    root = xml_safe.parse(data, what)
    encoding = root.getroottree().docinfo.encoding
    return _Reader(get_schema(), data, encoding).resource(root, "")
