"""The narrative ``div``: an XHTML element in XML, the same markup as a string in JSON.

FHIR R4 narrative.html §2.4.0.1 and json.html §2.6.2.4: in JSON, ``Narrative.div`` is the XHTML
``<div xmlns="http://www.w3.org/1999/xhtml">…</div>`` as a string. The markup is carried *verbatim*
both ways, so that a narrative survives JSON → XML → JSON byte for byte: a parsed tree cannot
tell ``&quot;`` from ``"``, ``<td></td>`` from ``<td/>`` or a CR from a LF, and the official examples
use all of these. JSON → XML writes the string as it is once it has parsed standalone as one XHTML
``div``; XML → JSON takes the div's own source text when it stands alone the same way, and otherwise
(its namespace declared on an ancestor, a prefix, another encoding) lxml's serialisation of it.
"""

from __future__ import annotations

import copy
import re

from lxml import etree

from fhir_server.errors import FhirError
from fhir_server.formats import xml_safe

XHTML_NS = "http://www.w3.org/1999/xhtml"
DIV = f"{{{XHTML_NS}}}div"

# Markup that can hide a "<div" (comments, CDATA, processing instructions) and div start/end tags.
# In well-formed XML a raw "<" only ever starts markup, and attribute values may hold ">" but never "<".
_TOKENS = re.compile(
    r"<(?:!--.*?-->|!\[CDATA\[.*?\]\]>|\?.*?\?>"
    r"|(?P<end>/(?:[\w.\-]+:)?div\s*>)"
    r"|(?P<start>(?:[\w.\-]+:)?div(?=[\s/>])(?:[^>\"']|\"[^\"]*\"|'[^']*')*>))",
    re.S,
)


def div_spans(text: str) -> list[tuple[int, int]]:
    """The source spans of the outermost ``div`` elements of a well-formed document, in document order.

    FHIR itself has no element called ``div``: an outermost one is always a ``Narrative.div``."""
    spans: list[tuple[int, int]] = []
    depth = 0
    start = 0
    for m in _TOKENS.finditer(text):
        tag = m.group("start")
        if tag is not None:
            if tag.endswith("/>"):
                if depth == 0:
                    spans.append((m.start(), m.end()))
                continue
            if depth == 0:
                start = m.start()
            depth += 1
        elif m.group("end") is not None:
            depth -= 1
            if depth == 0:
                spans.append((start, m.end()))
    return spans


def _standalone(text: str) -> etree._Element | None:
    try:
        root = xml_safe.parse(text.encode("utf-8"))
    except FhirError:
        return None
    return root if root.tag == DIV else None


def check_div(text: str, path: str) -> str:
    """The markup to write into an XML document for a JSON ``div`` string (FhirError when it is not XHTML)."""
    root = _standalone(text)
    if root is None:
        raise FhirError("invalid", f"{path} is not a well-formed XHTML <div> element (FHIR R4 narrative.html)",
                        code="value", expression=path)
    stripped = text.strip()
    if div_spans(stripped) == [(0, len(stripped))]:
        return stripped
    return serialize(root)  # a comment or processing instruction beside the div: keep only the div


def div_string(element: etree._Element, source: str | None) -> str:
    """The JSON string of a narrative ``div`` element; ``source`` is its text in the document, if known."""
    # A source text that parses standalone as an XHTML div declares every namespace it uses itself, so
    # it resolves exactly as it did inside the document: it is the same markup.
    if source is not None and _standalone(source) is not None:
        return source
    return serialize(element)


def serialize(element: etree._Element) -> str:
    """lxml's serialisation of the element standing alone, with only the namespace declarations it uses."""
    alone = copy.deepcopy(element)
    alone.tail = None
    etree.cleanup_namespaces(alone)
    return str(etree.tostring(alone, encoding="unicode"))

