"""Every KZFHIR_* variable docs/configuration.md documents is read by the server (issue 13: KZFHIR_PORT and
KZFHIR_HOST were documented and ignored), and the table is the one the settings themselves describe."""

from __future__ import annotations

import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from fhir_server.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
DOCUMENTED = re.findall(r"^\| `(\w+)` \| `(KZFHIR_\w+)` \|", DOC.read_text(encoding="utf-8"), re.MULTILINE)
SOURCES = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "fhir_server").rglob("*.py")
                    if p.name != "config.py")


def test_the_table_is_current_and_lists_every_setting() -> None:
    done = subprocess.run([sys.executable, "scripts/configuration_doc.py", "--check"], cwd=ROOT)
    assert done.returncode == 0, "run python scripts/configuration_doc.py"
    assert [name for name, _ in DOCUMENTED] == list(Settings.model_fields)


CHOICES = {"revocation_mode": "hard", "update_as_create": "all", "nehp_format": "fhir-document", "timezone": "+06:00",
           "env": "production", "write_validation": "strict", "default_language": "kk"}


def _other_value(name: str) -> tuple[str, Any]:
    """A valid value different from the default, as text for the environment and as the setting reads it."""
    field = Settings.model_fields[name]
    kinds = [k for k in typing.get_args(field.annotation) if k is not type(None)] or [field.annotation]
    kind, default = kinds[0], field.default
    if kind is bool:
        return str(not default).lower(), not default
    if kind is int:
        return str(default + 1), default + 1
    if kind is float:
        return str(default + 1.5), default + 1.5
    if kind is Path:
        return "set-by-test/file", Path("set-by-test/file")
    text = CHOICES.get(name, "set-by-test")  # a setting with a fixed set of values gets another one of them
    return text, text


@pytest.mark.parametrize(("name", "variable"), DOCUMENTED)
def test_each_documented_variable_is_read_and_used(name: str, variable: str, monkeypatch: pytest.MonkeyPatch
                                                   ) -> None:
    assert variable == f"KZFHIR_{name.upper()}"
    text, expected = _other_value(name)
    monkeypatch.setenv(variable, text)
    value = getattr(Settings(), name)
    assert (value.get_secret_value() if isinstance(value, SecretStr) else value) == expected
    # and something in the server reads it (a setting nobody reads is documented and ignored)
    assert re.search(rf"\.{name}\b", SOURCES), f"no code reads settings.{name}"
