"""Consent via the e-government portal cabinet (AC-06): the cabinet adapter (system role) sends a signed,
versioned message (docs/schemas/egov-consent-v1.json); the server checks the signature, the schema and the
message's age, records the patient's Consent through the one write path (then the doctor it names may read),
revokes it on a later message, and tells the cabinet through the outbox — a real local HTTP receiver checks
the receipts' HMAC. Forged, stale, malformed and foreign messages are refused and audited. Security is on."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fhir_server.jobs.runtime import build_worker
from fhir_server.security.refs import IIN_SYSTEM
from fhir_server.telemed.egov_cabinet import CHANNEL_CODE, sign
from tests.orders.conftest import OpenWorld, World

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cabinet-shared-secret-for-tests"
IIN = "850315300019"
EXTRA: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "p3", "identifier": [{"system": IIN_SYSTEM, "value": IIN}],
     "name": [{"family": "Жумабаева"}]},
    {"resourceType": "Practitioner", "id": "dr3", "name": [{"family": "Сериков"}]},
    {"resourceType": "Observation", "id": "o3", "status": "final", "code": {"text": "glucose"},
     "subject": {"reference": "Patient/p3"}, "valueString": "5.1"},
]


@dataclass
class CabinetReceiver:
    """The cabinet's side: a real HTTP server on 127.0.0.1 that keeps what it is sent and answers 200."""

    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/cabinet/receipts"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not await reader.readline():  # a connection closed before any request (a client's spare one)
            writer.close()
            return
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        self.received.append((headers, await reader.readexactly(int(headers.get("content-length", "0")))))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


def message(action: str = "give", *, iin: str = IIN, issued: datetime | None = None, **extra: Any) -> str:
    body: dict[str, Any] = {"format": "kz-egov-consent", "version": "1", "messageId": str(uuid.uuid4()),
                            "issued": (issued or datetime.now(UTC)).isoformat(timespec="seconds"),
                            "action": action, "patient": {"iin": iin}, "consentId": "EGOV-2026-000042"}
    if action == "give":
        body["grantee"] = {"practitioner": "Practitioner/dr3"}
        body["actions"] = ["access", "use"]
    return json.dumps({**body, **extra}, ensure_ascii=False)


async def send(w: World, text: str, headers: dict[str, str], *, signature: str | None = None) -> Any:
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "message", "valueString": text},
        {"name": "signature", "valueString": signature or sign(SECRET, text)}]}
    return await w.client.post("/Consent/$egov-consent", json=params, headers=headers)


@pytest.mark.req("AC-06")
@pytest.mark.req("AC-18")
async def test_a_consent_given_and_revoked_in_the_cabinet_opens_and_closes_access_and_the_cabinet_is_told(
        open_world: OpenWorld) -> None:
    cabinet = CabinetReceiver()
    url = await cabinet.start()
    try:
        # the cabinet adapter also takes the patient's notices of use (AC-18) through the notification webhook
        async with open_world(EXTRA, egov_cabinet_secret=SECRET, egov_cabinet_url=url, notify_webhook_secret=SECRET,
                              notify_webhook_url=url.replace("/receipts", "/notices")) as w:
            await w.app.state.outbox_worker.stop()  # the test drives the deliveries itself
            adapter = w.auth("system", bin="940140000385")
            doctor, patient = w.as_("Practitioner/dr3"), w.as_("Patient/p3")
            assert (await w.client.get("/Observation/o3", headers=doctor)).status_code == 404

            # refused: not the adapter, a forged signature, a stale message, an unknown IIN, a malformed one
            given = message()
            assert (await send(w, given, doctor)).status_code == 403
            assert (await send(w, given, adapter, signature="sha256=" + "0" * 64)).status_code == 403
            stale = await send(w, message(issued=datetime.now(UTC) - timedelta(hours=2)), adapter)
            assert stale.status_code == 422 and "stale" in stale.text
            assert (await send(w, message(iin="990101300015"), adapter)).status_code == 422
            bad = await send(w, message(grantee={"bin": "12"}), adapter)
            assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["message"]
            assert (await w.client.get("/Observation/o3", headers=doctor)).status_code == 404

            r = await send(w, given, adapter)
            assert r.status_code == 201, r.text
            consent = r.json()["parameter"][1]["valueReference"]["reference"]
            assert (await w.client.get("/Observation/o3", headers=doctor)).status_code == 200
            again = await send(w, message(), adapter)  # the cabinet resends: nothing new is written
            assert again.status_code == 200 and again.json()["parameter"][0]["valueCode"] == "already-recorded"
            mine = (await w.client.get("/Consent?patient=Patient/p3", headers=patient)).json()
            assert [f"Consent/{e['resource']['id']}" for e in mine["entry"]] == [consent]
            stored = mine["entry"][0]["resource"]
            assert stored["meta"]["tag"][0]["code"] == CHANNEL_CODE and stored["status"] == "active"
            assert given == json.loads(base64.b64decode(stored["sourceAttachment"]["data"]))["message"]

            r = await send(w, message("revoke"), adapter)
            assert r.status_code == 200 and r.json()["parameter"][0]["valueCode"] == "revoked", r.text
            assert (await w.client.get("/Observation/o3", headers=doctor)).status_code == 404

            # the cabinet is told: each receipt signed with the shared secret, rejections too
            worker = build_worker(w.settings, w.store, services=w.app.state.services, base_backoff=0.0)
            assert worker is not None
            for _ in range(4):
                await worker.run_once()
            receipts = []
            for headers, body in cabinet.received:
                digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                assert headers["x-kzfhir-signature"] == f"sha256={digest}"
                receipts.append(json.loads(body))
            outcomes = sorted(r["payload"]["outcome"] for r in receipts if r["topic"] == "egov-cabinet")
            assert outcomes == ["recorded", "rejected", "revoked"]  # the stale message; the resend wrote nothing
            # and the patient hears there of the doctor's read under the cabinet consent (AC-18)
            notices = [r["payload"] for r in receipts if r["topic"] == "notification"]
            assert any(n.get("patient") == "Patient/p3" and "Practitioner/dr3" in json.dumps(n) and "Observation/o3"
                       in json.dumps(n) for n in notices), notices

            await w.store.audit.sync()
            events = [e for _, e in await w.store.audit.events("Patient/p3", 200)]
            assert any(e.get("action") == "C" and consent in str(e.get("entity")) for e in events)
            assert any(e.get("outcome") != "0" and "stale" in str(e.get("outcomeDesc")) for e in events)
    finally:
        await cabinet.stop()


def test_the_published_schema_is_the_one_the_server_checks() -> None:
    served = ROOT / "fhir_server" / "telemed" / "data" / "egov-consent-v1.json"
    assert served.read_bytes() == (ROOT / "docs" / "schemas" / "egov-consent-v1.json").read_bytes()
