"""NEHP and payment delivery on their own (TM-11, TM-13, TM-19; issue 19 §8).

With ``KZFHIR_NEHP_AUTO_SUBMIT=true`` a remote-service Encounter (class ``v3-ActCode#VR``) that becomes
``finished`` queues, in its own write unit, a build request (outbox topic ``nehp-build``, key
``build:Encounter/{id}/{version}``). The outbox worker hands it to :class:`RecordBuilder`, which gathers the
service as ``$nehp-submit`` does (operations/nehp_submit.py ``collect``: one rule), builds the MD-D record and
queues the NEHP message and the claim line (topics ``nehp`` and ``payment``) with the submission's topic event.
A record that misses MD-D items is retried with backoff (the doctor may add the diagnosis after closing the
visit) and given up after the worker's last attempt: it then shows in ``$deliveries``. So is a record one of
whose inputs is blocked (AC-26): it is sent once the block is lifted, within the worker's attempts.

The NEHP and the payment system answer an acknowledgement (``mappings/nehp/ack-v1.json``, published in
``docs/schemas/``), validated with jsonschema. ``accepted``: the receiver's id is documented with the delivery
(AuditEvent entity detail ``acknowledgement``, TM-13 receipt) and, for the NEHP, written back to the Encounter
as ``identifier`` ``https://fhir.kzfhir.kz/sid/nehp-record`` (visible on the record, and sent with later
records as ``nehpId``). ``rejected`` (or a 4xx answer carrying such an acknowledgement): given up at once, the
reason in the outbox row and in ``$deliveries``. An empty 2xx answer is a delivery without receipt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from typing import Any

import orjson
from jsonschema import Draft202012Validator

from fhir_server.jobs.channels import DeliveryError, RejectedError, WebhookChannel
from fhir_server.jsonio import reload
from fhir_server.storage.protocols import StoredResource, TxView

BUILD_TOPIC = "nehp-build"
NEHP_RECORD_SYSTEM = "https://fhir.kzfhir.kz/sid/nehp-record"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#: what an acknowledgement handler does with an accepted message: (topic, key, payload, id)
OnAck = Callable[[str, str, dict[str, Any], str], Awaitable[None]]


@cache
def ack_validator() -> Draft202012Validator:
    schema = json.loads(resources.files("mappings.nehp").joinpath("ack-v1.json").read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def ack_errors(ack: Any) -> list[str]:
    """What is wrong with an acknowledgement by ``ack-v1.json`` (empty: it is valid)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in ack_validator().iter_errors(ack)]


def is_remote(encounter: dict[str, Any]) -> bool:
    cls = encounter.get("class") or {}
    return isinstance(cls, dict) and cls.get("system") == ACT_CODE and cls.get("code") == "VR"


def finished_service(view: TxView, services: Any, previous: bytes | None, resource: dict[str, Any],
                     stored: StoredResource) -> None:
    """A change hook: a remote service that has just become ``finished`` asks for its record to be built."""
    if resource.get("resourceType") != "Encounter" or resource.get("status") != "finished" or \
            not is_remote(resource):
        return
    if previous is not None and orjson.loads(previous).get("status") == "finished":
        return  # not a new end of the service: an amendment, or the NEHP id written back
    patient = (resource.get("subject") or {}).get("reference")
    ref = f"Encounter/{stored.id}"
    view.enqueue(BUILD_TOPIC, patient if isinstance(patient, str) else None, f"build:{ref}/{stored.version}",
                 orjson.dumps({"encounter": ref, "version": stored.version}))


async def blocked_inputs(encounter: dict[str, Any], inputs: dict[str, dict[str, Any]],
                         find: Callable[[str, list[tuple[str, str]]], Awaitable[list[dict[str, Any]]]]) -> list[str]:
    """The inputs of the record that a block in force names (AC-26: a blocked record is not disseminated,
    not even to the NEHP, until the block is lifted; security/policy/blocking.py)."""
    from fhir_server.security.policy.blocking import block_in_force, blocked_references

    patient = (encounter.get("subject") or {}).get("reference")
    if not isinstance(patient, str) or not patient.startswith("Patient/"):
        return []
    now, blocked = time.time(), set()
    for flag in await find("Flag", [("patient", patient)]):
        if block_in_force(flag, patient.partition("/")[2], now):
            blocked |= blocked_references(flag)
    return sorted(blocked & set(inputs))


