"""Terminology: warm membership checks per second (target < 5 µs each) and $expand / $lookup latency."""

from __future__ import annotations

import time
from collections.abc import Callable

from terminology import TerminologyService

ICD10 = "http://hl7.org/fhir/sid/icd-10"
KZ_VS = "https://fhir.kzfhir.kz/ValueSet/"
GENDER = "http://hl7.org/fhir/administrative-gender"

# (value set, system, code): members, non-members and "cannot tell" answers, as a validator would ask them.
CHECKS = [
    (KZ_VS + "icd-10-remote-monitoring", ICD10, "E11.9"),
    (KZ_VS + "icd-10-remote-monitoring", ICD10, "J18.9"),
    (KZ_VS + "icd-10", ICD10, "K29.8"),
    (KZ_VS + "kz-funding-source", "https://fhir.kzfhir.kz/CodeSystem/kz-funding-source", "osms"),
    ("http://hl7.org/fhir/ValueSet/administrative-gender", GENDER, "female"),
    ("http://hl7.org/fhir/ValueSet/administrative-gender", None, "male"),
    ("http://hl7.org/fhir/ValueSet/observation-status", "http://hl7.org/fhir/observation-status", "final"),
    ("http://hl7.org/fhir/ValueSet/condition-code", "http://snomed.info/sct", "38341003"),
]


def _timed(fn: Callable[[], object], rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - started) / rounds


def main() -> None:
    started = time.perf_counter()
    service = TerminologyService()
    print(f"service start (R4 core + shipped data): {(time.perf_counter() - started) * 1000:.0f} ms")

    started = time.perf_counter()
    for vs, system, code in CHECKS:
        service.check_membership(vs, system, code)
    print(f"cold membership sets for {len(CHECKS)} value sets: {(time.perf_counter() - started) * 1000:.1f} ms")

    rounds = 200_000
    started = time.perf_counter()
    for i in range(rounds):
        vs, system, code = CHECKS[i % len(CHECKS)]
        service.check_membership(vs, system, code)
    per_check = (time.perf_counter() - started) / rounds
    print(f"warm check_membership: {per_check * 1e6:.2f} µs/check, {1 / per_check:,.0f} checks/s (target < 5 µs)")

    icd10_set, languages = KZ_VS + "icd-10", "http://hl7.org/fhir/ValueSet/languages"
    cases: list[tuple[str, Callable[[], object], int]] = [
        ("expand kz-funding-source", lambda: service.expand(KZ_VS + "kz-funding-source"), 2000),
        ("expand icd-10 (all, ru)", lambda: service.expand(icd10_set, display_language="ru"), 200),
        ("expand icd-10 filter 'диабет', count 20", lambda: service.expand(icd10_set, filter="диабет", count=20), 500),
        ("expand core languages page 2", lambda: service.expand(languages, offset=10, count=10), 2000),
        ("lookup ICD-10 I50 (kk falls back)", lambda: service.lookup(ICD10, "I50", display_language="kk"), 5000),
        ("validate-code icd-10 J45.9", lambda: service.validate_code(icd10_set, system=ICD10, code="J45.9"), 200),
    ]
    for label, fn, n in cases:
        print(f"{label}: {_timed(fn, n) * 1000:.3f} ms")
