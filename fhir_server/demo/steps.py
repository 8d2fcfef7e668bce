"""How the sample dataset goes into a server that runs the secure default — every step in this one
module, so that a change of the access rules (issue 10) is adapted here and nowhere else.

1. **Directory** — organisations, practitioners, locations, schedules, slots: not patient data, so the
   MIS's ``system`` token maintains them with the ids of the data files (docs/security.md, "directory").
2. **Registration** — the Patient and their Consent, as one transaction of the MIS. Patient data never
   gets a client-chosen id under the policy (``update_as_create``), so the server assigns the ids; each
   resource carries its demo id as an identifier and is created conditionally on it (``ifNoneExist``),
   so loading twice changes nothing. The Consent goes in ``proposed`` (AC-04) when the policy lets the
   MIS register a patient with a consent still to be given; where it does not, as the organisation's
   record of the signed written form, ``active`` (AC-08).
3. **Consent, given** — the patient (a ``patient`` token with fhirUser = that Patient) updates their
   Consent to ``active``: a patient may always give their own consent (AC-01, AC-09).
4. **Clinical data** — appointments, encounters, conditions, observations and the remote-monitoring plan,
   one transaction under the ``system`` token the Consent now covers (it names the organisations by BIN).

The tokens are development tokens signed with the server's development key (``kzfhir token``).
"""

from __future__ import annotations

import uuid
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
#: The identifier system of the demo's own ids on patient data (whose ids the server assigns).
DEMO_ID = "https://fhir.kzfhir.kz/sid/kzfhir-demo"

Issue = Callable[..., str]  # issue(role, fhir_user, bin=None) -> bearer token


class DemoError(Exception):
    """A step the server refused: what, and the server's own words."""


@dataclass
class Loaded:
    record: dataset.PatientRecord
    patient_id: str  # as the server assigned it
    consent_id: str

    @property
    def reference(self) -> str:
        return f"Patient/{self.patient_id}"


@dataclass
class DemoResult:
    counts: Counter[str] = field(default_factory=Counter)
    patients: list[Loaded] = field(default_factory=list)
    system_bin: str = ""
    consent_recorded_as: str = ""  # proposed | active: which registration the server's policy took


def _bin(directory: dict[str, Any], organization: str) -> str:
    org = next(e["resource"] for e in directory["entry"] if e["resource"]["id"] == organization)
    value: str = org["identifier"][0]["value"]
    return value


async def _send(client: httpx.AsyncClient, token: str, method: str, url: str, body: dict[str, Any],
                step: str, *, quiet: frozenset[int] = frozenset()) -> httpx.Response:
    response = await client.request(method, url, content=orjson.dumps(body), headers={
        "Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON, "Accept": FHIR_JSON,
        "Prefer": "return=minimal"})
    if not response.is_success and response.status_code not in quiet:
        raise DemoError(f"{step}: {method} {url or '/'} answered {response.status_code}: {response.text[:500]}")
    return response


def _urn(key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{DEMO_ID}/{key}')}"


def _rewrite(node: Any, references: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: references.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, references)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite(v, references) for v in node]
    return node


def _server_ids(resources: list[dict[str, Any]], known: dict[str, str]) -> list[dict[str, Any]]:
    """Transaction entries creating ``resources`` with server-assigned ids, conditionally on their demo id;
    references among them become urn:uuid, references in ``known`` the ids the server gave."""
    references = {**known, **{f"{r['resourceType']}/{r['id']}": _urn(f"{r['resourceType']}/{r['id']}")
                              for r in resources}}
    entries = []
    for resource in resources:
        key = f"{resource['resourceType']}/{resource['id']}"
        body = _rewrite({k: v for k, v in resource.items() if k != "id"}, references)
        body["identifier"] = [*body.get("identifier", []), {"system": DEMO_ID, "value": resource["id"]}]
        condition = f"identifier={DEMO_ID}|{resource['id']}"
        entries.append({"fullUrl": references[key], "resource": body,
                        "request": {"method": "POST", "url": resource["resourceType"], "ifNoneExist": condition}})
    return entries


def _transaction(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _assigned(response: httpx.Response) -> list[str]:
    """The ``Type/id`` of each entry of a transaction-response, in entry order."""
    return ["/".join(str(e["response"]["location"]).split("/_history")[0].split("/")[-2:])
            for e in response.json()["entry"]]


async def _register(client: httpx.AsyncClient, system: str, record: dataset.PatientRecord,
                    result: DemoResult) -> tuple[str, str]:
    """Step 2: the Patient and their Consent; returns the ids the server gave them."""
    denied: httpx.Response | None = None
    for status in ("proposed", "active"):
        entries = _server_ids([record.patient, {**record.consent, "status": status}], {})
        response = await _send(client, system, "POST", "", _transaction(entries),
                               f"{record.reference}: registration", quiet=frozenset({403}))
        if response.is_success:
            result.consent_recorded_as = result.consent_recorded_as or status
            patient, consent = _assigned(response)
            return patient.split("/")[1], consent.split("/")[1]
        denied = response
    raise DemoError(f"{record.reference}: registration refused: {denied.text[:500] if denied else ''}")


async def load(client: httpx.AsyncClient, issue: Issue, weeks: int) -> DemoResult:
    """Run the four steps against ``client`` (its base URL is the FHIR base)."""
    directory = dataset.directory(weeks)
    result = DemoResult(system_bin=_bin(directory, MIS_ORGANIZATION))
    system = issue("system", None, bin=result.system_bin)
    await _send(client, system, "POST", "", directory, "directory")
    result.counts.update(e["resource"]["resourceType"] for e in directory["entry"])
    for record in dataset.patients(weeks):
        patient_id, consent_id = await _register(client, system, record, result)
        known = {record.reference: f"Patient/{patient_id}"}
        given = _rewrite({**record.consent, "id": consent_id, "status": "active"}, known)
        given["identifier"] = [{"system": DEMO_ID, "value": record.consent["id"]}]
        patient = issue("patient", f"Patient/{patient_id}")
        await _send(client, patient, "PUT", f"Consent/{consent_id}", given, f"{record.reference}: consent given")
        clinical = [e["resource"] for e in record.rest if e["resource"]["resourceType"] != "Patient"]
        await _send(client, system, "POST", "", _transaction(_server_ids(clinical, known)),
                    f"{record.reference}: clinical data")
        result.counts.update(["Patient", "Consent", *(r["resourceType"] for r in clinical)])
        result.patients.append(Loaded(record, patient_id, consent_id))
    return result
