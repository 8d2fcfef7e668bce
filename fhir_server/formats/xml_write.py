"""FHIR JSON (the server's dicts) → FHIR XML bytes (FHIR R4 xml.html), driven by ``xml_schema``.

Elements come out in definition order whatever the JSON key order; ``Element.id``, ``Extension.url``
and primitive values are attributes; a primitive's ``_name`` sibling contributes its ``id`` and
``extension``, position by position in arrays (json.html §2.6.2.2, ``null`` where one side is absent);
resources inside resources are wrapped in their property element; the narrative is written verbatim
(``xhtml.py``). The text is built directly rather than through an lxml tree: it is faster, and it lets
pretty-printing indent FHIR elements without ever touching the whitespace inside a narrative.
"""

from __future__ import annotations

import re
from operator import attrgetter
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.formats.xhtml import check_div
from fhir_server.formats.xml_schema import Kind, XmlField, XmlNode, XmlSchema, get_schema
from fhir_server.formats.xml_values import to_text

FHIR_NS = "http://hl7.org/fhir"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'

_ORDER = attrgetter("order")
_SPECIAL = re.compile('[&<>"\t\n\r]|[^\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]')
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Whitespace is escaped too: an XML parser folds literal tabs and line breaks in attributes to spaces.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                          "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"})


def _invalid(path: str, message: str) -> FhirError:
    return FhirError("invalid", f"{path}: {message}", code="structure", expression=path)


def escape_attribute(value: str, path: str) -> str:
    if _SPECIAL.search(value) is None:
        return value
    if _NOT_XML.search(value) is not None:
        raise FhirError("invalid", f"{path} holds a character XML 1.0 cannot carry", code="value", expression=path)
    return value.translate(_ESCAPES)


class _Writer:
    def __init__(self, schema: XmlSchema, pretty: bool) -> None:
        self.schema = schema
        self.parts: list[str] = []
        self.nl = "\n" if pretty else ""
        self.step = "  " if pretty else ""

    def resource(self, obj: Any, path: str, depth: int, xmlns: str = "") -> None:
        rtype = obj.get("resourceType") if isinstance(obj, dict) else None
        if not isinstance(rtype, str) or rtype not in self.schema.resource_types:
            raise _invalid(path, f"a resource needs a known resourceType, not {rtype!r}")
        self.element(rtype, obj, self.schema.nodes[rtype], path if depth else rtype, depth, xmlns, resource=True)

    def element(self, name: str, obj: Any, node: XmlNode, path: str, depth: int, extra: str = "",
                *, resource: bool = False) -> None:
        if not isinstance(obj, dict):
            raise _invalid(path, "must be a JSON object")
        start = f"{self.step * depth}<{name}{extra}{self.attributes(obj, node, path)}"
        children = self.children(obj, node, path, resource)
        if not children:
            self.parts.append(f"{start}/>{self.nl}")
            return
        self.parts.append(f"{start}>{self.nl}")
        for f in children:
            self.field(obj, f, path, depth + 1)
        self.parts.append(f"{self.step * depth}</{name}>{self.nl}")

    def attributes(self, obj: dict[str, Any], node: XmlNode, path: str) -> str:
        out = ""
        for f in node.attributes:
            value = obj.get(f.name)
            if value is not None:
                if not isinstance(value, str):
                    raise _invalid(f"{path}.{f.name}", "must be a JSON string")
                out += f' {f.name}="{escape_attribute(value, f"{path}.{f.name}")}"'
        return out

    def children(self, obj: dict[str, Any], node: XmlNode, path: str, resource: bool) -> list[XmlField]:
        fields = node.fields
        found: dict[str, XmlField] = {}
        for key in obj:
            name = key[1:] if key[:1] == "_" else key
            f = fields.get(name)
            if f is None:
                if resource and key == "resourceType":
                    continue
                raise _invalid(f"{path}.{key}", f"{node.key} has no element {key!r}")
            if name != key and f.kind is not Kind.PRIMITIVE:
                raise _invalid(f"{path}.{key}", f"{key!r} is only allowed beside a primitive element")
            if f.kind is not Kind.ATTRIBUTE:
                found[name] = f
        return sorted(found.values(), key=_ORDER)

    def field(self, obj: dict[str, Any], f: XmlField, path: str, depth: int) -> None:
        value = obj.get(f.name)
        if f.kind is Kind.PRIMITIVE:
            self.primitives(f, value, obj.get("_" + f.name), f"{path}.{f.name}", depth)
            return
        for item, item_path in _items(f, value, f"{path}.{f.name}"):
            if f.kind is Kind.XHTML:
                if not isinstance(item, str):
                    raise _invalid(item_path, "must be a JSON string of XHTML")
                self.parts.append(f"{self.step * depth}{check_div(item, item_path)}{self.nl}")
            elif f.kind is Kind.RESOURCE:
                self.parts.append(f"{self.step * depth}<{f.name}>{self.nl}")
                self.resource(item, item_path, depth + 1)
                self.parts.append(f"{self.step * depth}</{f.name}>{self.nl}")
            else:
                self.element(f.name, item, self.schema.nodes[str(f.node)], item_path, depth)

    def primitives(self, f: XmlField, value: Any, meta: Any, path: str, depth: int) -> None:
        if not f.is_array:
            if isinstance(value, list) or isinstance(meta, list):
                raise _invalid(path, "takes one value, not an array")
            self.primitive(f, value, meta, path, depth)
            return
        values = _array(value, path)
        metas = _array(meta, path)
        if value is not None and meta is not None and len(values) != len(metas):
            raise _invalid(path, f"the {f.name!r} and '_{f.name}' arrays must have the same length")
        for i in range(max(len(values), len(metas))):
            self.primitive(f, values[i] if values else None, metas[i] if metas else None, f"{path}[{i}]", depth)

    def primitive(self, f: XmlField, value: Any, meta: Any, path: str, depth: int) -> None:
        if value is None and meta is None:
            raise _invalid(path, "a primitive needs a value or an id/extension (FHIR R4 json.html)")
        node = self.schema.nodes[str(f.node)]
        if meta is not None and (not isinstance(meta, dict) or "value" in meta):
            raise _invalid(path, f"'_{f.name}' must be an object with id and/or extension")
        extra = "" if value is None else f' value="{escape_attribute(to_text(value, f.type_code, path), path)}"'
        if meta is None:  # the common case: a bare value
            self.parts.append(f"{self.step * depth}<{f.name}{extra}/>{self.nl}")
            return
        self.element(f.name, meta, node, path, depth, extra)


def _items(f: XmlField, value: Any, path: str) -> list[tuple[Any, str]]:
    if not f.is_array:
        if isinstance(value, list):
            raise _invalid(path, "takes one value, not an array")
        return [(value, path)]
    if not isinstance(value, list):
        raise _invalid(path, "must be a JSON array")
    for i, item in enumerate(value):
        if item is None:
            raise _invalid(f"{path}[{i}]", "null is only allowed in arrays of primitives")
    return [(item, f"{path}[{i}]") for i, item in enumerate(value)]


def _array(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid(path, "must be a JSON array")
    return value


def resource_to_xml(resource: dict[str, Any], *, pretty: bool = False) -> bytes:
    """The FHIR XML document of one resource (a Bundle, an OperationOutcome ... included)."""
    writer = _Writer(get_schema(), pretty)
    writer.parts.append(DECLARATION + writer.nl)
    writer.resource(resource, "", 0, f' xmlns="{FHIR_NS}"')
    return "".join(writer.parts).encode("utf-8")
