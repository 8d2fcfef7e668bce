"""``kzfhir`` speaks the user's language: ``KZFHIR_LANGUAGE``, else the locale (``LANG`` ...), else English
(docs/languages.md). Errors stay one line with exit code 2 in every language (issue 13 §4)."""

from __future__ import annotations

import os
import subprocess
import sys


def _kzfhir(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG") and not k.startswith("KZFHIR_")}
    return subprocess.run([sys.executable, "-m", "fhir_server.cli", *args], capture_output=True, text=True,
                          timeout=60, env={**clean, **env})


def test_a_bad_argument_in_each_language() -> None:
    expected = {"en": ("port must be a number from 1 to 65535, got '99999'", "(see kzfhir serve --help)"),
                "ru": ("порт должен быть числом от 1 до 65535, получено '99999'", "(см. kzfhir serve --help)"),
                "kk": ("порт 1-ден 65535-ке дейінгі сан болуы керек, берілгені: '99999'",
                       "(kzfhir serve --help қараңыз)")}
    for lang, (problem, hint) in expected.items():
        run = _kzfhir("serve", "--port", "99999", KZFHIR_LANGUAGE=lang)
        assert run.returncode == 2
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert problem in run.stderr and hint in run.stderr, run.stderr


def test_the_locale_chooses_when_kzfhir_language_is_not_set() -> None:
    russian = _kzfhir("serve", LANG="ru_RU.UTF-8", KZFHIR_PORT="abc")
    assert russian.returncode == 2 and "недопустимая настройка KZFHIR_PORT='abc'" in russian.stderr, russian.stderr
    kazakh = _kzfhir("serve", LC_ALL="kk_KZ.UTF-8", LANG="ru_RU.UTF-8", KZFHIR_PORT="abc")
    assert "баптау жарамсыз: KZFHIR_PORT='abc'" in kazakh.stderr, kazakh.stderr
    english = _kzfhir("serve", LANG="C.UTF-8", KZFHIR_PORT="abc")
    assert "invalid setting KZFHIR_PORT='abc'" in english.stderr, english.stderr


def test_help_of_serve_in_kazakh() -> None:
    run = _kzfhir("serve", "--help", KZFHIR_LANGUAGE="kk")
    assert run.returncode == 0
    assert "қосылымдарды қабылдайтын порт" in run.stdout and "аутентификациясыз" in run.stdout, run.stdout
