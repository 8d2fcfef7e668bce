"""How the sample dataset goes into a server that runs the secure default — every step in this one
module, so that a change of the access rules (issue 10) is adapted here and nowhere else.

1. **Directory** — organisations, practitioners, locations, schedules, slots: not patient data, so the
   MIS's ``system`` token maintains them (docs/security.md, "directory").
2. **Consent, asked** — the MIS records each patient's Consent as ``proposed`` (AC-04: recording a
   consent to be given), before anything of the patient is stored.
3. **Consent, given** — the patient (a ``patient`` token with fhirUser = that Patient) makes it
   ``active``: a patient may always activate their own consent (AC-01, AC-09).
4. **Clinical data** — the Patient and their appointments, encounters, conditions, observations and
   remote-monitoring plan, as one transaction under the ``system`` token the Consent now covers
   (it names the organisations by BIN, AC-08).

The tokens are development tokens signed with the server's development key (``kzfhir token``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from fhir_server.demo import dataset

FHIR_JSON = "application/fhir+json"
#: The organisation whose MIS loads the data (its BIN is named in every patient's Consent).
MIS_ORGANIZATION = "demo-org-telemed"
DOCTOR = "Practitioner/demo-dr-therapist"

Issue = Callable[..., str]  # issue(role, fhir_user, bin=None) -> bearer token


class DemoError(Exception):
    """A step the server refused: what, and the server's own words."""


@dataclass
class DemoResult:
    counts: Counter[str] = field(default_factory=Counter)
    patients: list[dataset.PatientRecord] = field(default_factory=list)
    system_bin: str = ""


def _bin(directory: dict[str, Any], organization: str) -> str:
    org = next(e["resource"] for e in directory["entry"] if e["resource"]["id"] == organization)
    value: str = org["identifier"][0]["value"]
    return value


async def _send(client: httpx.AsyncClient, token: str, method: str, url: str, body: dict[str, Any],
                step: str) -> httpx.Response:
    response = await client.request(method, url, content=orjson.dumps(body), headers={
        "Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON, "Accept": FHIR_JSON,
        "Prefer": "return=minimal"})
    if not response.is_success:
        detail = response.text[:500]
        raise DemoError(f"{step}: {method} {url or '/'} answered {response.status_code}: {detail}")
    return response


def _transaction(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def load(client: httpx.AsyncClient, issue: Issue, weeks: int) -> DemoResult:
    """Run the four steps against ``client`` (its base URL is the FHIR base)."""
    directory = dataset.directory(weeks)
    result = DemoResult(system_bin=_bin(directory, MIS_ORGANIZATION))
    system = issue("system", None, bin=result.system_bin)
    await _send(client, system, "POST", "", directory, "directory")
    result.counts.update(e["resource"]["resourceType"] for e in directory["entry"])
    for record in dataset.patients(weeks):
        consent_url = f"Consent/{record.consent['id']}"
        asked = {**record.consent, "status": "proposed"}
        await _send(client, system, "PUT", consent_url, asked, f"{record.reference}: consent asked")
        patient = issue("patient", record.reference)
        await _send(client, patient, "PUT", consent_url, record.consent, f"{record.reference}: consent given")
        await _send(client, system, "POST", "", _transaction(record.rest), f"{record.reference}: clinical data")
        result.counts["Consent"] += 1
        result.counts.update(e["resource"]["resourceType"] for e in record.rest)
        result.patients.append(record)
    return result
