"""Run every benchmark module (bench/bench_*.py) in turn; each prints its own figures.

``python -m bench reliability [--minutes M] [--rate R]`` runs the reliability soak instead
(bench/reliability.py; ten minutes by default, so it is not part of the full run), and
``python -m bench compare [...]`` the side-by-side run against the Medplum peer (bench/compare.py; it needs
``make peer-medplum``, so it has its own target, ``make bench-compare``)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def main() -> int:
    only = sys.argv[1:]
    if only[:1] == ["compare"]:
        from bench import compare

        compare.main(only[1:])
        return 0
    if only[:1] == ["reliability"]:
        from bench import reliability

        reliability.main(only[1:])
        return 0
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    for name in names:
        if only and not any(o in name for o in only):
            continue
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"bench.{name}").main()
        print(f"--- {name} took {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
