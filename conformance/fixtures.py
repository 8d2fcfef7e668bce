"""Resources the checks build on, created on the server on first need and deleted at the end of the run.

``ensure("Patient/kz-patient-1")`` posts the KZ example of that id (after ensuring what it references),
or a minimal stub for referenced types the IG ships no example of, and returns the server's id. So any
subset of checks can run alone: a search check creates the patient it searches for.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx

from conformance.consent import access_consent, grantees
from conformance.examples import (
    BIN_SYSTEM,
    IIN_SYSTEM,
    Ref,
    fresh_iin,
    identifier_value,
    references,
    rewrite,
    valid_example,
    valid_refs,
)
from conformance.expect import diagnostics, expect_status
from conformance.http import FhirClient, json_body
from conformance.identities import Cast, Identity, Minter
from conformance.model import CheckFailed, CheckSkipped

__all__ = ["Fixtures", "created_id"]

_PATIENT = "Patient/kz-patient-1"
_ICD10 = "http://hl7.org/fhir/sid/icd-10"


def _stub(resource_type: str, patient: str) -> dict[str, Any] | None:
    """Minimal valid R4 resources for targets the KZ examples reference but the IG has no example of."""
    stubs: dict[str, dict[str, Any]] = {
        "Condition": {"subject": {"reference": patient},
                      "code": {"coding": [{"system": _ICD10, "code": "J06.9"}], "text": "J06.9"}},
        "Device": {"deviceName": [{"name": "pulse oximeter", "type": "user-friendly-name"}]},
        "Medication": {"code": {"coding": [{"system": "http://www.whocc.no/atc", "code": "C08CA01"}]}},
        "DocumentReference": {"status": "current", "subject": {"reference": patient},
                              "content": [{"attachment": {"contentType": "application/pkcs7-signature",
                                                          "title": "signed consent form"}}]},
        "RelatedPerson": {"patient": {"reference": patient}, "active": True,
                          "name": [{"family": "Серікбаева", "given": ["Айгүл"]}]},
    }
    body = stubs.get(resource_type)
    return {"resourceType": resource_type, **body} if body is not None else None


def _writer_bin() -> str | None:
    """The BIN the writer's Consent names when its token carries none: the example organisation's."""
    return identifier_value(valid_example("Organization/kz-organization-1") or {}, BIN_SYSTEM)


def _located(entry: Any) -> str:
    """``Type/id`` of a transaction-response entry's ``response.location``."""
    location = str(((entry or {}).get("response") or {}).get("location") or "") if isinstance(entry, dict) else ""
    parts = location.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else ""


def created_id(response: httpx.Response) -> str | None:
    """The id the server assigned: from the body, else from Location ``[base]/Type/id/_history/v``."""
    body = json_body(response)
    if body and isinstance(body.get("id"), str):
        return str(body["id"])
    parts = response.headers.get("location", "").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return parts[-1] if len(parts) >= 2 and parts[-1] else None


