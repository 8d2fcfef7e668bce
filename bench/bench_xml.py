"""FHIR XML parse and serialise rates (fhir_server/formats), next to JSON's for scale.

Over the official R4 examples (every one, and the typical ones under 50 kB) and a single Patient:
resources per second and MB of XML per second, warm (definitions compiled once, as in the server).
The response path of an XML read also parses the stored JSON first (api/common.py ``format_body``),
so "JSON bytes -> XML" is what one XML read costs beyond a JSON one. Bounded to a few seconds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from fhir_server.formats import resource_from_xml, resource_to_xml
from fhir_server.jsonio import dumps, loads
from tests.data import r4_examples

_PATIENT = {
    "resourceType": "Patient", "id": "p1", "meta": {"versionId": "3", "lastUpdated": "2024-05-01T10:00:00Z"},
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>Ахметов Ерлан</p></div>'},
    "identifier": [{"system": "https://fhir.kzfhir.kz/sid/iin", "value": "850315300019"}],
    "name": [{"use": "official", "family": "Ахметов", "given": ["Ерлан", "Серикович"]}],
    "telecom": [{"system": "phone", "value": "+77011234567", "use": "mobile"}],
    "gender": "male", "birthDate": "1985-03-15",
    "address": [{"city": "Астана", "country": "KZ", "postalCode": "010000"}],
}


def _rate(run: Callable[[Any], Any], items: list[Any], seconds: float = 0.5) -> float:
    """Items per second over whole passes of ``items``, for at least ``seconds`` (median of passes)."""
    passes: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or not passes:
        started = time.perf_counter()
        for item in items:
            run(item)
        passes.append(time.perf_counter() - started)
    return len(items) / statistics.median(passes)


def _report(label: str, resources: list[dict[str, Any]]) -> None:
    xml = [resource_to_xml(r) for r in resources]
    json_bytes = [dumps(r) for r in resources]
    mb_xml = sum(len(x) for x in xml) / len(xml) / 1e6
    mb_json = sum(len(j) for j in json_bytes) / len(json_bytes) / 1e6
    rates = {
        "serialise dict -> XML": (_rate(resource_to_xml, resources), mb_xml),
        "parse XML -> dict": (_rate(resource_from_xml, xml), mb_xml),
        "JSON bytes -> XML (read path)": (_rate(lambda b: resource_to_xml(loads(b)), json_bytes), mb_xml),
        "serialise dict -> JSON": (_rate(dumps, resources), mb_json),
        "parse JSON -> dict": (_rate(loads, json_bytes), mb_json),
    }
    print(f"{label}: {len(resources)} resources, mean {mb_xml * 1e3:.1f} kB XML / {mb_json * 1e3:.1f} kB JSON")
    for name, (per_second, mb) in rates.items():
        print(f"  {name:<31} {per_second:>9.0f} resources/s {per_second * mb:>7.1f} MB/s")


def main() -> None:
    started = time.perf_counter()
    resource_to_xml(_PATIENT)  # compiles the XML view of the definitions once
    print(f"XML schema from the R4 definitions: {time.perf_counter() - started:.2f} s (once per process)")
    _report("one Patient", [_PATIENT])
    examples = list(r4_examples().values())
    _report("official examples < 50 kB", [loads(raw) for raw in examples if len(raw) < 50_000])
    _report("all official examples", [loads(raw) for raw in examples])