class RecordBuilder:
    """The channel of topic ``nehp-build``: the server itself turns the finished service into the queued NEHP
    message and claim line (TM-11 asks the organisation to send; no user request is involved)."""

    name = "nehp-record"
    endpoint = None

    def __init__(self, services: Any) -> None:
        self.services = services

    async def deliver(self, topic: str, key: str, payload: dict[str, Any]) -> str | None:
        from fhir_server.jobs.runtime import NEHP_TOPIC, PAYMENT_TOPIC
        from fhir_server.operations.nehp_submit import collect
        from fhir_server.search import parse_search
        from fhir_server.subscriptions.events import emit
        from fhir_server.subscriptions.topics import NEHP_SUBMISSION, Event
        from mappings import build_record
        from mappings.nehp import get_adapter
        from mappings.payment import claim_line_from_record
        from mappings.payment.claim_line import to_json as line_json

        store, settings = self.services.store, self.services.settings
        ref = str(payload.get("encounter"))
        stored = await store.read("Encounter", ref.partition("/")[2])
        if stored is None or stored.deleted or stored.data is None:
            return None  # destroyed or deleted since: nothing to send
        encounter = reload(stored.data)
        if encounter.get("status") != "finished":
            return None  # reopened or entered in error since

        async def find(rtype: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
            found = []
            for t, rid in await store.search_ids(parse_search(rtype, params, strict=True), 200):
                res = await store.read(t, rid)
                if res is not None and not res.deleted and res.data is not None:
                    found.append(reload(res.data))
            return found

        async def read(target: str) -> dict[str, Any] | None:
            rtype, _, rid = target.partition("/")
            res = await store.read(rtype, rid)
            return None if res is None or res.deleted or res.data is None else reload(res.data)

        inputs = await collect(encounter, find, read)
        held = await blocked_inputs(encounter, inputs, find)
        if held:  # retried with backoff: sent once the block is lifted, else given up and listed in $deliveries
            raise DeliveryError(f"the record of {ref} is held: {', '.join(held)} blocked from processing (AC-26)")
        record = build_record(inputs, ref, relaxed_iin=settings.relaxed_iin)
        if not record.ok:
            raise DeliveryError(f"the record of {ref} misses MD-D items "
                                f"{', '.join(map(str, record.missing_items)) or '(invalid values)'}")
        message = get_adapter(settings.nehp_format).to_message(record)
        claim = claim_line_from_record(record)
        partition = record.patient.reference if record.patient is not None else None
        queued_before = partition is not None and any(
            item.key == record.record_id for item in await store.outbox_partition(NEHP_TOPIC, partition, 1000))

        def unit(view: TxView) -> None:
            view.enqueue(NEHP_TOPIC, partition, record.record_id, message)
            if claim.line is not None:
                view.enqueue(PAYMENT_TOPIC, partition, claim.line.line_id, orjson.dumps(line_json(claim.line)))
            if not queued_before:  # the submission's topic event, once per record (as $nehp-submit)
                emit(view, self.services, Event(NEHP_SUBMISSION, encounter, code="submitted"), stored,
                     in_write_unit=False)

        await store.transaction(unit)
        return record.record_id


class AcknowledgedChannel(WebhookChannel):
    """A webhook whose receiver answers an ``ack-v1`` acknowledgement (the NEHP, the payment system)."""

    def __init__(self, url: str, secret: str | None = None, *, on_ack: OnAck | None = None,
                 timeout: float = 10.0) -> None:
        super().__init__(url, secret, timeout)
        self.on_ack = on_ack

    async def deliver(self, topic: str, key: str, payload: dict[str, Any]) -> str | None:
        r = await self.post(topic, key, payload)
        if r.status_code >= 500 or r.status_code in (408, 429):
            raise DeliveryError(f"{self.endpoint} answered {r.status_code}")
        if not r.content.strip():
            if r.status_code >= 300:
                raise DeliveryError(f"{self.endpoint} answered {r.status_code}")
            return None  # delivered without a receipt
        try:
            ack = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            ack = None
        errors = ack_errors(ack) if ack is not None else ["not JSON"]
        if errors:
            raise DeliveryError(f"{self.endpoint} answered {r.status_code} with an unusable acknowledgement: "
                                f"{'; '.join(errors)[:300]}")
        if ack["message"] != key:
            raise DeliveryError(f"{self.endpoint} acknowledged {ack['message']!r}, not {key!r}")
        if ack["status"] == "rejected":
            raise RejectedError(f"rejected by {self.endpoint}: {ack['reason']}")
        if r.status_code >= 300:
            raise DeliveryError(f"{self.endpoint} answered {r.status_code}")
        if self.on_ack is not None:
            await self.on_ack(topic, key, payload, str(ack["id"]))
        return str(ack["id"])


def encounter_of(payload: dict[str, Any]) -> str | None:
    """The Encounter a NEHP message is about: ``source.encounter`` of the JSON message, the Encounter entry of
    the FHIR document."""
    source = payload.get("source")
    if isinstance(source, dict) and isinstance(source.get("encounter"), str):
        return str(source["encounter"])
    for entry in payload.get("entry", []) or []:
        res = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(res, dict) and res.get("resourceType") == "Encounter" and isinstance(res.get("id"), str):
            return f"Encounter/{res['id']}"
    return None


def write_back(services: Any) -> OnAck:
    """The NEHP's id of an accepted record onto the Encounter (``identifier`` nehp-record), written by the
    server as a new version; idempotent, so a redelivery's same answer writes nothing."""
    from fhir_server.interactions.write import store_version

    async def on_ack(topic: str, key: str, payload: dict[str, Any], ack_id: str) -> None:
        ref = encounter_of(payload)
        if ref is None or not ref.startswith("Encounter/"):
            return
        rid = ref.partition("/")[2]

        def unit(view: TxView) -> None:
            current = view.current("Encounter", rid)
            if current is None or current.deleted or current.data is None:
                return
            encounter = orjson.loads(current.data)
            ids = [i for i in encounter.get("identifier", []) or [] if isinstance(i, dict)]
            if any(i.get("system") == NEHP_RECORD_SYSTEM and i.get("value") == ack_id for i in ids):
                return
            encounter["identifier"] = [*(i for i in ids if i.get("system") != NEHP_RECORD_SYSTEM),
                                       {"system": NEHP_RECORD_SYSTEM, "value": ack_id}]
            store_version(view, services, encounter, "Encounter", rid, current.version + 1, "PUT")

        await services.store.transaction(unit)

    return on_ack
