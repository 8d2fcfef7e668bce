"""Compare kzfhir's FHIR XML with an independent converter, the npm ``fhir`` package (issue 14 §3).

    python scripts/xml_npm_compare.py          # rerun over every official example; rewrite the committed results
    python scripts/xml_npm_compare.py --check  # rerun; exit 1 if any result differs from the committed ones

Needs node and npm; installs the pinned package into ``tools/fhir-js/`` (``npm ci --prefer-offline``). The
comparison itself is ``tests/formats/npm/compare.py``; the differences and their reasons are in
docs/formats.md ("Agreement with an independent converter").
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project root, for the tests package

from tests.formats.npm.compare import main

if __name__ == "__main__":
    raise SystemExit(main())
