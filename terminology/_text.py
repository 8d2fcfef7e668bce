"""Text matching for ``$expand?filter=`` and display selection by language (ru, kk, en)."""

from __future__ import annotations

from fhir_server.definitions.codesystem import Designation
from fhir_server.definitions.expansion import Entry


def normalise(text: str) -> str:
    # Russian text is often typed without "ё"; case folding alone would not match it.
    return text.casefold().replace("ё", "е")


def matches(entry: Entry, words: list[str]) -> bool:
    """Every filter word occurs (case-insensitively) in the code, the display or a designation."""
    haystack = " ".join([entry.code, entry.display or "", *(d.value for d in entry.designations)])
    folded = normalise(haystack)
    return all(word in folded for word in words)


def filter_words(text: str) -> list[str]:
    return [w for w in normalise(text).split() if w]


def primary_language(tag: str | None) -> str | None:
    """``ru-KZ`` -> ``ru``; an Accept-Language list gives its first tag."""
    if not tag:
        return None
    first = tag.split(",")[0].split(";")[0].strip()
    return first.split("-")[0].lower() or None


def display_for(display: str | None, designations: tuple[Designation, ...], language: str | None) -> str | None:
    """The designation in ``language`` if there is one, else the display."""
    wanted = primary_language(language)
    if wanted is None:
        return display
    for designation in designations:
        if designation.language and designation.language.split("-")[0].lower() == wanted:
            return designation.value
    return display
