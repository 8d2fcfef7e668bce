"""Texts for patients and care participants (TM-09, TM-26, AC-02, AC-18): a notice is written once, to the
outbox, for a reader whose language the server does not know, so it carries every language.

``Communication.payload`` holds one ``contentString`` per language in the order of :data:`NOTICE_LANGUAGES`:
English and Russian first, as the notices had before issue 13, then Kazakh (docs/languages.md).
"""

from __future__ import annotations

from typing import Any

from fhir_server.i18n.catalogue import Language, Message

NOTICE_LANGUAGES: tuple[Language, ...] = ("en", "ru", "kk")


def payload(text: Message) -> list[dict[str, Any]]:
    """``Communication.payload``: the text in each notice language."""
    return [{"contentString": text.localised(lang)} for lang in NOTICE_LANGUAGES]


def texts(payload_items: list[Any]) -> tuple[str, ...]:
    """The text of each notice language from a stored ``payload`` (a notice written before Kazakh was
    added has two: the last one stands in for the missing ones)."""
    found = [p["contentString"] for p in payload_items if isinstance(p, dict) and isinstance(p.get("contentString"),
                                                                                               str)]
    if not found:
        return tuple("" for _ in NOTICE_LANGUAGES)
    return tuple(found[min(i, len(found) - 1)] for i in range(len(NOTICE_LANGUAGES)))
