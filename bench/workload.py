"""The side-by-side workload (issue 20, issue 11): Synthea transaction Bundles from the project's own copy
(tests/data/synthea-r4), at 1x or at N times the data with new ids, and the secure variant of the same
Bundles (each Patient and its Consent registered first, the Bundle pushed without its Patient entry).

Nx data: copy k of a Bundle has every UUID in it (ids, ``urn:uuid:`` full URLs and references, Synthea's
identifiers) replaced by a UUID derived from (k, UUID), so the copies are new patients with new records,
not updates of the first ones.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.data import synthea_bundle_bytes

#: the organisation (BIN) of the MIS whose ``system`` token pushes the Bundles in the secure case
BIN = "940140000385"
#: the practitioner who reads under the patients' Consents in the secure case
PRACTITIONER = "dr1"

_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_COPY_NS = uuid.UUID("6f1f0d9e-4d7b-4c53-9f0e-2f5c1b7a0d11")


@dataclass
class Bundle:
    """One transaction Bundle as sent, and what it holds."""

    raw: bytes
    entries: int
    patient_id: str
    observations: int
    #: the secure case: the Patient was registered before (``patient_id`` is its id) and is not in the Bundle
    registered: bool = False


@dataclass
class Workload:
    """The Bundles of one data scale; ``secure``: the same records as a secured MIS would push them."""

    bundles: list[Bundle]
    #: the secure case: each Patient (with its id) and its Consent, registered before the push
    registrations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def resources(self) -> int:
        return sum(b.entries for b in self.bundles)


def _renamed(raw: bytes, copy: int) -> bytes:
    if copy == 0:
        return raw
    return _UUID.sub(lambda m: str(uuid.uuid5(_COPY_NS, f"{copy}:{m.group().decode()}")).encode(), raw)


def consent(pid: str) -> dict[str, Any]:
    """The patient's Consent: the MIS (by its BIN) may collect, correct and access the record; the
    practitioner may access it (issue 5's reading under Consent)."""
    role = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]}

    def actions(*codes: str) -> list[dict[str, Any]]:
        return [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": c}]}
                for c in codes]

    return {"resourceType": "Consent", "id": f"c-{pid}"[:64], "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{pid}"}, "dateTime": "2025-01-01",
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                       "code": "OPTIN"}]},
            "provision": {"provision": [
                {"type": "permit",
                 "actor": [{"role": role, "reference": {"identifier": {"system": "https://fhir.kzfhir.kz/sid/bin",
                                                                       "value": BIN}}}],
                 "action": actions("access", "collect", "correct")},
                {"type": "permit",
                 "actor": [{"role": role, "reference": {"reference": f"Practitioner/{PRACTITIONER}"}}],
                 "action": actions("access")}]}}


def _describe(raw: bytes) -> Bundle:
    doc = json.loads(raw)
    entries = doc.get("entry", [])
    patient = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Patient")
    observations = sum(1 for e in entries if e["resource"]["resourceType"] == "Observation")
    return Bundle(raw, len(entries), str(patient["id"]), observations)


def _secured(raw: bytes) -> tuple[Bundle, dict[str, Any]]:
    """The Bundle without its Patient entry, its ``urn:uuid:`` references to the patient now ``Patient/id``."""
    doc = json.loads(raw)
    entries = doc["entry"]
    first = next(e for e in entries if e["resource"]["resourceType"] == "Patient")
    patient = first["resource"]
    pid = str(patient["id"])
    rest = json.dumps({**doc, "entry": [e for e in entries if e is not first]}, separators=(",", ":")).encode()
    rest = rest.replace(str(first["fullUrl"]).encode(), f"Patient/{pid}".encode())
    observations = sum(1 for e in entries if e["resource"]["resourceType"] == "Observation")
    return Bundle(rest, len(entries) - 1, pid, observations, registered=True), patient


def workload(bundles: int, scale: int = 1, *, secure: bool = False) -> Workload:
    """``bundles`` Synthea Bundles (at most the 75 the project holds) times ``scale`` copies."""
    base = synthea_bundle_bytes()
    if not 0 < bundles <= len(base):
        raise ValueError(f"bundles must be 1..{len(base)}, not {bundles}")
    raws = [_renamed(raw, copy) for copy in range(scale) for raw in base[:bundles]]
    if not secure:
        return Workload([_describe(raw) for raw in raws])
    out = Workload([])
    for raw in raws:
        bundle, patient = _secured(raw)
        out.bundles.append(bundle)
        out.registrations += [patient, consent(bundle.patient_id)]
    return out
