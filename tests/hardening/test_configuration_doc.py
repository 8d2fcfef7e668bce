"""Every limit is a documented setting: docs/configuration.md is generated from config.py and
must be current (issue 12 §2)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fhir_server.config import Settings

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "configuration.py"


def test_the_configuration_table_lists_every_setting_as_config_py_defines_it() -> None:
    spec = importlib.util.spec_from_file_location("configuration_doc", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "run: python scripts/configuration.py"


def test_every_limit_setting_says_what_it_bounds() -> None:
    limits = [n for n in Settings.model_fields if n.startswith(("max_", "search_max_")) or n.endswith("_timeout")]
    assert len(limits) >= 14
    assert all(Settings.model_fields[n].description for n in limits if n != "max_conditional_delete")
