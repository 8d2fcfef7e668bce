"""Message catalogues: ``messages/{en,ru,kk}.json``, each a flat object ``key -> template``.

Templates use ``str.format`` fields by name (``{type}/{id}``, ``{value!r}``); every language has
every key with the same fields (tests/i18n/test_catalogues.py). Counts are written "label: {n}"
so that no language needs plural forms (Russian has three, Kazakh none after a numeral).

The catalogues are read once at import and never again: a lookup is two dict accesses, and the
English text of a message is made when it is raised, as the f-string it replaces was.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from importlib import resources
from typing import Any, Literal, cast

import orjson

Language = Literal["en", "ru", "kk"]
LANGUAGES: tuple[Language, ...] = ("en", "ru", "kk")
DEFAULT: Language = "en"  # the language of Message's own text, logs and audit records


def _load(lang: str) -> dict[str, str]:
    raw = resources.files("fhir_server.i18n").joinpath("messages", f"{lang}.json").read_bytes()
    data = orjson.loads(raw)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"messages/{lang}.json must be an object of strings")
    return cast(dict[str, str], data)


CATALOGUES: dict[str, dict[str, str]] = {lang: _load(lang) for lang in LANGUAGES}


def fields(template: str) -> frozenset[str]:
    """The placeholder names of a template (``{type}``, ``{value!r}`` -> type, value)."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


class Message(str):
    """A text with a catalogue key: the English rendering, plus ``key`` and ``params`` to render it
    in another language. Parameters that are Messages themselves are rendered in the same language."""

    key: str
    params: Mapping[str, Any]

    def __new__(cls, key: str, params: Mapping[str, Any], /) -> Message:
        self = super().__new__(cls, _format(DEFAULT, key, params))
        self.key = key
        self.params = params
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (worker processes, exceptions across threads)
        return (Message, (self.key, dict(self.params)))

    def localised(self, lang: str) -> str:
        return str(self) if lang == DEFAULT else _format(lang, self.key, self.params)


_ENGLISH = CATALOGUES[DEFAULT]


def _format(lang: str, key: str, params: Mapping[str, Any]) -> str:
    if lang == DEFAULT:  # a nested Message already is its English text: the cost of the f-string it replaced
        return _ENGLISH[key].format_map(params)  # a KeyError is a programming error: tests check every key
    template = CATALOGUES.get(lang, _ENGLISH).get(key) or _ENGLISH[key]
    return template.format_map({k: v.localised(lang) if isinstance(v, Message) else v for k, v in params.items()})


def msg(key: str, /, **params: Any) -> Message:
    """The message ``key`` with its parameters (English text; other languages on demand)."""
    return Message(key, params)


def english(key: str, /, **params: Any) -> str:
    """The English text of ``key`` as a plain ``str``: for a text no caller is shown (audit, logs) on a
    path where the cost of a Message counts (a refused read per hidden search candidate)."""
    return _ENGLISH[key].format_map(params)


def render(text: str, lang: str) -> str:
    """``text`` in ``lang`` when it is a Message, else as it is (a text not yet in the catalogues)."""
    return text.localised(lang) if isinstance(text, Message) else text


def substitute(text: str, old: str, new: str) -> str:
    """``text.replace(old, new)`` that keeps a Message a Message (the replacement goes into its
    parameters, recursively), so a rewritten refusal can still be shown in the caller's language."""
    if not isinstance(text, Message):
        return text.replace(old, new)
    if old not in text:
        return text
    params = {k: (new if v == old else substitute(v, old, new)) if isinstance(v, str) else v
              for k, v in text.params.items()}
    return Message(text.key, params)
