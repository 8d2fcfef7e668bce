"""FHIR JSON -> FHIR XML (R4 §2.5 "XML Representation"), for XMLDSig over FHIR resources.

Elements come out in StructureDefinition order (the shipped table, :mod:`signing.fhir_xml_order`).
Primitive values become ``value`` attributes and their ``_name`` siblings become ``id``/``extension``;
``Element.id`` and ``Extension.url`` are attributes; ``Narrative.div`` is embedded XHTML; resources inside
``entry.resource`` / ``contained`` are wrapped in their type element. Properties the R4 definitions do not
know (invalid input) are written after the known ones in JSON order, so nothing is silently dropped.
No whitespace is produced: the output is what the signature covers.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from signing.canonical import format_number
from signing.fhir_xml_order import RESOURCES_KEY, OrderTable, load_order_table

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
PRIMITIVES = frozenset(
    {
        "boolean",
        "integer",
        "string",
        "decimal",
        "uri",
        "url",
        "canonical",
        "base64Binary",
        "instant",
        "date",
        "dateTime",
        "time",
        "code",
        "oid",
        "id",
        "markdown",
        "unsignedInt",
        "positiveInt",
        "uuid",
        "xhtml",
    }
)


class FhirXmlError(ValueError):
    """The JSON cannot be written as FHIR XML (no resourceType, unparsable narrative...)."""


def _tag(name: str) -> str:
    return f"{{{FHIR_NS}}}{name}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value)
    return str(value)


class _Writer:
    def __init__(self, table: OrderTable):
        self.table = table
        self.resource_types = {row[0] for row in table.get(RESOURCES_KEY, [])}

    def resource(self, resource: dict[str, Any], parent: etree._Element | None = None) -> etree._Element:
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or not rtype:
            raise FhirXmlError("a resource without resourceType cannot be written as XML")
        elem = (
            etree.Element(_tag(rtype), nsmap={None: FHIR_NS})
            if parent is None
            else etree.SubElement(parent, _tag(rtype))
        )
        self.fill(elem, resource, rtype)
        return elem

    def _order(self, obj: dict[str, Any], type_key: str) -> list[tuple[str, str | None]]:
        known: list[tuple[str, str | None]] = [
            (row[0], row[1]) for row in self.table.get(type_key, []) if row[0] in obj or "_" + row[0] in obj
        ]
        seen = {name for name, _ in known}
        extra: list[tuple[str, str | None]] = [
            (k.lstrip("_"), None) for k in obj if k.lstrip("_") not in seen and k != "resourceType"
        ]
        unique_extra = list(dict.fromkeys(extra))
        return known + unique_extra

    def fill(self, elem: etree._Element, obj: dict[str, Any], type_key: str) -> None:
        is_resource = type_key in self.resource_types
        for name, type_code in self._order(obj, type_key):
            value, meta = obj.get(name), obj.get("_" + name)
            if name == "id" and not is_resource and isinstance(value, str):
                elem.set("id", value)  # Element.id is an attribute (R4 §2.5)
            elif name == "url" and type_key == "Extension" and isinstance(value, str):
                elem.set("url", value)
            else:
                self.property(elem, name, type_code, value, meta)

    def property(
        self, parent: etree._Element, name: str, type_code: str | None, value: Any, meta: Any
    ) -> None:
        values = value if isinstance(value, list) else [value]
        metas = meta if isinstance(meta, list) else [meta]
        for i in range(max(len(values), len(metas))):
            item = values[i] if i < len(values) else None
            item_meta = metas[i] if i < len(metas) else None
            if item is None and item_meta is None:
                continue
            self.item(parent, name, type_code, item, item_meta)

    def item(self, parent: etree._Element, name: str, type_code: str | None, value: Any, meta: Any) -> None:
        if type_code == "xhtml":
            parent.append(_xhtml(value))
            return
        child = etree.SubElement(parent, _tag(name))
        if type_code == "Resource" or (
            isinstance(value, dict) and "resourceType" in value and type_code is None
        ):
            self.resource(value, child)
        elif isinstance(value, dict):
            self.fill(child, value, type_code or "")
        else:
            if isinstance(meta, dict):
                self.fill(child, meta, "Element")
            if value is not None:
                child.set("value", _text(value))


def _xhtml(value: Any) -> etree._Element:
    try:
        div = etree.fromstring(
            str(value).encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True)
        )
    except etree.XMLSyntaxError as exc:
        raise FhirXmlError(f"Narrative.div is not well-formed XHTML: {exc}") from exc
    if div.tag != f"{{{XHTML_NS}}}div":
        raise FhirXmlError("Narrative.div must be an XHTML <div> element")
    return div


def to_xml(resource: dict[str, Any], table: OrderTable | None = None) -> etree._Element:
    """The resource as an lxml element tree in the FHIR namespace."""
    return _Writer(table or load_order_table()).resource(resource)


def to_xml_bytes(resource: dict[str, Any]) -> bytes:
    return etree.tostring(to_xml(resource), encoding="UTF-8", xml_declaration=True)
