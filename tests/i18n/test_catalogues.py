"""The catalogues (fhir_server/i18n/messages/*.json): every message in all three languages with the same
placeholders, each one renders, the translations are translations, and every key the code raises exists
(issue 13 §6)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from fhir_server.i18n import LANGUAGES, Message, msg, substitute
from fhir_server.i18n.catalogue import CATALOGUES, fields

ROOT = Path(__file__).resolve().parents[2]
ENGLISH = CATALOGUES["en"]
CYRILLIC = re.compile("[\u0400-\u04ff]")
KAZAKH_ONLY = set("әғқңөұүһі")  # letters of the Kazakh Cyrillic alphabet that Russian does not have


def _trees() -> list[ast.AST]:
    return [ast.parse(p.read_text(encoding="utf-8")) for p in (ROOT / "fhir_server").rglob("*.py")]


def _keys_in_templates() -> set[str]:
    """``t("portal.key")`` and ``("…", "portal.key")`` in the portal's Jinja2 templates (issue 17)."""
    pattern = re.compile(r"""["'](portal\.[a-z_]*[a-z])["']""")
    return {key for p in (ROOT / "fhir_server" / "portal" / "templates").glob("*.html")
            for key in pattern.findall(p.read_text(encoding="utf-8"))}


def _keys_in_code() -> dict[str, set[str]]:
    """``msg("key", name=...)`` calls in the product's code: key -> the parameter names passed."""
    found: dict[str, set[str]] = {}
    for tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "msg" and node.args and \
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.setdefault(node.args[0].value, set()).update(k.arg for k in node.keywords if k.arg)
    return found


def test_every_key_is_in_every_language() -> None:
    for lang in LANGUAGES:
        assert set(CATALOGUES[lang]) == set(ENGLISH), lang


@pytest.mark.parametrize("key", sorted(ENGLISH))
def test_placeholders_agree_across_languages(key: str) -> None:
    names = fields(ENGLISH[key])
    for lang in LANGUAGES:
        template = CATALOGUES[lang][key]
        assert fields(template) == names, (lang, key)
        rendered = template.format_map({name: f"<{name}>" for name in names})  # every template renders
        assert "{" not in rendered.replace("{1,64}", ""), (lang, key)


def _words(template: str) -> str:
    return re.sub(r"\{[^{}]*\}", "", template)


@pytest.mark.parametrize("key", sorted(ENGLISH))
def test_russian_and_kazakh_are_translations(key: str) -> None:
    ru, kk = CATALOGUES["ru"][key], CATALOGUES["kk"][key]
    assert ru != ENGLISH[key] and kk != ENGLISH[key] and ru != kk, key
    assert not KAZAKH_ONLY & set(ru.lower()), key  # no Kazakh letter slipped into the Russian text
    if re.search("[A-Za-z]{3}", _words(ENGLISH[key])):  # a text with words, not only placeholders
        assert CYRILLIC.search(ru) and CYRILLIC.search(kk), key


def test_the_kazakh_catalogue_is_kazakh() -> None:
    """Kazakh Cyrillic (the official script in 2026): most texts use the letters only Kazakh has."""
    with_letters = [k for k, v in CATALOGUES["kk"].items() if KAZAKH_ONLY & set(v.lower())]
    assert len(with_letters) > 0.8 * len(ENGLISH)


def test_every_key_the_code_raises_exists_with_its_placeholders() -> None:
    used = _keys_in_code()
    assert set(used) - set(ENGLISH) == set()
    for key, passed in used.items():
        assert fields(ENGLISH[key]) <= passed, key
    literals = {n.value for tree in _trees() for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)}  # keys kept in tables (_VERBS)
    tabled = {text for text in literals if re.fullmatch(r"notice\.[a-z_]+", text)}
    assert tabled - set(ENGLISH) == set()  # a key in a table (the notices' _VERBS, _TEXT) exists too
    templates = _keys_in_templates()
    assert templates - set(ENGLISH) == set()  # every text a page shows is in the catalogues
    unused = set(ENGLISH) - set(used) - literals - templates
    assert unused == set(), f"keys no code uses: {sorted(unused)}"


def test_a_message_is_its_english_text_and_renders_nested_messages() -> None:
    who = msg("policy.who_organisation", bin="940140000385")
    refusal = msg("access.denied_entry", index=1, reason=msg("policy.no_consent", patient="Patient/p1", who=who,
                                                             wanted="collect"))
    assert isinstance(refusal, str) and refusal.startswith("entry 1: access denied: no active Consent of Patient/p1")
    assert refusal.localised("ru").startswith("запись 1: доступ запрещён: ни одно действующее согласие")
    assert "БСН 940140000385 ұйымы үшін" in refusal.localised("kk")
    named = substitute(refusal, "Patient/p1", msg("bundle.named_entry", type="Patient", full_url="urn:uuid:1",
                                                  index=0))
    assert isinstance(named, Message) and "Patient urn:uuid:1 (0-жазба)" in named.localised("kk")
    assert "Patient urn:uuid:1 (entry 0)" in named
    assert substitute("plain Patient/p1", "Patient/p1", "X") == "plain X"
