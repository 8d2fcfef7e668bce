"""The one way XML is parsed in the server: no DTD, no entities, no network, no huge trees.

FHIR R4 xml.html: resources SHALL NOT contain a DTD (``DOCTYPE``) and parsers should not process
entities beyond the five XML predefines — the XXE and entity-expansion ("billion laughs") attacks
live there. lxml is configured not to load or validate DTDs, not to substitute entities, not to fetch
anything and to keep libxml2's default size and depth limits (``huge_tree`` off). A document that
declares a DOCTYPE is refused outright: before parsing when it is visible in the bytes (UTF-8) and
after parsing from the document info otherwise, so its entities are never expanded either way.
"""

from __future__ import annotations

import threading

from lxml import etree

from fhir_server.errors import FhirError

_local = threading.local()


def _parser() -> etree.XMLParser:
    # lxml parser objects must not be shared between threads; one per thread, built once.
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                                 huge_tree=False, remove_blank_text=False, collect_ids=False)
        _local.parser = parser
    return parser


def _refuse_doctype() -> FhirError:
    return FhirError("invalid", "XML with a DOCTYPE (DTD or entity declarations) is not accepted (FHIR R4 xml.html)",
                     code="security")


def _has_doctype(data: bytes) -> bool:
    return b"<!DOCTYPE" in data  # entities can only be declared inside one


def parse(data: bytes, what: str = "the body") -> etree._Element:
    """The root element of ``data``; FhirError (400) for anything that is not well-formed, safe XML."""
    if not data.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<"):
        # UTF-16/32 (or anything not ASCII-compatible) would hide a DOCTYPE from the byte scan below;
        # FHIR bodies are UTF-8 anyway (http.html §3.1.0.1.6).
        raise FhirError("invalid", f"{what} is not XML in UTF-8 (FHIR R4 http.html)", code="structure")
    if _has_doctype(data):
        raise _refuse_doctype()
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise FhirError("invalid", f"{what} is not well-formed XML: {exc.msg}", code="structure") from exc
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise _refuse_doctype()
    return root
