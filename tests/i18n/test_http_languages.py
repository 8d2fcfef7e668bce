"""Error answers in the caller's language, over real HTTP (issue 13 §6; docs/languages.md).

``Accept-Language`` (RFC 9110 §12.5.4) picks Kazakh, Russian or English; the default is the
``default_language`` setting; a header that names nothing usable, or is garbage, gives the default and
never an error. Only the human texts change: ``code`` and ``expression`` stay as they are.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.i18n import negotiate
from tests.conftest import BASE

BIN = "940140000385"
KAZAKH_LETTERS = set("әғқңөұүһі")


def _issue(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", r.text
    issue: dict[str, Any] = body["issue"][0]
    return issue


def _text(r: httpx.Response) -> str:
    issue = _issue(r)
    assert issue["details"]["text"] == issue["diagnostics"]  # one text, where FHIR clients look for it
    text: str = issue["diagnostics"]
    return text


def _kazakh(text: str) -> bool:
    return bool(KAZAKH_LETTERS & set(text.lower()))


async def test_not_found_in_kazakh_russian_and_english(client: httpx.AsyncClient,
                                                     auth: Callable[..., dict[str, str]]) -> None:
    headers = auth("system", bin=BIN)
    kk = await client.get("/Patient/nope", headers={**headers, "Accept-Language": "kk"})
    assert kk.status_code == 404
    assert _text(kk) == "Patient/nope табылмады"
    assert kk.headers["content-language"] == "kk"
    assert "accept-language" in kk.headers["vary"].lower()
    ru = await client.get("/Patient/nope", headers={**headers, "Accept-Language": "ru;q=0.9, en;q=0.8"})
    assert _text(ru) == "Patient/nope не найден" and ru.headers["content-language"] == "ru"
    en = await client.get("/Patient/nope", headers=headers)
    assert _text(en) == "Patient/nope is not known" and en.headers["content-language"] == "en"
    assert {_issue(r)["code"] for r in (kk, ru, en)} == {"not-found"}  # codes are never translated


@pytest.mark.parametrize(("header", "expected"), [
    ("*", "en"), ("de-DE, fr;q=0.5", "en"), ("kk-KZ", "kk"), ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
    ("en;q=0.1, kk;q=0.2", "kk"), ("kk;q=0, ru;q=0.3", "ru"), ("kz", "kk"),
    (";;;,,q=\x7f", "en"), ("ru;q=abc", "en"), ("kk;q=2", "en"), ("x" * 5000, "en"), ("", "en"),
])
async def test_any_header_gives_a_language_never_an_error(client: httpx.AsyncClient, header: str,
                                                          expected: str) -> None:
    r = await client.get("/Patient", headers={"Accept-Language": header})  # no token: 401
    assert r.status_code == 401
    assert r.headers["content-language"] == expected
    text = _text(r)
    assert _kazakh(text) == (expected == "kk")
    assert ("требуется" in text) == (expected == "ru")


@pytest.fixture
async def russian_by_default(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database=tmp_path / "ru.sqlite", synchronous_full=False, dev_key_path=tmp_path / "k.json",
                        default_language="ru", max_body_bytes=1000)
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        from fhir_server.security.auth import issue_dev_token

        c.headers["X-Test-Token"] = issue_dev_token("system", None, key_path=settings.dev_key_path, bin=BIN)
        yield c


def _bearer(c: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {c.headers['X-Test-Token']}"}


async def test_the_default_language_is_a_setting(russian_by_default: httpx.AsyncClient) -> None:
    for headers in ({}, {"Accept-Language": "*"}, {"Accept-Language": "de"}, {"Accept-Language": "@@@"}):
        r = await russian_by_default.get("/Patient", headers=headers)
        assert r.status_code == 401 and r.headers["content-language"] == "ru"
        assert _text(r).startswith("требуется аутентификация")
    asked = await russian_by_default.get("/Patient", headers={"Accept-Language": "en"})
    assert _text(asked).startswith("authentication required")


async def test_http_level_refusals_are_localised(russian_by_default: httpx.AsyncClient) -> None:
    kk = {"Accept-Language": "kk", **_bearer(russian_by_default)}
    too_large = await russian_by_default.post("/Patient", content=b"{" + b" " * 2000 + b"}",
                                              headers={**kk, "Content-Type": "application/fhir+json"})
    assert too_large.status_code == 413 and _text(too_large) == "2002 байт сұраныс денесі 1000 байт шегінен асады"
    no_route = await russian_by_default.get("/no/such/route/here", headers=kk)
    assert no_route.status_code == 404 and _kazakh(_text(no_route)) and "/no/such/route/here" in _text(no_route)
    coding = await russian_by_default.post("/Patient", content=b"{}", headers={
        **kk, "Content-Type": "application/fhir+json", "Content-Encoding": "br"})  # refused in the middleware
    assert coding.status_code == 415 and coding.headers["content-language"] == "kk"
    assert _text(coding).startswith("Content-Encoding 'br' қолдау көрсетілмейді")
    bomb = await russian_by_default.post("/Patient", content=gzip.compress(b"{" + b" " * 5000 + b"}"), headers={
        **_bearer(russian_by_default), "Content-Type": "application/fhir+json", "Content-Encoding": "gzip"})
    assert bomb.status_code == 413 and "байт" in _text(bomb)  # no header: the default language, Russian


async def test_negotiation_errors_are_localised(client: httpx.AsyncClient,
                                              auth: Callable[..., dict[str, str]]) -> None:
    headers = {**auth("system", bin=BIN), "Accept-Language": "ru"}
    r406 = await client.get("/Patient", headers={**headers, "Accept": "text/html"})
    assert r406.status_code == 406 and _text(r406).startswith("невозможно выдать 'text/html'")
    assert _issue(r406)["code"] == "not-supported"
    r415 = await client.post("/Patient", content=b"x", headers={**headers, "Content-Type": "text/plain"})
    assert r415.status_code == 415 and "не поддерживается" in _text(r415)
    bad_json = await client.post("/Patient", content=b"{\"resourceType\": ", headers={
        **headers, "Content-Type": "application/fhir+json", "Accept-Language": "kk"})
    assert bad_json.status_code == 400 and _text(bad_json).startswith("дене жарамды JSON емес")
    unknown = await client.get("/Patient?not-a-param=1", headers={**headers, "Prefer": "handling=strict"})
    assert unknown.status_code == 400 and _text(unknown).startswith("Параметр поиска 'not-a-param': неизвестный")
    assert _issue(unknown)["expression"] == ["not-a-param"]
    criteria = await client.delete("/Patient", headers=headers)
    assert criteria.status_code == 400 and _text(criteria) == "условному взаимодействию нужны критерии поиска в URL"
    chosen = {"resourceType": "Patient", "id": "chosen-by-client"}
    client_id = await client.put("/Patient/chosen-by-client", json=chosen,
                                 headers={**headers, "Content-Type": "application/fhir+json", "Accept-Language": "kk"})
    assert client_id.status_code == 405 and _text(client_id).startswith("бұл сервер клиент таңдаған")


async def test_version_conflicts_are_localised(client: httpx.AsyncClient, auth: Callable[..., dict[str, str]],
                                               patient: dict[str, Any]) -> None:
    headers = {**auth("system", bin=BIN), "Content-Type": "application/fhir+json"}
    created = await client.post("/Organization", json={"resourceType": "Organization", "name": "Емхана"},
                                headers=headers)
    assert created.status_code == 201, created.text
    oid = created.json()["id"]
    stale = await client.put(f"/Organization/{oid}", json={"resourceType": "Organization", "id": oid, "name": "X"},
                             headers={**headers, "If-Match": 'W/"7"', "Accept-Language": "kk"})
    assert stale.status_code == 412
    assert _text(stale) == f"If-Match Organization/{oid} ресурсының 7 нұсқасын күтеді; ағымдағы нұсқа 1"
    bad_etag = await client.put(f"/Organization/{oid}", json={"resourceType": "Organization", "id": oid, "name": "X"},
                                headers={**headers, "If-Match": "seven", "Accept-Language": "ru"})
    assert bad_etag.status_code == 400 and "должен быть ETag" in _text(bad_etag)
    deleted = await client.delete(f"/Organization/{oid}", headers=headers)
    assert deleted.status_code in (200, 204)
    gone = await client.get(f"/Organization/{oid}", headers={**headers, "Accept-Language": "ru"})
    assert gone.status_code == 410 and _text(gone) == f"Organization/{oid} удалён"
    no_version = await client.get(f"/Organization/{oid}/_history/99", headers={**headers, "Accept-Language": "kk"})
    assert no_version.status_code == 404 and _text(no_version) == f"Organization/{oid} ресурсының 99 нұсқасы жоқ"


async def test_the_consent_refusal_in_each_language(client: httpx.AsyncClient,
                                                    auth: Callable[..., dict[str, str]],
                                                    patient: dict[str, Any]) -> None:
    """The refusal an MIS meets first (issue 13 §3): it says who lacks what, in the caller's language, and
    a transaction names the new patient by its fullUrl in every language."""
    system = {**auth("system", bin=BIN), "Content-Type": "application/fhir+json"}
    urn = "urn:uuid:0000000a-0000-0000-0000-00000000000b"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": urn, "resource": patient, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "пульс"},
                      "subject": {"reference": urn}}, "request": {"method": "POST", "url": "Observation"}}]}
    texts = {}
    for lang in ("en", "ru", "kk"):
        r = await client.post("/", json=bundle, headers={**system, "Accept-Language": lang})
        assert r.status_code == 403, r.text
        assert r.headers["content-language"] == lang
        assert _issue(r)["code"] == "forbidden"
        texts[lang] = _text(r)
        assert urn in texts[lang] and BIN in texts[lang] and "docs/mis-guide.md#consent" in texts[lang]
    assert "no active Consent" in texts["en"] and "access denied" in texts["en"]
    assert "согласие" in texts["ru"] and "доступ запрещён" in texts["ru"]
    assert "келісім" in texts["kk"] and _kazakh(texts["kk"])


async def test_xml_errors_are_localised_too(client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]) -> None:
    r = await client.get("/Patient/nope?_format=xml", headers={**auth("system", bin=BIN), "Accept-Language": "kk"})
    assert r.status_code == 404 and r.headers["content-language"] == "kk"
    assert '<details><text value="Patient/nope табылмады"/></details>' in r.text.replace("\n", "").replace(" <", "<")


async def test_a_successful_answer_never_reads_accept_language(client: httpx.AsyncClient,
                                                               auth: Callable[..., dict[str, str]]) -> None:
    """The 200 path does not parse the header (performance; docs/languages.md) and claims no language: a
    resource's language is its own ``Resource.language``."""
    headers = {**auth("system", bin=BIN), "Content-Type": "application/fhir+json"}
    created = await client.post("/Organization", json={"resourceType": "Organization", "name": "Емхана"},
                                headers=headers)
    before = negotiate._choose.cache_info()
    for path in (f"/Organization/{created.json()['id']}", "/Organization?name=Емхана", "/metadata"):
        r = await client.get(path, headers={**headers, "Accept-Language": f"kk;q=0.{len(path)}"})
        assert r.status_code == 200 and "content-language" not in r.headers
    after = negotiate._choose.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)


