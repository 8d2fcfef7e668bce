"""How every ``kzfhir`` command fails (issue 13): one line on stderr naming the problem, exit code 2 —
for a wrong argument as for a wrong setting in the environment, never a usage dump or a traceback."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse with a one-line ``error``; its subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def settings_error(exc: Exception) -> str:
    """A pydantic ValidationError of the settings, as one line: the variable and what is wrong."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc).splitlines()[0]
    parts = []
    for error in errors():
        field = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"KZFHIR_{field.upper()}={error.get('input')!r}: {error.get('msg')}")
    return "invalid setting " + "; ".join(parts)


def fail(prog: str, message: str) -> int:
    print(f"{prog}: {message}", file=sys.stderr)
    return EXIT_USAGE
