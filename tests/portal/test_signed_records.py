"""The signed records of my remote services (TM-10, TM-12, MD-D): the document Bundle unpacked — the Composition's
sections with the resources they name, every resource inside — and whether its EDS signature verifies, as the
server's own ``Bundle/[id]/$verify-signature`` says (one rule: the write path's checks). A Composition that exists
only inside a Bundle is shown; another patient's record is not."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.registry import Registry
from signing import load_signer, sign_bundle
from tests.portal.conftest import LOCAL, portal_settings, register_people, seed_resources, sign_in, store
from tests.portal.test_care_pages import care_resources
from tests.signatures.helpers import PRACTITIONER_URN, document_bundle

UNTRUSTED_IIN = "123456789018"  # the test PKI's "untrusted": a certificate from a root outside the trust store


@pytest.fixture
def settings(tmp_path: Path, pki: Path) -> Settings:
    """As the portal's tests, with the trust store the server verifies signatures against."""
    return portal_settings(tmp_path, pki, trust_dir=pki / "trust")


async def records_of(pki: Path) -> list[dict[str, Any]]:
    """Aigerim's records: one signed by her doctor, one signed by a certificate outside the trust store, one
    unsigned and tied to no remote service; and one of Bolat's."""
    return [await signed(pki, record(), "rec-good"),
            await signed(pki, record(title="Заключение", iin=UNTRUSTED_IIN), "rec-bad", "untrusted"),
            {**record(encounter=None, title="Выписка"), "id": "rec-plain"},
            await signed(pki, record(patient="Patient/p2", title="Bolat's record"), "rec-p2")]


@pytest.fixture
async def web(settings: Settings, pki: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The portal's server with the records stored beforehand by a server that had no trust store (so the
    record signed outside it was accepted then, with a warning: signatures/validator.py); the portal's server
    verifies against its trust store now."""
    register_people(Registry(IdentityConfig.from_settings(settings).database))
    earlier = create_app(settings.model_copy(update={"trust_dir": None, "security_enabled": False}))
    async with earlier.router.lifespan_context(earlier):
        await store(earlier, [*seed_resources(), *care_resources(), *await records_of(pki)])
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=LOCAL, timeout=60
    ) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def record(patient: str = "Patient/p1", encounter: str | None = "Encounter/vr1", title: str = "Телеконсультация: "
           "заключение", iin: str = "123456789011") -> dict[str, Any]:
    """A consultation's record as a document Bundle (tests/signatures/helpers.py): the Composition (a section
    naming the Observation), the signing Practitioner, the Organization, an Observation."""
    bundle = document_bundle(iin)
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if "subject" in resource:
            resource["subject"] = {"reference": patient}
        if resource["resourceType"] == "Composition":
            resource["title"] = title
            if encounter:
                resource["encounter"] = {"reference": encounter}
            resource["section"].append({
                "title": "Измерения", "entry": [{"reference": "urn:uuid:8d0a3a36-0000-4000-8000-000000000004"}],
                "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">На приёме</div>'}})
    return bundle


async def signed(pki: Path, bundle: dict[str, Any], bid: str, who: str = "doctor") -> dict[str, Any]:
    doctor = load_signer(pki / f"{who}.key.pem", pki / f"{who}.cert.pem")
    return {**await sign_bundle(bundle, doctor, "cms", PRACTITIONER_URN), "id": bid}


def article(page: str, rid: str) -> str:
    found = re.search(rf'<section class="record" id="record-{rid}".*?</section>', page, re.S)
    assert found, f"no record {rid}"
    return found.group(0)


@pytest.mark.req("TM-10")
@pytest.mark.req("TM-12")
@pytest.mark.req("TM-02")
async def test_a_remote_services_signed_record_is_unpacked_and_its_signature_checked_by_the_server(web):
    await sign_in(web)

    page = await web.get("/portal/remote")
    assert page.status_code == 200, page.text
    text = page.text
    service = re.search(r'<article class="service" id="encounter-vr1".*?</article>', text, re.S)
    assert service and 'id="record-rec-good"' in service.group(0) and 'id="record-rec-bad"' in service.group(0)
    shown = article(text, "rec-good")
    assert "Телеконсультация: заключение" in shown and "2025-05-01 10:00" in shown
    assert "signature verifies" in shown and "Signed by ТЕСТОВ ДОКТОР (IIN 123456789011)" in shown
    assert "Жалобы" in shown and "Нет" in shown  # a section and its text
    assert "Измерения" in shown and "temperature: 36.6 Cel" in shown  # the resource the section names
    assert "Доктор Тестов" in shown  # the author, resolved inside the Bundle
    assert "Тестовая поликлиника" in shown and "<td>Organization</td>" in shown  # every resource inside

    bad = article(text, "rec-bad")
    assert "does not verify" in bad and "signature-bad" in bad
    assert re.search(r"<li>[^<]*(trust|chain)[^<]*</li>", bad), bad  # with the server's reason
    plain = article(text, "rec-plain")  # a Composition inside a Bundle only, tied to no remote service
    assert "Other medical records" in text and text.index("Other medical records") < text.index(
        'id="record-rec-plain"')
    assert "Выписка" in plain and "carries no EDS signature" in plain
    assert "Bolat" not in text and "rec-p2" not in text

    web.cookies.set("kzfhir_lang", "ru")
    russian = (await web.get("/portal/remote")).text
    assert "ЭЦП врача верна" in russian and "Подпись этой записи не подтверждается" in russian
    web.cookies.set("kzfhir_lang", "kk")
    assert "Дәрігердің ЭЦҚ-сы дұрыс" in (await web.get("/portal/remote")).text


@pytest.mark.req("TM-10")
@pytest.mark.req("AC-24")
async def test_the_verification_is_the_servers_and_audited_as_an_api_call(web, auth):
    await sign_in(web)
    assert (await web.get("/portal/remote")).status_code == 200
    log = (await web.get("/Patient/p1/$access-log", headers=auth("patient", "Patient/p1"))).text
    for checked in ("Bundle/rec-good/", "Bundle/rec-bad/", "Bundle/rec-plain/", "type=document"):
        assert checked in log, checked  # the search and each verification, in the patient's own log
    assert "rec-p2" not in log


@pytest.mark.req("TM-10")
async def test_the_records_are_read_along_the_searchs_next_links(web, monkeypatch):
    from fhir_server.portal import care

    monkeypatch.setattr(care, "RECORD_COUNT", 1)  # a page of one: Bolat's, hidden, is an empty page among them
    await sign_in(web)
    text = (await web.get("/portal/remote")).text
    assert all(f'id="record-{rid}"' in text for rid in ("rec-good", "rec-bad", "rec-plain"))
    monkeypatch.setattr(care, "RECORD_PAGES", 1)  # and the pages end where they should
    first_page = (await web.get("/portal/remote")).text
    assert sum(f'id="record-{rid}"' in first_page for rid in ("rec-good", "rec-bad", "rec-plain")) <= 1
