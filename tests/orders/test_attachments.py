"""Documents and images exchanged during a consultation (TM-02): media types, sizes and a virus scan by a real
local clamd, on every write path (direct, transaction entries, conditional update). Security is on."""

from __future__ import annotations

import base64

import pytest

from tests.orders.conftest import OpenWorld
from tests.orders.doubles import EICAR, Clamd


def _message(content_type: str, raw: bytes) -> dict:
    return {"resourceType": "Communication", "status": "completed", "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": "Encounter/e1"}, "sender": {"reference": "Patient/p1"},
            "payload": [{"contentAttachment": {"contentType": content_type,
                                               "data": base64.b64encode(raw).decode()}}]}


@pytest.mark.req("TM-02")
async def test_media_types_and_sizes_are_limited_on_every_write_path(open_world: OpenWorld):
    async with open_world(attachment_max_bytes=1000) as w:
        patient = w.as_("Patient/p1")
        ok = await w.client.post("/Communication", json=_message("image/jpeg", b"\xff\xd8" + b"1" * 998),
                                 headers=patient)
        assert ok.status_code == 201, ok.text
        big = await w.client.post("/Communication", json=_message("image/jpeg", b"1" * 1001), headers=patient)
        assert big.status_code == 413
        assert big.json()["issue"][0]["expression"] == ["Communication.payload[0].contentAttachment.data"]
        exe = await w.client.post("/Communication", json=_message("application/x-msdownload", b"MZ"),
                                  headers=patient)
        assert exe.status_code == 415 and "not accepted" in exe.text
        untyped = _message("image/png", b"x")
        del untyped["payload"][0]["contentAttachment"]["contentType"]
        assert (await w.client.post("/Communication", json=untyped, headers=patient)).status_code == 400
        # the same rules inside a transaction and in a conditional update
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": _message("image/png", b"p"), "request": {"method": "POST", "url": "Communication"}},
            {"resource": {"resourceType": "DocumentReference", "status": "current",
                          "subject": {"reference": "Patient/p1"},
                          "content": [{"attachment": {"contentType": "text/html",
                                                      "data": base64.b64encode(b"<script>").decode()}}]},
             "request": {"method": "POST", "url": "DocumentReference"}}]}
        r = await w.client.post("/", json=bundle, headers=patient)
        assert r.status_code == 415, r.text
        r = await w.client.put("/DocumentReference?identifier=urn:x|1", headers=w.as_("Practitioner/dr1"), json={
            "resourceType": "DocumentReference", "status": "current", "subject": {"reference": "Patient/p1"},
            "identifier": [{"system": "urn:x", "value": "1"}],
            "content": [{"attachment": {"contentType": "application/pdf",
                                        "data": base64.b64encode(b"%" * 2000).decode()}}]})
        assert r.status_code == 413
        found = await w.client.get("/Communication?subject=Patient/p1", headers=patient)
        assert len(found.json()["entry"]) == 1  # only the accepted message was stored


@pytest.mark.req("TM-02")
@pytest.mark.req("TM-21")
async def test_attachments_are_virus_scanned_before_anything_is_stored(open_world: OpenWorld):
    with Clamd() as clamd:
        async with open_world(attachment_scanner=clamd.url) as w:
            doctor = w.as_("Practitioner/dr1")
            clean = {"resourceType": "Media", "status": "completed", "subject": {"reference": "Patient/p1"},
                     "content": {"contentType": "image/png", "data": base64.b64encode(b"\x89PNG clean").decode()}}
            assert (await w.client.post("/Media", json=clean, headers=doctor)).status_code == 201
            infected = _message("text/plain", b"hello " + EICAR)
            r = await w.client.post("/Communication", json=infected, headers=w.as_("Patient/p1"))
            assert r.status_code == 422 and r.json()["issue"][0]["code"] == "security"
            assert "Eicar" in r.text
            assert clamd.scanned == [b"\x89PNG clean", b"hello " + EICAR]
            binary = {"resourceType": "Binary", "contentType": "application/pdf",
                      "securityContext": {"reference": "Patient/p1"}, "data": base64.b64encode(EICAR).decode()}
            assert (await w.client.post("/Binary", json=binary, headers=doctor)).status_code == 422
        clamd.server.shutdown()
        clamd.server.server_close()
        async with open_world(attachment_scanner=clamd.url) as w:  # a scanner that cannot answer: not stored
            r = await w.client.post("/Media", json=clean, headers=w.as_("Practitioner/dr1"))
            assert r.status_code == 502
            stored = (await w.client.get("/Media", headers=w.as_("Practitioner/dr1"))).json()["entry"]
            assert len(stored) == 1  # the clean image of before, nothing since
