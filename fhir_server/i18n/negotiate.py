"""Which language an answer is in: ``Accept-Language`` (RFC 9110 §12.5.4) matched by RFC 4647 §3.4
"lookup" against the languages the catalogues have.

- ranges are tried by quality (``q``, RFC 9110 §12.4.2), equal qualities in the order given;
- a range is truncated subtag by subtag until it names a catalogue: ``kk-KZ`` and ``kk-Cyrl-KZ``
  are ``kk``, ``ru-RU`` is ``ru``;
- ``*`` is the server's default language; ``q=0`` makes a language unacceptable (``kk-KZ;q=0`` refuses
  Kazakh: there is one Kazakh catalogue);
- ``kz``, the country code often sent for Kazakh, is taken as ``kk``;
- anything that does not parse is ignored, and a header with nothing usable gives the default:
  a language preference never makes a request fail.

Only error answers consult this (the 200 path never parses the header), and the answer for a header
is remembered, so a client repeating its header costs one dict lookup.
"""

from __future__ import annotations

import re
from functools import lru_cache

from fhir_server.i18n.catalogue import LANGUAGES, Language

_RANGE = re.compile(r"(?:[a-z]{1,8}(?:-[a-z0-9]{1,8})*|\*)")
_QVALUE = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)")
_ALIASES: dict[str, Language] = {"kz": "kk"}
_KNOWN: dict[str, Language] = {**{lang: lang for lang in LANGUAGES}, **_ALIASES}
MAX_HEADER = 512  # a longer header is cut here: browsers send well under 100 characters


def choose(header: str | None, default: Language) -> Language:
    """The language for an answer to a request with this ``Accept-Language`` header."""
    if not header:
        return default
    return _choose(header[:MAX_HEADER], default)


def lookup(tag: str) -> Language | None:
    """The catalogue a lower-case language tag falls back to by truncation (RFC 4647 §3.4), if any."""
    while tag:
        found = _KNOWN.get(tag)
        if found is not None:
            return found
        tag = tag.rpartition("-")[0]
    return None


def _quality(params: list[str]) -> float | None:
    quality = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() != "q":
            continue  # RFC 9110 defines no other parameter here; ignore it
        value = value.strip()
        if not _QVALUE.fullmatch(value):
            return None
        quality = float(value)
    return quality


@lru_cache(maxsize=512)
def _choose(header: str, default: Language) -> Language:
    ranges: list[tuple[float, int, str]] = []
    refused: set[str] = set()
    for order, part in enumerate(header.split(",")):
        tag, *params = (p.strip() for p in part.split(";"))
        tag = tag.lower()
        quality = _quality(params)
        if not _RANGE.fullmatch(tag) or quality is None:
            continue
        if quality == 0:
            refused.add(lookup(tag) or tag)  # "kk-KZ;q=0" refuses the one Kazakh catalogue there is
            continue
        ranges.append((-quality, order, tag))
    for _, _, tag in sorted(ranges):
        if tag == "*":
            open_ = [lang for lang in (default, *LANGUAGES) if lang not in refused]
            if open_:
                return open_[0]
            continue
        lang = lookup(tag)
        if lang is not None and lang not in refused:
            return lang
    return default
