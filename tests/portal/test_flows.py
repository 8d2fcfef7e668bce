"""The cabinet's and the console's work, end to end through the pages (httpx, no JavaScript): a consent given
and revoked changes what a practitioner's page shows (AC-01), a relative is granted access (AC-10), the
patient's access log shows the practitioner's reads and highlights break-glass (AC-24, TM-18), a data-subject
request is filed with its deadline and answered from the console (AC-15, AC-16, AC-27, AC-22), and the
patient is notified (AC-18)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import httpx
import pytest

from tests.portal.conftest import LOCAL, csrf, sign_in


@asynccontextmanager
async def browser(web: httpx.AsyncClient, username: str) -> AsyncIterator[httpx.AsyncClient]:
    """A second person's browser on the same server, signed in."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web.app),  # type: ignore[attr-defined]
                                 base_url=LOCAL, timeout=60) as client:
        await sign_in(client, username)
        yield client


async def give(web: httpx.AsyncClient, kind: str, grantee: str, *classes: str) -> httpx.Response:
    page = await web.get("/portal/consents")
    form = [("csrf_token", csrf(page)), ("grantee_kind", kind), ("grantee", grantee),
            *(("classes", c) for c in classes if c != "write"), *([("write", "yes")] if "write" in classes else [])]
    return await web.post("/portal/consents/give", content=urlencode(form),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})


def pulse_rows(page: str) -> int:
    listed = re.search(r'<ul class="list" id="list-Observation">(.*?)</ul>', page, re.S)
    return listed.group(1).count("<li>") if listed else 0


@pytest.mark.req("AC-01")
@pytest.mark.req("TM-12")
async def test_giving_and_revoking_a_consent_changes_what_the_practitioner_sees(web):
    await sign_in(web)
    async with browser(web, "dr.serik") as doctor:
        before = (await doctor.get("/portal/console/patient", params={"id": "p1"})).text
        assert pulse_rows(before) == 0 and "Nothing you may see" in before
        assert (await give(web, "practitioner", "dr1", "Observation")).status_code == 303
        page = (await web.get("/portal/consents")).text
        assert "<td>Practitioner/dr1</td>" in page and "<td>Observation</td>" in page
        during = (await doctor.get("/portal/console/patient", params={"id": "p1"})).text
        assert pulse_rows(during) == 4 and "131" in during
        assert "Essential hypertension" not in during  # the consent names Observations only
        cid = re.search(r'action="/portal/consents/([^/]+)/revoke"', page).group(1)  # type: ignore[union-attr]
        revoked = await web.post(f"/portal/consents/{cid}/revoke", data={"csrf_token": csrf(await web.get(
            "/portal/consents"))})
        assert revoked.status_code == 303
        assert "revoked" in (await web.get("/portal/consents")).text
        after = (await doctor.get("/portal/console/patient", params={"id": "p1"})).text
        assert pulse_rows(after) == 0  # the very next request is judged without the consent


@pytest.mark.req("AC-10")
async def test_a_relative_is_granted_access(web):
    await sign_in(web)
    assert (await give(web, "relative", "rp1")).status_code == 303
    page = (await web.get("/portal/consents")).text
    assert "<td>RelatedPerson/rp1</td>" in page and "all records" in page
    bad = await give(web, "organisation", "12345")
    assert bad.status_code == 400 and "12-digit BIN" in bad.text


@pytest.mark.req("AC-24")
@pytest.mark.req("TM-18")
async def test_the_access_log_shows_the_practitioners_reads_and_highlights_break_glass(web, auth):
    await sign_in(web)
    await give(web, "practitioner", "dr1", "Observation")
    async with browser(web, "dr.serik") as doctor:
        await doctor.get("/portal/console/patient", params={"id": "p1"})
    emergency = auth("practitioner", "Practitioner/dr2", bin="940140000385")
    emergency["X-Break-Glass-Reason"] = "unconscious, brought by ambulance"
    assert (await web.get("/Condition/c1", headers=emergency)).status_code == 200
    log = (await web.get("/portal/access-log")).text
    assert "Practitioner/dr1 (practitioner)" in log
    rows = re.findall(r'<tr class="([^"]*)">(.*?)</tr>', log, re.S)
    glass = [body for cls, body in rows if "emergency" in cls]
    assert len(glass) == 1 and "Practitioner/dr2" in glass[0] and "unconscious, brought by ambulance" in glass[0]
    assert "Emergency access" in glass[0]
    only = (await web.get("/portal/access-log", params={"only": "emergency"})).text
    assert only.count("<tr class=") == 1
    refused = (await web.get("/portal/access-log", params={"only": "refused"})).text
    assert "Practitioner/dr1" in refused  # the consent covers Observations: the Condition search was refused
    future = (await web.get("/portal/access-log", params={"since": "2099-01-01"})).text
    assert "<tr class=" not in future
    assert "YYYY-MM-DD" in (await web.get("/portal/access-log", params={"since": "yesterday"})).text


