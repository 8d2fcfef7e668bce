"""Validation throughput: KZ-profile validation of the IG's valid examples and R4 core invariants of
the official examples, warm (profiles compiled once, as in the server); and the write path's profile
validation (``ProfileValidation``, after the structure check) at each ``write_validation`` level over KZ
resources, official examples and Synthea resources (issue 14 §2: lenient was the default before, standard
is now); and all the validation a write runs (``interactions.write.validate``: the structure check, the profile
walk, the other write-time validators of ``build_services``) per Synthea resource — every entry of the 20
transaction Bundles that ingest posts — and per KZ resource, in CPU time. Bounded to about two minutes."""

from __future__ import annotations

import contextlib
import json
import statistics
import time
from typing import Any

from fhir_server.config import Settings
from fhir_server.jsonio import loads
from fhir_server.validation.on_write import LEVELS, ProfileValidation
from fhir_server.validation.profile import (
    ProfilePolicy,
    ProfileRegistry,
    validate_core_invariants,
    validate_profiles,
)
from profiles import examples_dir
from terminology import default_service
from tests.data import r4_examples, synthea_bundle_bytes

_ROUNDS = 20


def _median_ms(run: Any, resource: dict[str, Any], rounds: int = _ROUNDS) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        run(resource)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def _kz(registry: ProfileRegistry) -> None:
    policy = ProfilePolicy.national()
    resources = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((examples_dir() / "valid").glob("*.json"))]

    def run(resource: dict[str, Any]) -> None:
        validate_profiles(resource, policy.profiles_for(resource), registry=registry, policy=policy)

    started = time.perf_counter()
    for resource in resources:
        run(resource)  # first pass compiles every profile
    print(f"KZ profiles: compile + first pass over {len(resources)} resources {time.perf_counter() - started:.2f} s")
    by_type: dict[str, list[float]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(_median_ms(run, resource))
    for name, values in sorted(by_type.items()):
        print(f"  {name:<18} median {statistics.median(values):.3f} ms/resource")
    every = [v for values in by_type.values() for v in values]
    print(f"KZ profile validation, warm: median {statistics.median(every):.3f} ms, max {max(every):.3f} ms "
          f"(target <= 1 ms median); {1000 / statistics.mean(every):.0f} resources/s on one core")


def _core(registry: ProfileRegistry) -> None:
    # Typical resources only: the few multi-megabyte Bundles (Bundle-types) would dominate the run time.
    resources = [json.loads(raw) for raw in r4_examples().values() if len(raw) < 50_000]
    for resource in resources:
        validate_core_invariants(resource, registry)
    timings = [_median_ms(lambda r: validate_core_invariants(r, registry), r, 5) for r in resources]
    print(f"R4 core invariants over {len(timings)} official examples (< 50 kB), warm: median "
          f"{statistics.median(timings):.3f} ms, p90 {statistics.quantiles(timings, n=10)[-1]:.3f} ms")


def _synthea_sample(per_bundle: int = 12) -> list[dict[str, Any]]:
    """The first resources of each Synthea Bundle (Patient, Encounters, Observations, ...)."""
    out: list[dict[str, Any]] = []
    for raw in synthea_bundle_bytes()[:20]:
        out += [entry["resource"] for entry in json.loads(raw)["entry"][:per_bundle]]
    return out


def _write_levels(registry: ProfileRegistry) -> None:
    """ProfileValidation as a write calls it, per level; the workloads as the server would see them."""
    kz = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((examples_dir() / "valid").glob("*.json"))]
    workloads = {
        "KZ resources (IG valid examples)": kz,
        "official examples < 50 kB": [loads(raw) for raw in r4_examples().values() if len(raw) < 50_000],
        "Synthea resources": _synthea_sample(),
    }
    terminology = default_service()  # as api/app.py gives it
    validations = {level: ProfileValidation(Settings(write_validation=level), terminology=terminology,
                                            registry=registry) for level in LEVELS}
    for title, resources in workloads.items():
        timings: dict[str, list[float]] = {level: [] for level in LEVELS}
        for resource in resources:
            for validation in validations.values():
                validation(resource, "create")  # warm: compiled profiles, FHIRPath caches
            rounds: dict[str, list[float]] = {level: [] for level in LEVELS}
            for _ in range(7):  # the levels interleaved, so that the load of a shared machine hits all alike
                for level, validation in validations.items():
                    started = time.perf_counter()
                    validation(resource, "create")
                    rounds[level].append(time.perf_counter() - started)
            for level in LEVELS:
                timings[level].append(statistics.median(rounds[level]) * 1000)
        figures = ", ".join(f"{level} {statistics.median(timings[level]):.3f}" for level in LEVELS)
        print(f"write-path profile validation, {title} ({len(resources)}), median ms/resource: {figures}")


def _whole_write(resources: list[dict[str, Any]], title: str, passes: int) -> None:
    """``interactions.write.validate`` as a write (and a transaction entry) calls it, on a server's services
    (open mode, the default settings otherwise): CPU µs per resource over the whole set (the least of ``passes``
    passes, the figure a shared machine inflates least) and the median resource's time."""
    import tempfile
    from pathlib import Path

    from fhir_server.api.app import build_services
    from fhir_server.errors import FhirError
    from fhir_server.interactions.write import validate

    def one(resource: dict[str, Any]) -> None:
        with contextlib.suppress(FhirError):  # a refused resource costs its validation too
            validate(services, resource)

    with tempfile.TemporaryDirectory(prefix="kzfhir-bench-validation-") as folder:
        services = build_services(Settings(database=Path(folder) / "db.sqlite", security_enabled=False))
        for resource in resources:
            one(resource)  # warm: compiled profiles, visit lists, FHIRPath caches
        totals = []
        for _ in range(passes):
            started = time.process_time()
            for resource in resources:
                one(resource)
            totals.append((time.process_time() - started) / len(resources) * 1e6)
        each = []
        for resource in resources[::max(1, len(resources) // 1000)]:
            rounds = []
            for _ in range(5):
                started = time.process_time()
                one(resource)
                rounds.append(time.process_time() - started)
            each.append(statistics.median(rounds) * 1e6)
    print(f"whole write-path validation, {title} ({len(resources)}): CPU {min(totals):,.0f} µs per resource "
          f"(least of {passes} passes; {', '.join(f'{t:,.0f}' for t in totals)}), median resource "
          f"{statistics.median(each):,.0f} µs")


def main() -> None:
    started = time.perf_counter()
    registry = ProfileRegistry()
    print(f"registry load (R4 core + KZ IG): {time.perf_counter() - started:.2f} s")
    _kz(registry)
    _core(registry)
    _write_levels(registry)
    synthea = [entry["resource"] for raw in synthea_bundle_bytes()[:20] for entry in json.loads(raw)["entry"]]
    _whole_write(synthea, "every entry of the 20 Synthea Bundles", 3)
    kz = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((examples_dir() / "valid").glob("*.json"))]
    _whole_write(kz, "KZ resources (IG valid examples)", 10)
