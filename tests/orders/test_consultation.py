"""The remote consultation itself (TM-02, TM-20, TM-21): its telecom session started, joined and ended through
a real local video service, messages, documents and images exchanged during it, and the join links kept
from everyone outside the appointment's participants on every path. Security is on throughout."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.orders.conftest import KZ, OpenWorld
from tests.orders.doubles import VideoService

SESSION = f"{KZ}/StructureDefinition/kz-telecom-session"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()


def _session(encounter: dict) -> dict[str, list]:
    (ext,) = [e for e in encounter.get("extension", []) if e["url"] == SESSION]
    out: dict[str, list] = {}
    for sub in ext["extension"]:
        out.setdefault(sub["url"], []).append(next(v for k, v in sub.items() if k.startswith("value")))
    return out


async def _settings(video: VideoService) -> dict[str, object]:
    return {"video_service_url": await video.start(), "video_service_token": video.token,
            "video_service_name": "kz-video"}


@pytest.mark.req("TM-20")
@pytest.mark.req("TM-02")
async def test_session_is_started_joined_by_each_participant_and_recorded_when_ended(open_world: OpenWorld,
                                                                                     video: VideoService):
    async with open_world(**await _settings(video)) as w:
        r = await w.op("/Encounter/e1/$consultation-start", "Practitioner/dr1")
        assert r.status_code == 200, r.text
        started = r.json()
        assert started["status"] == "in-progress" and "start" in started["period"]
        session = _session(started)
        assert session["service"] == ["kz-video"] and len(session["sessionId"]) == 1
        sid = session["sessionId"][0]
        # the service heard of the consultation and its people by reference only, never by name
        assert video.calls[0][1] == {"consultation": "Encounter/e1", "appointment": "Appointment/a1",
                                     "participants": ["Patient/p1", "Practitioner/dr1"]}
        again = await w.op("/Encounter/e1/$consultation-start", "Practitioner/dr1")
        assert again.status_code == 409

        links = {}
        for who in ("Patient/p1", "Practitioner/dr1"):
            r = await w.op("/Encounter/e1/$consultation-join", who)
            assert r.status_code == 200, r.text
            assert r.headers["cache-control"] == "no-store"
            links[who] = {p["name"]: p for p in r.json()["parameter"]}["link"]["valueUrl"]
        assert links["Patient/p1"] != links["Practitioner/dr1"] and all(sid in link for link in links.values())

        # during the session: a message with an image from the patient, a document and an image from the doctor
        message = {"resourceType": "Communication", "status": "completed", "subject": {"reference": "Patient/p1"},
                   "encounter": {"reference": "Encounter/e1"}, "sender": {"reference": "Patient/p1"},
                   "recipient": [{"reference": "Practitioner/dr1"}],
                   "payload": [{"contentString": "Вот снимок сыпи"},
                               {"contentAttachment": {"contentType": "image/png", "data": PNG,
                                                      "title": "rash.png"}}]}
        r = await w.client.post("/Communication", json=message, headers=w.as_("Patient/p1"))
        assert r.status_code == 201, r.text
        document = {"resourceType": "DocumentReference", "status": "current", "subject": {"reference": "Patient/p1"},
                    "context": {"encounter": [{"reference": "Encounter/e1"}]},
                    "content": [{"attachment": {"contentType": "application/pdf",
                                                "data": base64.b64encode(b"%PDF-1.4 plan").decode()}}]}
        assert (await w.client.post("/DocumentReference", json=document,
                                    headers=w.as_("Practitioner/dr1"))).status_code == 201
        image = {"resourceType": "Media", "status": "completed", "subject": {"reference": "Patient/p1"},
                 "encounter": {"reference": "Encounter/e1"}, "content": {"contentType": "image/png", "data": PNG}}
        assert (await w.client.post("/Media", json=image, headers=w.as_("Practitioner/dr1"))).status_code == 201
        seen = await w.client.get("/Communication?encounter=Encounter/e1", headers=w.as_("Practitioner/dr1"))
        assert [e["resource"]["payload"][0]["contentString"] for e in seen.json()["entry"]] == ["Вот снимок сыпи"]
        other = await w.client.get("/Communication?encounter=Encounter/e1", headers=w.as_("Patient/p2"))
        assert other.json().get("entry", []) == []

        r = await w.op("/Encounter/e1/$consultation-end", "Practitioner/dr1")
        assert r.status_code == 200, r.text
        ended = _session(r.json())
        assert ended["sessionId"] == [sid] and ended["start"] and ended["end"]
        assert [p["reference"] for p in ended["participant"]] == ["Patient/p1", "Practitioner/dr1"]
        assert r.json()["period"]["end"] == ended["end"][0]
        assert (await w.op("/Encounter/e1/$consultation-join", "Patient/p1")).status_code == 409

        # the patient's access log shows the doctor's join, the messages and the session's changes (TM-21 audit)
        log = (await w.client.get("/Patient/p1/$access-log?_count=100", headers=w.as_("Patient/p1"))).json()
        text = str([e["resource"] for e in log["entry"]])
        assert "consultation-join" in text and "Practitioner/dr1" in text and "Media/" in text


@pytest.mark.req("TM-21")
async def test_join_links_reach_the_participants_only_on_every_path(open_world: OpenWorld, video: VideoService,
                                                                    tmp_path: Path):
    async with open_world(**await _settings(video)) as w:
        # a non-participant, even one the patient's Consent lets see the consultation, cannot start or join it
        assert (await w.op("/Encounter/e1/$consultation-start", "Practitioner/dr2")).status_code == 403
        assert (await w.op("/Encounter/e1/$consultation-start", "Patient/p1")).status_code == 403  # doctors start
        assert (await w.op("/Encounter/e1/$consultation-start", "Practitioner/dr1")).status_code == 200
        for who in ("Patient/p1", "Practitioner/dr1"):
            assert (await w.op("/Encounter/e1/$consultation-join", who)).status_code == 200
        refused = await w.op("/Encounter/e1/$consultation-join", "Practitioner/dr2")
        assert refused.status_code == 403 and "participants" in refused.text
        hidden = await w.op("/Encounter/e1/$consultation-join", "Patient/p2")  # may not even see it: absent
        unknown = await w.op("/Encounter/nope/$consultation-join", "Patient/p2")
        assert hidden.status_code == unknown.status_code == 404
        assert len(video.all_links()) == 2
        tokens = [link.split("?t=")[1] for link in video.all_links()]

        # no path shows a link to anyone: it was never stored
        paths = ["/Encounter/e1", "/Encounter/e1/_history", "/Encounter?_id=e1&_include=Encounter:appointment",
                 "/Appointment?_id=a1&_revinclude=Encounter:appointment", "/Encounter/_history", "/_history",
                 "/Patient/p1/$everything", "/Patient/p1/Encounter"]
        for who in ("Patient/p1", "Practitioner/dr1", "Practitioner/dr2"):
            for path in paths:
                r = await w.client.get(path, headers=w.as_(who))
                assert r.status_code == 200, (who, path, r.text)
                assert not any(t in r.text for t in tokens), (who, path)
        visible = await w.client.get("/Encounter/e1", headers=w.as_("Practitioner/dr2"))
        assert _session(visible.json())["sessionId"]  # the opaque id is the record; it opens nothing by itself
        await w.store.audit.sync()
        for file in tmp_path.glob("db.sqlite*"):
            data = file.read_bytes()
            assert not any(t.encode() in data for t in tokens), file.name

        # nor can a client store one in the session's record
        current = visible.json()
        forged = dict(current)
        forged["extension"] = [{"url": SESSION, "extension": [
            {"url": "service", "valueString": "kz-video"}, {"url": "sessionId", "valueString": "x"},
            {"url": "link", "valueUrl": video.all_links()[0]}]}]
        r = await w.client.put("/Encounter/e1", json=forged, headers=w.as_("Practitioner/dr1"))
        assert r.status_code == 422 and "never stored" in r.text
        forged["extension"][0]["extension"] = [*forged["extension"][0]["extension"][:1],
                                               {"url": "sessionId", "valueString": "https://video.example.kz/room/x"}]
        r = await w.client.put("/Encounter/e1", json=forged, headers=w.as_("Practitioner/dr1"))
        assert r.status_code == 422 and "not a link" in r.text

        # the refusal is in the patient's access log
        log = (await w.client.get("/Patient/p1/$access-log?_count=100", headers=w.as_("Patient/p1"))).json()
        refusals = [e["resource"] for e in log["entry"] if e["resource"]["outcome"] == "4"
                    and any(a.get("who", {}).get("reference") == "Practitioner/dr2" for a in e["resource"]["agent"])]
        assert any("participants" in r.get("outcomeDesc", "") for r in refusals)


@pytest.mark.req("TM-20")
async def test_a_telecom_service_that_fails_or_is_absent_is_an_operation_outcome(open_world: OpenWorld,
                                                                               video: VideoService):
    async with open_world(**await _settings(video)) as w:
        video.fail_with = 503
        r = await w.op("/Encounter/e1/$consultation-start", "Practitioner/dr1")
        assert r.status_code == 502 and r.json()["issue"][0]["code"] == "transient"
        stored = await w.client.get("/Encounter/e1", headers=w.as_("Practitioner/dr1"))
        assert stored.json()["status"] == "planned"  # nothing half-written
    async with open_world() as w:
        r = await w.op("/Encounter/e1/$consultation-start", "Practitioner/dr1")
        assert r.status_code == 501 and r.json()["resourceType"] == "OperationOutcome"