class Fixtures:
    def __init__(self, client: FhirClient, claims: dict[str, Any], rng: random.Random | None = None,
                 minter: Minter | None = None, cast: Cast | None = None) -> None:
        self.client = client
        self.claims = claims
        self.minter = minter  # tokens for the patients the kit registers (a development deployment)
        self.cast = cast  # the vendor's test identities (a patient among them)
        self.rng = rng or random.Random()
        self.ids: dict[str, str] = {}  # example reference -> id on the server
        self.created: list[str] = []  # "Type/id" the kit created, in order (cleanup deletes them)
        self.access_consents: list[str] = []  # deleted last: they are what lets the kit delete the rest
        self.owners: dict[str, Identity] = {}  # "Type/id" -> the test identity that created it (cleanup)
        self.iins = {old: fresh_iin(old, self.rng) for old in self._example_iins()}
        self._pending: set[str] = set()

    @staticmethod
    def _example_iins() -> list[str]:
        found = (identifier_value(valid_example(ref) or {}, IIN_SYSTEM)
                 for kind in ("Patient", "Practitioner") for ref in valid_refs(kind))
        return [iin for iin in found if iin]

    def iin_of(self, ref: str) -> str:
        """The IIN this run gave the example ``ref`` (a Patient or Practitioner)."""
        original = identifier_value(valid_example(ref) or {}, IIN_SYSTEM)
        if original is None:
            raise KeyError(ref)
        return self.iins[original]

    def track(self, resource_type: str, resource_id: str, owner: Identity | None = None) -> None:
        """Remember a resource for cleanup; ``owner``: the test identity that created it, which deletes it
        first (the writer may have no consent for that identity's patient)."""
        self.created.append(f"{resource_type}/{resource_id}")
        if owner is not None:
            self.owners[f"{resource_type}/{resource_id}"] = owner

    async def adapt(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Create what ``resource`` references (examples and stubs), then re-target its references."""
        for ref in references(resource):
            if ref.key not in self.ids and self._producible(ref):
                await self.ensure(ref.key)
        return rewrite(resource, self._target, self.iins)

    def _target(self, ref: Ref) -> str | None:
        server_id = self.ids.get(ref.key)
        return f"{ref.type}/{server_id}" if server_id else None

    @staticmethod
    def _producible(ref: Ref) -> bool:
        return valid_example(ref.key) is not None or _stub(ref.type, _PATIENT) is not None

    async def ensure(self, ref: str) -> str:
        """The server id of the example (or stub) ``ref``, creating it on first use."""
        if ref in self.ids:
            return self.ids[ref]
        if ref in self._pending:
            raise CheckFailed(f"the KZ examples reference each other in a cycle through {ref}")
        self._pending.add(ref)
        try:
            resource = await self._source(ref)
            server_id = await self.create(await self.adapt(resource), doing=f"creating {ref} (KZ example)")
            self.ids[ref] = server_id
            if ref.startswith("Patient/"):
                await self.ensure_access(server_id)
        finally:
            self._pending.discard(ref)
        return server_id

    async def _source(self, ref: str) -> dict[str, Any]:
        example = valid_example(ref)
        if example is not None:
            return example
        stub = _stub(ref.split("/")[0], _PATIENT)
        if stub is None:
            raise CheckFailed(f"the kit has no example or stub for {ref}")
        return stub

    async def create(self, resource: dict[str, Any], *, doing: str) -> str:
        """POST ``resource``; 201 (or 200) expected. The new resource is tracked for cleanup. A Patient the
        policy will not let the writer create without consent is registered with it (``_register``)."""
        resource_type = str(resource["resourceType"])
        response = await self.client.post(resource_type, json=resource)
        if resource_type == "Patient" and response.status_code == 403:
            return await self._register(resource, doing)
        expect_status(self.client, response, 201, 200, doing=doing)
        server_id = created_id(response)
        if server_id is None:
            raise CheckFailed(f"{doing}: the response names no id (no body id, no Location header)")
        self.track(resource_type, server_id)
        return server_id

    async def _register(self, patient: dict[str, Any], doing: str) -> str:
        response, patient_id = await self.register(patient, doing)
        if patient_id is None:
            expect_status(self.client, response, 200, doing=f"{doing} (with its consent, in a transaction)")
            raise CheckFailed(f"{doing}: the transaction-response names no patient")
        return patient_id

    async def register(self, patient: dict[str, Any], doing: str) -> tuple[httpx.Response, str | None]:
        """The patient and the writer's access Consent in one transaction, as an MIS registers a patient
        whose signed consent form it holds (AC-08): the policy judges the Patient with the Consent of the
        same Bundle (docs/security.md §6). The transaction's answer, and the new patient's id when it was
        accepted (tracked for cleanup, its consent activated)."""
        full_url = f"urn:uuid:{uuid.uuid4()}"
        consent = await self.consent_for(full_url, grantees(self.claims, _writer_bin()))
        def bundle(consent: dict[str, Any]) -> dict[str, Any]:
            return {"resourceType": "Bundle", "type": "transaction", "entry": [
                {"fullUrl": full_url, "resource": patient, "request": {"method": "POST", "url": "Patient"}},
                {"resource": consent, "request": {"method": "POST", "url": "Consent"}}]}

        response = await self.client.post("", json=bundle(consent))
        proposed = response.status_code == 403 and self.minter is not None  # a new patient: only minted tokens
        if proposed:
            # A server that lets an organisation record an active Consent only as the patient's signed form
            # (AC-08) registers the patient with a consent *request* (AC-04), which the patient activates.
            response = await self.client.post("", json=bundle({**consent, "status": "proposed"}))
        if response.status_code != 200:
            return response, None
        patient_ref, consent_ref = (_located(e) for e in ((json_body(response) or {}).get("entry") or [{}, {}])[:2])
        if not patient_ref.startswith("Patient/") or not consent_ref.startswith("Consent/"):
            raise CheckFailed(f"{doing}: the transaction-response locates {patient_ref!r}, {consent_ref!r}")
        patient_id = patient_ref.split("/", 1)[1]
        self.track("Patient", patient_id)
        self.access_consents.append(consent_ref)
        if proposed:
            await self._activate(patient_id, consent_ref, doing)
        return response, patient_id

    def owner(self, patient_id: str) -> Identity | None:
        """A token of the patient themself: the vendor's test patient, or one the kit mints (dev)."""
        reference = f"Patient/{patient_id}"
        if self.cast is not None and self.cast.patient is not None and self.cast.patient.reference == reference:
            return self.cast.patient
        if self.minter is None:
            return None
        identity = Identity("patient", self.minter("patient", reference), reference)
        self.client.secrets.add(identity.token)
        return identity

    async def _activate(self, patient_id: str, consent_ref: str, doing: str) -> None:
        """The patient activates the consent request the kit recorded for them."""
        owner = self.owner(patient_id)
        assert owner is not None
        current = await self.client.get(consent_ref, identity=owner)
        expect_status(self.client, current, 200, doing=f"{doing}: the patient reads the consent request")
        active = {**(json_body(current) or {}), "status": "active"}
        updated = await self.client.put(consent_ref, json=active, identity=owner)
        expect_status(self.client, updated, 200, doing=f"{doing}: the patient activates the consent")
        self.owners[consent_ref] = owner

    async def consent_for(self, patient_ref: str, actors: list[dict[str, Any]]) -> dict[str, Any]:
        """The kit's KZ access Consent of ``patient_ref`` (a reference or a urn:uuid) granting ``actors``."""
        example = valid_example("Consent/kz-consent-1") or {}
        # Its sourceReference is a DocumentReference: patient data, which cannot be written before consent.
        example.pop("sourceReference", None)
        example["patient"] = {"reference": patient_ref}  # set before adapt: no example patient is created
        example["performer"] = [{"reference": patient_ref}]
        return access_consent(await self.adapt(example), patient_ref, actors)

    async def ensure_access(self, patient_id: str) -> None:
        """Read the new patient back; if the policy refuses (403), record an access Consent and retry."""
        response = await self.client.get(f"Patient/{patient_id}")
        if response.status_code not in (403, 404):  # refused, or hidden as if absent
            return
        consent = await self.consent_for(f"Patient/{patient_id}", grantees(self.claims, _writer_bin()))
        recorded = await self.client.post("Consent", json=consent)
        owner = self.owner(patient_id)
        if recorded.status_code == 403 and owner is not None:
            # the server takes an active Consent only from the patient (or their signed form, AC-08)
            recorded = await self.client.post("Consent", json=consent, identity=owner)
            if recorded.status_code in (200, 201) and created_id(recorded):
                self.owners[f"Consent/{created_id(recorded)}"] = owner
        consent_id = created_id(recorded) if recorded.status_code in (200, 201) else None
        if consent_id is None:
            raise CheckSkipped(f"no consent: reading Patient/{patient_id} needs a Consent and the server "
                               f"refused the kit's ({recorded.status_code}: {diagnostics(recorded)})")
        self.access_consents.append(f"Consent/{consent_id}")
        retry = await self.client.get(f"Patient/{patient_id}")
        if retry.status_code in (403, 404):
            raise CheckSkipped(f"no consent: Patient/{patient_id} stays unreadable after recording "
                               f"Consent/{consent_id} ({diagnostics(retry)})")
