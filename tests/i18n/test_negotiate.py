"""Accept-Language (RFC 9110 §12.5.4) to a catalogue, and the command line's language (docs/languages.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_server.i18n import LANGUAGES, choose
from fhir_server.i18n.locale import cli_language


@pytest.mark.parametrize(("header", "default", "expected"), [
    ("kk", "en", "kk"), ("ru;q=0.9, en;q=0.8", "en", "ru"), ("en;q=0.8, ru;q=0.9", "kk", "ru"),
    ("*", "en", "en"), ("*", "kk", "kk"), ("kk;q=0, *", "kk", "en"), ("de, *;q=0.1", "ru", "ru"),
    ("da, en-gb;q=0.8, en;q=0.7", "ru", "en"),  # RFC 9110 §12.5.4's example
    ("kk-Cyrl-KZ", "en", "kk"), ("kk-Latn", "en", "kk"), ("RU-ru", "en", "ru"), ("kz-KZ", "en", "kk"),
    ("ru;q=0.5, kk;q=0.5", "en", "ru"),  # equal quality: the order given
    ("fr", "kk", "kk"), ("", "ru", "ru"), (None, "kk", "kk"), ("ru;q=1.5", "en", "en"), ("ru;q=", "en", "en"),
    ("ru;q=0.0001", "en", "en"), ("ru;level=1;q=0.5", "en", "ru"), ("кк", "en", "en"), ("e n", "en", "en"),
])
def test_choose(header: str | None, default: str, expected: str) -> None:
    assert choose(header, default) == expected  # type: ignore[arg-type]


@given(st.text(max_size=300), st.sampled_from(LANGUAGES))
def test_any_header_chooses_a_catalogue(header: str, default: str) -> None:
    assert choose(header, default) in LANGUAGES  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.sampled_from(["kk", "ru", "en", "de", "*", "kk-KZ"]),
                          st.integers(min_value=0, max_value=1000)), min_size=1, max_size=6))
def test_the_best_quality_wins(ranges: list[tuple[str, int]]) -> None:
    header = ", ".join(f"{tag};q={q / 1000:.3f}" for tag, q in ranges)
    chosen = choose(header, "en")
    usable = [(q, -i, tag) for i, (tag, q) in enumerate(ranges) if q > 0 and tag not in ("de",)]
    refused = {tag[:2] for tag, q in ranges if q == 0}
    usable = [u for u in usable if u[2] == "*" or u[2][:2] not in refused]
    if not usable:
        assert chosen == "en"
    elif max(usable)[2] != "*":
        assert chosen == max(usable)[2][:2]


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "en"), ({"LANG": "C.UTF-8"}, "en"), ({"LANG": "ru_RU.UTF-8"}, "ru"), ({"LANG": "kk_KZ.UTF-8"}, "kk"),
    ({"LC_ALL": "kk_KZ", "LANG": "ru_RU.UTF-8"}, "kk"), ({"LANGUAGE": "de:ru", "LANG": "en_US.UTF-8"}, "ru"),
    ({"KZFHIR_LANGUAGE": "en", "LANG": "kk_KZ.UTF-8"}, "en"),
    ({"LANG": "POSIX", "KZFHIR_DEFAULT_LANGUAGE": "kk"}, "kk"),
    ({"LC_MESSAGES": "ru_KZ.UTF-8@euro"}, "ru"), ({"LANG": "de_DE.UTF-8"}, "en"),
])
def test_cli_language(env: dict[str, str], expected: str) -> None:
    assert cli_language(env) == expected
