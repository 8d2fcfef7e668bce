"""EDS-certificate sign-in (issue 16 §3) with the project's own test PKI (``signing.init_pki``; no real keys):
the browser signs the page's challenge as a detached CMS with the person's NCA authentication certificate,
and the server maps the IIN in it to the user. Expired, revoked, untrusted and signing-only certificates, a
replayed or foreign challenge and an unknown IIN are each refused with their reason."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.config import Settings
from fhir_server.identity.registration import new_user
from fhir_server.identity.registry import Registry
from fhir_server.security.refs import IIN_SYSTEM
from signing import Signer, init_pki, load_signer, sign_cms
from tests.conftest import BASE
from tests.identity.conftest import MIS_BIN, PASSWORD, _store, approve, authorize_params, hidden, redirect_query

pytestmark = pytest.mark.req("TM-04")
DOCTOR_IIN = "123456789011"  # doctor-auth (authentication) and doctor (signing) in the test PKI


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    init_pki(directory)
    return directory


@pytest.fixture(scope="module")
def signer_for(pki: Path) -> Callable[[str], Signer]:
    return lambda name: load_signer(pki / f"{name}.key.pem", pki / f"{name}.cert.pem")


@pytest.fixture
def settings(tmp_path: Path, pki: Path) -> Settings:
    return Settings(database=tmp_path / "test.sqlite", synchronous_full=False, dev_key_path=tmp_path / "dev-jwks.json",
                    auth_server=True, base_url=BASE, auth_allow_http=True, auth_eds_signin=True,
                    auth_eds_trust_dir=pki / "trust", auth_eds_revocation_mode="hard")


@pytest.fixture
def doctor(registry: Registry) -> None:
    registry.add_user(new_user("dr.eds", PASSWORD, "practitioner", "Practitioner/dr1", MIS_BIN, iin=DOCTOR_IIN))


async def _eds_post(server: httpx.AsyncClient, params: dict[str, str], signer: Signer | None,
                    change: Callable[[str], str] = lambda c: c) -> tuple[httpx.Response, dict[str, Any]]:
    page = await server.get("/auth/authorize", params=params)
    assert page.status_code == 200 and 'name="eds_cms"' in page.text
    challenge = hidden(page.text, "eds_challenge")
    signed = change(challenge)
    cms = await sign_cms(signed.encode("utf-8"), signer) if signer is not None else b"not a signature"
    form = {**params, "csrf_token": hidden(page.text, "csrf_token"), "signin_method": "eds",
            "eds_challenge": challenge, "eds_cms": base64.b64encode(cms).decode("ascii")}
    return await server.post("/auth/authorize", data=form), form


async def test_a_doctor_signs_in_with_the_authentication_certificate(server, pkce, signer_for, doctor, exchange):
    params = authorize_params(pkce, scope="openid fhirUser user/*.rs")
    response, _ = await _eds_post(server, params, signer_for("doctor-auth"))
    body = (await exchange(redirect_query(await approve(server, response))["code"])).json()
    assert body["access_token"] and "user/*.rs" in body["scope"].split()
    intro = (await server.post("/auth/introspect", data={"client_id": "smart-app", "token": body["access_token"]}))
    claims = intro.json()
    assert claims["sub"] == "dr.eds" and claims["role"] == "practitioner" and claims["bin"] == MIS_BIN


async def test_a_challenge_is_single_use(server, pkce, signer_for, doctor):
    params = authorize_params(pkce)
    first, form = await _eds_post(server, params, signer_for("doctor-auth"))
    assert first.status_code == 200  # the consent screen
    replay = await server.post("/auth/authorize", data=form)
    assert replay.status_code == 401 and "already used" in replay.text


@pytest.mark.parametrize(("name", "reason"), [
    ("expired", "certificate-expired"),
    ("revoked", "certificate-revoked"),
    ("untrusted", "untrusted-chain"),
    ("doctor", "wrong-key-usage"),  # the same person's signing certificate is not for authentication
])
async def test_bad_certificates_are_refused_with_their_reason(server, pkce, signer_for, doctor, registry, name,
                                                              reason):
    for leaf in ("expired", "revoked", "untrusted"):  # registered, so only the certificate can be the reason
        iin = {"expired": "123456789015", "revoked": "123456789017", "untrusted": "123456789018"}[leaf]
        if registry.user(leaf) is None:
            registry.add_user(new_user(leaf, PASSWORD, "patient", f"Patient/{leaf}", None, iin=iin))
    response, _ = await _eds_post(server, authorize_params(pkce), signer_for(name))
    assert response.status_code == 401 and reason in response.text and "location" not in response.headers


async def test_a_signature_over_something_else_is_refused(server, pkce, signer_for, doctor):
    response, _ = await _eds_post(server, authorize_params(pkce), signer_for("doctor-auth"),
                                  change=lambda c: c + " and more")
    assert response.status_code == 401 and "digest-mismatch" in response.text


async def test_a_forged_or_foreign_challenge_is_refused(server, pkce, signer_for, doctor):
    page = await server.get("/auth/authorize", params=authorize_params(pkce))
    challenge = hidden(page.text, "eds_challenge")
    foreign = challenge.replace(BASE, "https://other.example.kz")
    cms = await sign_cms(foreign.encode(), signer_for("doctor-auth"))
    form = {**authorize_params(pkce), "csrf_token": hidden(page.text, "csrf_token"), "signin_method": "eds",
            "eds_challenge": foreign, "eds_cms": base64.b64encode(cms).decode()}
    response = await server.post("/auth/authorize", data=form)
    assert response.status_code == 401 and "not valid" in response.text
    garbage, _ = await _eds_post(server, authorize_params(pkce), None)
    assert garbage.status_code == 401


async def test_an_unknown_iin_is_refused(server, pkce, signer_for):
    response, _ = await _eds_post(server, authorize_params(pkce), signer_for("doctor-auth"))
    assert response.status_code == 401 and "No account" in response.text


async def test_the_iin_is_found_as_a_practitioner_identifier(server, pkce, signer_for, registry, exchange):
    await _store(server.app, {"resourceType": "Practitioner", "id": "dr9",
                              "identifier": [{"system": IIN_SYSTEM, "value": DOCTOR_IIN}]})
    registry.add_user(new_user("dr.nine", PASSWORD, "practitioner", "Practitioner/dr9", MIS_BIN))
    response, _ = await _eds_post(server, authorize_params(pkce, scope="openid user/*.rs"),
                                  signer_for("doctor-auth"))
    body = (await exchange(redirect_query(await approve(server, response))["code"])).json()
    claims = (await server.post("/auth/introspect", data={"client_id": "smart-app",
                                                         "token": body["access_token"]})).json()
    assert claims["sub"] == "dr.nine"


async def test_an_iin_mismatch_between_the_account_and_the_resource_is_refused(server, pkce, signer_for, registry):
    await _store(server.app, {"resourceType": "Practitioner", "id": "dr9",
                              "identifier": [{"system": IIN_SYSTEM, "value": DOCTOR_IIN}]})
    registry.add_user(new_user("dr.nine", PASSWORD, "practitioner", "Practitioner/dr9", MIS_BIN,
                               iin="999999999999"))
    response, _ = await _eds_post(server, authorize_params(pkce), signer_for("doctor-auth"))
    assert response.status_code == 401 and "No account" in response.text


@pytest.mark.req("AC-14")
async def test_a_refused_certificate_is_audited_with_its_reason(server, pkce, signer_for, doctor, auth):
    await _eds_post(server, authorize_params(pkce), signer_for("expired"))
    await asyncio.sleep(0)
    found = await server.get("/AuditEvent?_count=200", headers=auth("auditor", "Practitioner/aud1"))
    texts = [e["resource"].get("outcomeDesc", "") for e in found.json().get("entry", [])]
    assert any(t.startswith("sign-in failed (eds)") and "certificate-expired" in t for t in texts)
