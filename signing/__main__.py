"""``python -m signing sign|verify|pki ...`` — the same commands ``kzfhir`` offers."""

from signing.cli import main

raise SystemExit(main())
