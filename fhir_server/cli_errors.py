"""How every ``kzfhir`` command fails (issue 13): one line on stderr naming the problem, exit code 2 —
for a wrong argument as for a wrong setting in the environment, never a usage dump or a traceback. The
words around the problem are in the command's language (``KZFHIR_LANGUAGE`` or the locale,
docs/languages.md); argparse's and pydantic's own descriptions of it stay English."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from fhir_server.i18n import msg
from fhir_server.i18n.locale import say

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse with a one-line ``error``; its subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, say(msg("cli.usage_error", prog=self.prog, message=message)) + "\n")


def settings_error(exc: Exception) -> str:
    """A pydantic ValidationError of the settings, as one line: the variable and what is wrong."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc).splitlines()[0]
    parts = []
    for error in errors():
        field = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"KZFHIR_{field.upper()}={error.get('input')!r}: {error.get('msg')}")
    return msg("cli.invalid_setting", details="; ".join(parts))


def fail(prog: str, message: str) -> int:
    print(f"{prog}: {say(message)}", file=sys.stderr)
    return EXIT_USAGE
