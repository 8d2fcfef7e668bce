"""A small stand-in for the terminology service: the KZ code systems fixed in docs/kz-ig.md.

It answers only for the KZ value sets it knows (and "cannot tell" for everything else, so the core
fallback decides), which is exactly the ``check_membership`` contract the validator relies on.
"""

from __future__ import annotations

KZ = "https://fhir.kzfhir.kz"
CODES: dict[str, frozenset[str]] = {
    "kz-diagnosis-kind": frozenset({"main", "concomitant", "complication"}),
    "kz-diagnosis-type": frozenset({"preliminary", "final"}),
    "kz-disease-character": frozenset({"acute", "chronic-new", "chronic-known"}),
    "kz-remote-service-form": frozenset({"consultation", "consilium", "remote-monitoring"}),
    "kz-telecom-channel": frozenset({"video", "audio", "text", "wearable"}),
    "kz-funding-source": frozenset({"gobmp", "osms", "paid", "vhi", "other"}),
    "kz-observation-entry-method": frozenset({"device-automatic", "manual-patient", "manual-practitioner"}),
}


class KzTerminology:
    def __init__(self) -> None:
        self.calls = 0

    def check_membership(self, valueset_url: str, system: str | None, code: str) -> bool | None:
        self.calls += 1
        name = valueset_url.removeprefix(f"{KZ}/ValueSet/")
        if name not in CODES:
            return None
        if system is not None and system != f"{KZ}/CodeSystem/{name}":
            return False
        return code in CODES[name]
