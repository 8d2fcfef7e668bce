"""Reproducible benchmarks; `make bench` runs every `bench_*.py` module's `main()`.

Their workloads (the Synthea bundles, the official R4 examples) are the project's test data, read through
``tests.data`` (tests/data/README.md) so tests and benchmarks measure the same files.
"""
