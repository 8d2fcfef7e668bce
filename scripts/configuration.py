"""Regenerate the settings table of docs/configuration.md from ``fhir_server/config.py``.

    python scripts/configuration.py          # rewrite the table in place
    python scripts/configuration.py --check  # exit 1 when the document is out of date (the test suite)
"""

from __future__ import annotations

import sys
from pathlib import Path

from fhir_server.config import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
HEADER = "| setting | environment | default | meaning |\n|---|---|---|---|\n"


def table() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = str(default) if not isinstance(default, str) else default
        meaning = (field.description or "").replace("|", "\\|")  # a pipe would end the table cell
        rows.append(f"| `{name}` | `KZFHIR_{name.upper()}` | `{shown}` | {meaning} |")
    return HEADER + "\n".join(rows) + "\n"


def render(current: str) -> str:
    start = current.index(HEADER)
    end = current.index("\n\n", start)
    return current[:start] + table() + current[end + 1:]


def main(argv: list[str]) -> int:
    current = DOC.read_text(encoding="utf-8")
    wanted = render(current)
    if "--check" in argv:
        if wanted != current:
            print("docs/configuration.md is out of date: run python scripts/configuration.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
