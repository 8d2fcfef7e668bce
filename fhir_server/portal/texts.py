"""The portal's words in Kazakh, Russian and English: the keys ``portal.*`` of the server's own catalogues
(fhir_server/i18n/messages, docs/languages.md), and the language of a page.

The language is the one the person picked (the ``kzfhir_lang`` cookie, set by the switch on every page), else
the browser's ``Accept-Language`` matched by the server's negotiation (RFC 4647 lookup, ``i18n/negotiate.py``).
The API calls of a page ask for the same language, so an error the API explains is shown in it too."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from fhir_server.i18n import DEFAULT, LANGUAGES, Language, choose
from fhir_server.i18n.catalogue import CATALOGUES

LANG_COOKIE = "kzfhir_lang"
NAMES: dict[str, str] = {"kk": "Қазақша", "ru": "Русский", "en": "English"}  # each in its own language


def language(request: Request) -> Language:
    picked = request.cookies.get(LANG_COOKIE, "")
    for lang in LANGUAGES:
        if picked == lang:
            return lang
    return choose(request.headers.get("accept-language"), DEFAULT)


class Texts:
    """``t("portal.records")``: the text in the page's language (English when a key has no translation)."""

    def __init__(self, lang: Language) -> None:
        self.lang = lang
        self._table = CATALOGUES[lang]
        self._english = CATALOGUES[DEFAULT]

    def __call__(self, key: str, /, **params: Any) -> str:
        template = self._table.get(key) or self._english[key]  # a KeyError is a missing key: tests check them
        return template.format_map(params) if params else template

    def pick(self, texts: list[str]) -> str:
        """One of a notice's texts, stored English, Russian, Kazakh in that order (docs/languages.md)."""
        if not texts:
            return ""
        order = {"en": 0, "ru": 1, "kk": 2}[self.lang]
        return texts[order] if order < len(texts) else texts[0]