@pytest.mark.req("AC-14")
async def test_batch_entries_are_localised_and_the_audit_stays_english(
        client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]) -> None:
    system = {**auth("system", bin=BIN), "Content-Type": "application/fhir+json", "Accept-Language": "kk"}
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/nope"}},
        {"request": {"method": "GET", "url": "Patient/nope/_history/3"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "пульс"},
                      "subject": {"reference": "Patient/absent"}},
         "request": {"method": "POST", "url": "Observation"}}]}
    r = await client.post("/", json=bundle, headers=system)
    assert r.status_code == 200, r.text
    outcomes = [e["response"].get("outcome", {}).get("issue", [{}])[0] for e in r.json()["entry"]]
    assert outcomes[0]["details"]["text"] == "Patient/nope табылмады" and outcomes[0]["code"] == "not-found"
    assert outcomes[1]["diagnostics"] == "Patient/nope ресурсының 3 нұсқасы жоқ"
    assert "келісім" in outcomes[2]["diagnostics"] and outcomes[2]["code"] == "forbidden"
    audit = await client.get("/AuditEvent?_count=100", headers=auth("auditor", "Practitioner/aud1"))
    assert audit.status_code == 200, audit.text
    described = [e["resource"].get("outcomeDesc", "") for e in audit.json().get("entry", [])]
    assert any(d.startswith("no active Consent of Patient/absent") for d in described), described
    assert not any(KAZAKH_LETTERS & set(d) for d in described)  # operators and the regulator read one language
