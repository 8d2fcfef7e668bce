"""Write the settings table of docs/configuration.md from fhir_server/config.py: ``python scripts/configuration_doc.py``
(``--check`` exits 1 when the document is stale; tests/operator/test_configuration_doc.py runs it)."""

from __future__ import annotations

import sys
from pathlib import Path

from fhir_server.config import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
START, END = "<!-- settings table: scripts/configuration_doc.py -->", "<!-- end of settings table -->"


def table() -> str:
    rows = ["| setting | environment | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | `KZFHIR_{name.upper()}` | `{field.default}` | {meaning} |")
    return "\n".join(rows)


def render(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    if START not in text:
        raise SystemExit(f"{DOC}: no {START} marker")
    fresh = render(text)
    if "--check" in argv:
        return 0 if fresh == text else 1
    DOC.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
