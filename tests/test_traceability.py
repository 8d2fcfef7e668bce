"""docs/requirements-traceability.md is generated from the tests' requirement markers and kept current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_traceability_document_is_current():
    result = subprocess.run([sys.executable, "scripts/traceability.py", "--check"], cwd=ROOT, check=False)
    assert result.returncode == 0, "run: python scripts/traceability.py"
