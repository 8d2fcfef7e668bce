"""ValueSet/$expand output (R4 ValueSet §4.9.8): filter, paging and display language over a cached expansion."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fhir_server.definitions.expansion import ComposeResult, Entry
from terminology._text import display_for, filter_words, matches
from terminology.errors import TerminologyError

_HEADER_KEYS = ("id", "url", "version", "name", "title", "status", "experimental", "publisher", "description")


def check_expandable(url: str, result: ComposeResult) -> None:
    if result.unheld:
        systems = ", ".join(sorted(result.unheld))
        raise TerminologyError(
            "not-supported",
            f"ValueSet {url} cannot be expanded: it includes code system(s) not held by this server ({systems})",
        )


def render_expansion(
    valueset: dict[str, Any],
    entries: list[Entry],
    *,
    text_filter: str | None,
    offset: int,
    count: int | None,
    display_language: str | None,
) -> dict[str, Any]:
    if offset < 0 or (count is not None and count < 0):
        raise TerminologyError("invalid", "offset and count must not be negative")
    words = filter_words(text_filter or "")
    selected = [e for e in entries if matches(e, words)] if words else entries
    page = selected[offset:] if count is None else selected[offset : offset + count]
    parameters: list[dict[str, Any]] = [{"name": "offset", "valueInteger": offset}]
    if count is not None:
        parameters.append({"name": "count", "valueInteger": count})
    if text_filter:
        parameters.append({"name": "filter", "valueString": text_filter})
    if display_language:
        parameters.append({"name": "displayLanguage", "valueCode": display_language})
    for used in sorted({f"{e.system}|{e.version}" if e.version else e.system for e in entries}):
        parameters.append({"name": "used-codesystem", "valueUri": used})
    out: dict[str, Any] = {"resourceType": "ValueSet"}
    out.update({k: valueset[k] for k in _HEADER_KEYS if k in valueset})
    out["expansion"] = {
        "identifier": f"urn:uuid:{uuid.uuid4()}",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "total": len(selected),
        "offset": offset,
        "parameter": parameters,
    }
    if page:
        out["expansion"]["contains"] = [_contains(e, display_language) for e in page]
    return out


def _contains(entry: Entry, language: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"system": entry.system}
    if entry.version:
        item["version"] = entry.version
    if entry.abstract:
        item["abstract"] = True
    if entry.inactive:
        item["inactive"] = True
    item["code"] = entry.code
    display = display_for(entry.display, entry.designations, language)
    if display:
        item["display"] = display
    if entry.designations:
        item["designation"] = [d.to_fhir() for d in entry.designations]
    return item
