"""The cabinet's remote services (the MD-D record), documents and images with downloads (TM-02), and the doctor's
messages with recommendations and reminders (TM-16): read through the API as the patient, downloads judged and
audited as reads, another patient's file refused, an unsafe media type never served as itself."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import pytest

from tests.portal.conftest import sign_in, store

KZ = "https://fhir.kzfhir.kz"
PDF = b"%PDF-1.4\n% consultation conclusion\n%%EOF\n"


def png(width: int = 96, height: int = 64) -> bytes:
    """A small RGB PNG (a reddish patch on skin colour), made here: the image a patient sends (TM-02)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"".join(
        bytes((200, 60, 60)) if (x - width / 2) ** 2 + (y - height / 2) ** 2 < 300 else bytes((235, 200, 170))
        for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = png()


def _kz(extension: str, system: str, code: str) -> dict[str, Any]:
    return {"url": f"{KZ}/StructureDefinition/{extension}",
            "valueCoding": {"system": f"{KZ}/CodeSystem/{system}", "code": code}}


def care_resources() -> list[dict[str, Any]]:
    p1 = {"reference": "Patient/p1"}
    return [
        {"resourceType": "Encounter", "id": "vr1", "status": "finished",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
         "extension": [_kz("kz-remote-service-form", "kz-remote-service-form", "consultation"),
                       _kz("kz-telecom-channel", "kz-telecom-channel", "video"),
                       {"url": f"{KZ}/StructureDefinition/kz-next-visit-date", "valueDate": "2026-12-20"}],
         "serviceType": {"text": "Remote cardiology consultation"}, "subject": p1,
         "participant": [{"individual": {"reference": "Practitioner/dr1", "display": "Dr Ivanov"}}],
         "period": {"start": "2026-11-20T10:00:00+05:00", "end": "2026-11-20T10:20:00+05:00"},
         "diagnosis": [{"extension": [_kz("kz-diagnosis-kind", "kz-diagnosis-kind", "main"),
                                      _kz("kz-diagnosis-type", "kz-diagnosis-type", "final")],
                        "condition": {"reference": "Condition/c1"}}]},
        {"resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order", "subject": p1,
         "encounter": {"reference": "Encounter/vr1"}, "code": {"text": "Lipid panel"}},
        {"resourceType": "MedicationRequest", "id": "m2", "status": "active", "intent": "order", "subject": p1,
         "encounter": {"reference": "Encounter/vr1"}, "medicationCodeableConcept": {"text": "Atorvastatin 10 mg"}},
        {"resourceType": "Composition", "id": "comp1", "status": "final", "type": {"text": "Remote consultation"},
         "subject": p1, "encounter": {"reference": "Encounter/vr1"}, "date": "2026-11-20", "title": "Conclusion",
         "author": [{"reference": "Practitioner/dr1"}],
         "section": [{"title": "Conclusion", "text": {"status": "generated", "div":
                     '<div xmlns="http://www.w3.org/1999/xhtml">Blood pressure controlled; keep the dose.</div>'}}]},
        {"resourceType": "DocumentReference", "id": "d1", "status": "current", "subject": p1,
         "description": "Consultation conclusion", "date": "2026-11-20T10:30:00+05:00",
         "content": [{"attachment": {"contentType": "application/pdf", "title": "conclusion.pdf",
                                     "data": base64.b64encode(PDF).decode()}}]},
        {"resourceType": "Binary", "id": "b1", "contentType": "text/html", "securityContext": p1,
         "data": base64.b64encode(b"<script>alert(1)</script>").decode()},
        {"resourceType": "DocumentReference", "id": "d2", "status": "current", "subject": p1,
         "description": "Discharge letter", "date": "2026-11-18",
         "content": [{"attachment": {"contentType": "text/html", "title": "letter.html", "url": "Binary/b1"}},
                     {"attachment": {"contentType": "application/pdf", "title": "scan.pdf",
                                     "url": "https://archive.example.kz/scan.pdf"}}]},
        {"resourceType": "Media", "id": "img1", "status": "completed", "subject": p1,
         "modality": {"text": "Photo of the rash"}, "createdDateTime": "2026-11-19",
         "content": {"contentType": "image/png", "title": "rash.png", "data": base64.b64encode(PNG).decode()}},
        {"resourceType": "DocumentReference", "id": "d9", "status": "current", "subject": {"reference": "Patient/p2"},
         "description": "Bolat's letter",
         "content": [{"attachment": {"contentType": "application/pdf", "data": base64.b64encode(PDF).decode()}}]},
        {"resourceType": "CarePlan", "id": "cp1", "status": "active", "intent": "plan", "subject": p1,
         "title": "Hypertension follow-up"},
        {"resourceType": "Communication", "id": "rec1", "status": "completed", "subject": p1,
         "recipient": [p1], "sender": {"reference": "Practitioner/dr1", "display": "Dr Ivanov"},
         "basedOn": [{"reference": "CarePlan/cp1"}], "sent": "2026-11-21T09:00:00+05:00",
         "topic": {"coding": [{"system": f"{KZ}/CodeSystem/kz-recommendation-kind", "code": "lifestyle"}]},
         "payload": [{"contentString": "Walk 30 minutes a day and keep salt under 5 g."}]},
        {"resourceType": "CommunicationRequest", "id": "rem1", "status": "active", "subject": p1,
         "basedOn": [{"reference": "CarePlan/cp1"}],
         "extension": [{"url": f"{KZ}/StructureDefinition/kz-reminder-schedule", "valueTiming": {"repeat": {
             "frequency": 1, "period": 1, "periodUnit": "d", "boundsPeriod": {"start": "2026-11-21"},
             "count": 30}}}],
         "payload": [{"contentString": "Take amlodipine in the morning."}]},
    ]


@pytest.mark.req("TM-12")
@pytest.mark.req("TM-02")
async def test_my_remote_services_show_the_md_d_record_in_the_pages_language(web):
    await store(web.app, care_resources())
    await sign_in(web)
    page = await web.get("/portal/remote")
    assert page.status_code == 200, page.text
    text = page.text
    for shown in ("Remote cardiology consultation", "Remote consultation", "Video call", "Dr Ivanov",
                  "Essential hypertension (I10) (Main diagnosis, Final diagnosis)", "2026-12-20", "Lipid panel",
                  "Atorvastatin 10 mg", "Blood pressure controlled; keep the dose."):
        assert shown in text, shown
    assert "Cardiology visit" not in text  # the ambulatory visit is no remote service
    web.cookies.set("kzfhir_lang", "ru")
    text = (await web.get("/portal/remote")).text
    assert "Дистанционная консультация" in text and "Видеосвязь" in text and "Основной диагноз" in text


@pytest.mark.req("TM-02")
@pytest.mark.req("AC-24")
async def test_documents_and_images_download_through_the_api_and_are_audited(web, auth):
    await store(web.app, care_resources())
    await sign_in(web)
    page = await web.get("/portal/documents")
    assert page.status_code == 200
    for shown in ("Consultation conclusion", "Discharge letter", "Photo of the rash", "archive.example.kz"):
        assert shown in page.text, shown
    assert "Bolat" not in page.text
    assert 'src="/portal/files/Media/img1/0?inline=1"' in page.text

    pdf = await web.get("/portal/files/DocumentReference/d1/0")
    assert pdf.status_code == 200 and pdf.content == PDF
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == 'attachment; filename="conclusion.pdf"'
    assert pdf.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert pdf.headers["x-content-type-options"] == "nosniff" and pdf.headers["cache-control"] == "no-store"
    image = await web.get("/portal/files/Media/img1/0", params={"inline": "1"})
    assert image.content == PNG and image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("inline")
    html = await web.get("/portal/files/DocumentReference/d2/0")  # from Binary/b1; never served as HTML
    assert html.status_code == 200 and html.content == b"<script>alert(1)</script>"
    assert html.headers["content-type"] == "application/octet-stream"
    assert html.headers["content-disposition"].startswith("attachment")
    assert (await web.get("/portal/files/DocumentReference/d2/1")).status_code == 404  # elsewhere: not fetched
    assert (await web.get("/portal/files/DocumentReference/d2/7")).status_code == 404
    assert (await web.get("/portal/files/Patient/p1/0")).status_code == 404
    foreign = await web.get("/portal/files/DocumentReference/d9/0")  # Bolat's: the API refuses, nothing sent
    assert foreign.status_code in (403, 404) and PDF not in foreign.content

    log = (await web.get("/Patient/p1/$access-log", headers=auth("patient", "Patient/p1"))).text
    assert "DocumentReference/d1" in log and "Binary/b1" in log  # the downloads are reads in the log


@pytest.mark.req("TM-16")
async def test_the_doctors_messages_with_recommendations_and_reminders(web):
    await store(web.app, care_resources())
    await sign_in(web)
    page = await web.get("/portal/messages")
    assert page.status_code == 200
    text = page.text
    assert "Walk 30 minutes a day and keep salt under 5 g." in text and "Lifestyle" in text
    assert "Hypertension follow-up" in text and "Dr Ivanov" in text and "2026-11-21 09:00" in text
    assert "Take amlodipine in the morning." in text and "every 1 days" in text
    web.cookies.set("kzfhir_lang", "kk")
    assert "Дәрігерімнің хабарламалары" in (await web.get("/portal/messages")).text
