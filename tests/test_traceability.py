"""docs/requirements-traceability.md is generated from the tests' requirement markers and the project's
catalogue docs/requirements.md, lists every catalogue ID, and is kept current."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("traceability", ROOT / "scripts" / "traceability.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_traceability_document_is_current() -> None:
    result = subprocess.run([sys.executable, "scripts/traceability.py", "--check"], cwd=ROOT, check=False,
                            capture_output=True, text=True)
    assert result.returncode == 0, f"run: python scripts/traceability.py\n{result.stderr}"


def test_the_catalogue_has_every_requirement_and_the_tests_cite_only_its_ids() -> None:
    script = _script()
    catalogue = script.catalogue()
    assert len([i for i in catalogue if i.startswith("TM-")]) == 26
    assert len([i for i in catalogue if i.startswith("AC-")]) == 27
    assert {"MD-B", "MD-D"} <= set(catalogue)
    assert script.unknown_ids() == []
    assert set(script.collect()) <= set(catalogue)
