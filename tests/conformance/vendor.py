"""The records a vendor already holds, for the vendor-data checks: the KZ IG's valid examples under their
own ids (a clinic's data), each patient's Consent letting the kit's MIS organisation see them, and
deliberately broken variants for a server that stores invalid KZ content."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from conformance.consent import access_consent, grantees
from conformance.examples import valid_example, valid_refs
from fhir_server.api.app import create_app
from fhir_server.config import Settings

FHIR_JSON = {"content-type": "application/fhir+json"}
_HELD_TYPES = ("Organization", "Practitioner", "Patient", "Appointment", "Encounter", "Observation",
               "ServiceRequest", "MedicationRequest")


def vendor_records(org_bin: str) -> list[dict[str, Any]]:
    """The examples (AuditEvents are the server's own), and per patient an access Consent for ``org_bin``."""
    records = [valid_example(ref) or {} for kind in _HELD_TYPES for ref in valid_refs(kind)]
    consent = valid_example("Consent/kz-consent-1") or {}
    consent.pop("sourceReference", None)
    for ref in valid_refs("Patient"):
        grant = access_consent(consent, ref, grantees({"bin": org_bin}, None))
        records.append({**grant, "id": f"vendor-consent-{ref.split('/')[1]}"})
    return records


def broken_records() -> list[dict[str, Any]]:
    """Invalid KZ content a lenient server keeps: a wrong IIN check digit, a booking without service or
    start (MD-B 2, 4), a remote encounter without its form and channel (MD-D 1, 2)."""
    patient = copy.deepcopy(valid_example("Patient/kz-patient-1") or {})
    patient.update(id="vendor-bad-patient")
    patient["identifier"][0]["value"] = "850315300018"
    appointment = copy.deepcopy(valid_example("Appointment/kz-appointment-1") or {})
    appointment.update(id="vendor-bad-appointment")
    for key in ("serviceType", "start", "end"):
        appointment.pop(key, None)
    encounter = copy.deepcopy(valid_example("Encounter/kz-encounter-1") or {})
    encounter.update(id="vendor-bad-encounter", extension=[])
    return [patient, appointment, encounter]


async def seed(database: Path, key_path: Path, records: Sequence[dict[str, Any]], **overrides: Any) -> None:
    """PUT the records into ``database`` through an open-mode kzfhir (as a migration would load them)."""
    settings = Settings(database=database, dev_key_path=key_path, security_enabled=False, synchronous_full=False,
                        validate_on_write=False, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://seed.test"
    ) as client:
        for record in records:
            response = await client.put(f"/{record['resourceType']}/{record['id']}", json=record, headers=FHIR_JSON)
            assert response.status_code in (200, 201), (record["id"], response.text)
