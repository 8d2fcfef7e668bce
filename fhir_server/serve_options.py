"""What ``kzfhir serve`` checks and defaults before it starts (issue 13: ``--port 99999`` printed 99999
and listened elsewhere, ``--log-level foo`` was a traceback, ``KZFHIR_PORT``/``KZFHIR_HOST`` were
ignored, and ``--open`` beside ``make run`` wrote unaudited into the secure server's database)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fhir_server.config import Settings
from fhir_server.i18n import msg
from fhir_server.i18n.locale import say

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's
#: Open mode's own database: never the secure default's, unless the operator names one.
OPEN_DATABASE = Path("data/open.sqlite")


def port(text: str) -> int:
    """A TCP port, 1-65535."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(say(msg("cli.bad_port", value=text)))
    return int(text)


def workers(text: str) -> int:
    """How many server processes, 1-64 (``--workers``; more than 1 needs PostgreSQL)."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(say(msg("cli.bad_workers", value=text)))
    return int(text)


def open_mode_database(overrides: dict[str, object]) -> None:
    """Open mode without ``--database``/``KZFHIR_DATABASE`` serves ``data/open.sqlite``; either way it says
    loudly that nothing is checked or audited."""
    if "database" not in overrides and "database" not in Settings().model_fields_set:
        overrides["database"] = OPEN_DATABASE
    print(say(msg("cli.open_mode", database=overrides.get("database") or Settings().database)), file=sys.stderr,
          flush=True)
