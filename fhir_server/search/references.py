"""Reference strings as index and search values (FHIR R4 §2.3.0.1 literal references).

A relative reference ``Patient/123`` (optionally ``/_history/2``) indexes its target type and id.
Absolute URLs, ``urn:`` identifiers and canonical URLs index the URL (canonicals split off their
``|version``). References to contained resources (``#id``) are not targets: they point inside the
same resource, so nothing is indexed for them (R4 references.html §2.3.0.4).
"""

from __future__ import annotations

import re

_RELATIVE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([A-Za-z0-9\-.]{1,64}))?")
_ABSOLUTE = re.compile(r"(?:https?://\S*?/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([A-Za-z0-9\-.]{1,64}))?")

# (target type, target id, version, url)
ParsedReference = tuple[str | None, str | None, str | None, str | None]


def parse_reference(text: str, *, canonical: bool) -> ParsedReference | None:
    if not text or text.startswith("#"):
        return None
    m = _RELATIVE.fullmatch(text)
    if m is not None:
        return m.group(1), m.group(2), m.group(3), None
    if canonical:
        url, _, version = text.partition("|")
        return None, None, version or None, url
    m = _ABSOLUTE.fullmatch(text)
    if m is not None:  # another server's resource: typed, but only the full URL identifies it
        return m.group(1), None, m.group(3), text
    return None, None, None, text