@pytest.mark.req("AC-15")
@pytest.mark.req("AC-16")
@pytest.mark.req("AC-27")
@pytest.mark.req("AC-18")
async def test_a_request_is_filed_answered_from_the_console_and_the_patient_notified(web):
    await sign_in(web)
    page = await web.get("/portal/requests")
    filed = await web.post("/portal/requests/file", data={
        "csrf_token": csrf(page), "kind": "correction", "description": "Wrong pulse on 3 November",
        "change": "It was 113, not 131"})
    assert filed.status_code == 303
    mine = (await web.get(filed.headers["location"])).text
    assert "Correct my data" in mine and "waiting for the answer" in mine and "Your request was filed" in mine
    due = re.search(r'<td>\d{4}-\d{2}-\d{2} \d{2}:\d{2}</td><td>(\d{4}-\d{2}-\d{2})</td>', mine)
    assert due is not None  # the due date: 3 working days after receipt (docs/data-subject-requests.md)
    async with browser(web, "admin1") as admin:
        queue = await admin.get("/portal/console")
        assert "Wrong pulse on 3 November" in queue.text and "It was 113, not 131" in queue.text
        tid = re.search(r'action="/portal/console/requests/([^/]+)/answer"', queue.text).group(1)  # type: ignore[union-attr]
        refused = await admin.post(f"/portal/console/requests/{tid}/answer", data={
            "csrf_token": csrf(queue), "outcome": "rejected"})
        assert refused.status_code == 422  # AC-17: a refusal needs its reason, the API says so
        answered = await admin.post(f"/portal/console/requests/{tid}/answer", data={
            "csrf_token": csrf(queue), "outcome": "completed", "note": "Corrected to 113/min"})
        assert answered.status_code == 303
        assert "The answer was sent" in (await admin.get(answered.headers["location"])).text
    mine = (await web.get("/portal/requests")).text
    assert "answered" in mine and "Corrected to 113/min" in mine
    notices = (await web.get("/portal/notifications")).text
    assert "Nothing here yet" not in notices


@pytest.mark.req("AC-22")
@pytest.mark.req("AC-15")
async def test_information_and_destruction_requests_and_an_overdue_one_highlighted(web, auth):
    await sign_in(web)
    for kind, change in (("information", ""), ("destruction", "Observation/o2")):
        page = await web.get("/portal/requests")
        answer = await web.post("/portal/requests/file", data={"csrf_token": csrf(page), "kind": kind,
                                                               "description": f"{kind} please", "change": change})
        assert answer.status_code == 303, answer.text
    bad = await web.post("/portal/requests/file", data={"csrf_token": csrf(await web.get("/portal/requests")),
                                                        "kind": "gossip"})
    assert bad.status_code == 400
    admin = auth("admin", "Practitioner/adm1", bin="940140000385")
    received = "2025-03-20T10:00:00+05:00"  # a paper request registered late: due 2025-03-28 (Nauryz)
    paper = await web.post("/Patient/p1/$data-subject-request", headers=admin, json={
        "resourceType": "Parameters", "parameter": [{"name": "kind", "valueCode": "information"},
                                                    {"name": "description", "valueString": "paper, long ago"},
                                                    {"name": "received", "valueDateTime": received}]})
    assert paper.status_code == 201, paper.text
    async with browser(web, "admin1") as console:
        queue = (await console.get("/portal/console")).text
        rows = re.findall(r'<tr id="task-[^"]+"( class="overdue")?>(.*?)</tr>', queue, re.S)
        assert len(rows) == 3
        overdue = [body for cls, body in rows if cls]
        assert len(overdue) == 1 and "paper, long ago" in overdue[0] and "2025-03-28" in overdue[0]
    mine = (await web.get("/portal/requests")).text
    assert "What data is held about me" in mine and "Destroy unlawfully collected data" in mine


@pytest.mark.req("TM-26")
@pytest.mark.req("AC-01")
async def test_a_critical_value_alert_is_acknowledged_from_the_console(web, auth):
    await sign_in(web)
    assert (await give(web, "practitioner", "dr1", "write")).status_code == 303  # "write" is no class: all records
    assert "may also add and correct records" in (await web.get("/portal/consents")).text
    reading = {"resourceType": "Observation", "status": "final", "code": {
        "coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Pulse"},
        "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-05T09:00:00+05:00",
        "valueQuantity": {"value": 160, "unit": "/min"}}
    stored = await web.post("/Observation", json=reading, headers={**auth("patient", "Patient/p1"),
                                                                   "Content-Type": "application/fhir+json"})
    assert stored.status_code == 201, stored.text
    async with browser(web, "dr.serik") as doctor:
        console = await doctor.get("/portal/console")
        assert "Critical values to follow up" in console.text
        tid = re.search(r'action="/portal/console/alerts/([^/]+)/acknowledge"', console.text).group(1)  # type: ignore[union-attr]
        done = await doctor.post(f"/portal/console/alerts/{tid}/acknowledge", data={"csrf_token": csrf(console)})
        assert done.status_code == 303
        after = (await doctor.get(done.headers["location"])).text
        assert "The alert is in your hands now" in after and "in hand" in after
    task = (await web.get(f"/Task/{tid}", headers=auth("patient", "Patient/p1"))).json()
    assert task["status"] == "accepted" and task["note"][-1]["authorReference"] == {"reference": "Practitioner/dr1"}
