"""Write generated snapshots into the IG's StructureDefinitions: ``python -m profiles.build``.

Snapshots are produced by our own generator (fhir_server/validation/profile/snapshot.py) from each
differential and its base; ``--check`` exits non-zero when a committed snapshot is stale (the test suite
runs the same comparison).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from fhir_server.validation.profile import ProfileRegistry, generate_snapshot
from profiles import package_dir

__all__ = ["fresh_snapshots", "main"]


def _differential_only(sd: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sd.items() if k != "snapshot"}


def fresh_snapshots() -> dict[Path, dict[str, Any]]:
    """Every KZ StructureDefinition file mapped to its content with a freshly generated snapshot."""
    paths = sorted(package_dir().glob("StructureDefinition-*.json"))
    sds = {path: _differential_only(json.loads(path.read_text(encoding="utf-8"))) for path in paths}
    registry = ProfileRegistry(sds.values(), include_kz=False)
    out = {}
    for path, sd in sds.items():
        out[path] = {**sd, "snapshot": {"element": generate_snapshot(sd, registry.structure)}}
    return out


def _render(sd: dict[str, Any]) -> str:
    return json.dumps(sd, ensure_ascii=False, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for path, sd in fresh_snapshots().items():
        text = _render(sd)
        if path.read_text(encoding="utf-8") != text:
            stale.append(path.name)
            if not check:
                path.write_text(text, encoding="utf-8")
    verb = "stale" if check else "written"
    print(f"{len(stale)} snapshot(s) {verb}: {', '.join(stale) or '-'}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
