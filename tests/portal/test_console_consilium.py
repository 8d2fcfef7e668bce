"""The practitioner's console lists the open consilium requests they take part in (TM-08): a ServiceRequest of
category kz-remote-service-form#consilium naming them as a performer or requester, as far as the patients'
Consents let them read it (another patient's request without a consent is absent)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.portal.cabinet import consent_resource
from tests.portal.conftest import sign_in, store

FORM = "https://fhir.kzfhir.kz/CodeSystem/kz-remote-service-form"


def consilium(rid: str, patient: str, status: str = "active") -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": rid, "status": status, "intent": "order",
            "category": [{"coding": [{"system": FORM, "code": "consilium"}]}],
            "code": {"text": "Consilium on treatment of resistant hypertension"},
            "subject": {"reference": f"Patient/{patient}", "display": f"Patient {patient}"},
            "requester": {"reference": "Practitioner/dr2", "display": "Dr Seitkali"},
            "performer": [{"reference": "Practitioner/dr1", "display": "Dr Ivanov"},
                          {"reference": "Practitioner/dr3", "display": "Dr Nurlanova"}],
            "reasonCode": [{"text": "BP above target on three drugs"}], "authoredOn": "2026-11-25T09:00:00+05:00",
            "occurrenceDateTime": "2026-11-27T15:00:00+05:00"}


@pytest.mark.req("TM-08")
async def test_the_consilium_requests_a_practitioner_takes_part_in(web):
    grant = consent_resource("p1", {"reference": "Practitioner/dr1"}, [], "")
    await store(web.app, [{**grant, "id": "c-dr1"}, consilium("cons1", "p1"), consilium("cons2", "p2"),
                          consilium("cons3", "p1", "completed")])
    await sign_in(web, "dr.serik")
    page = await web.get("/portal/console")
    assert page.status_code == 200, page.text
    text = page.text
    assert 'id="consilium-cons1"' in text and "Consilium on treatment of resistant hypertension" in text
    assert "Dr Seitkali" in text and "Dr Nurlanova" in text and "2026-11-27 15:00" in text
    assert "BP above target on three drugs" in text
    assert 'id="consilium-cons2"' not in text  # no consent of p2: hidden means absent
    assert 'id="consilium-cons3"' not in text  # done
    web.cookies.set("kzfhir_lang", "ru")
    assert "Запросы на консилиум" in (await web.get("/portal/console")).text
