"""``python -m conformance run --base URL [...]``."""

import sys

from conformance.cli import main

sys.exit(main())
