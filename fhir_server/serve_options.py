"""What ``kzfhir serve`` checks and defaults before it starts (issue 13: ``--port 99999`` printed 99999
and listened elsewhere, ``--log-level foo`` was a traceback, ``KZFHIR_PORT``/``KZFHIR_HOST`` were
ignored, and ``--open`` beside ``make run`` wrote unaudited into the secure server's database)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fhir_server.config import Settings

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's
#: Open mode's own database: never the secure default's, unless the operator names one.
OPEN_DATABASE = Path("data/open.sqlite")


def port(text: str) -> int:
    """A TCP port, 1-65535."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"port must be a number from 1 to 65535, got {text!r}")
    return int(text)


def open_mode_database(overrides: dict[str, object]) -> None:
    """Open mode without ``--database``/``KZFHIR_DATABASE`` serves ``data/open.sqlite``; either way it says
    loudly that nothing is checked or audited."""
    if "database" not in overrides and "database" not in Settings().model_fields_set:
        overrides["database"] = OPEN_DATABASE
    print(f"WARNING: OPEN MODE — no authentication, no access policy, no audit trail, on database "
          f"{overrides.get('database') or Settings().database}. Development and tests only; never real patients' "
          "data.", file=sys.stderr, flush=True)
