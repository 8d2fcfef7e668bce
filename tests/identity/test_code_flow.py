"""SMART App Launch 2.2, authorization code + PKCE, end to end over HTTP: a patient signs in on the server's
form, the app exchanges the code, reads the patient's data with the token under the access policy, and gets
an OpenID id_token with fhirUser (issue 16 "Proof")."""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import BASE
from tests.identity.conftest import APP, PASSWORD, REDIRECT, authorize_params, redirect_query, sign_in_form

pytestmark = pytest.mark.req("TM-04")


async def test_a_patient_signs_in_and_reads_their_data_with_the_token(server, pkce, sign_in, exchange):
    params = authorize_params(pkce)
    query = await sign_in(params)
    assert query["state"] == params["state"]
    response = await exchange(query["code"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 600
    assert set(body["scope"].split()) == {"openid", "fhirUser", "launch/patient", "offline_access", "patient/*.rs"}
    assert body["patient"] == "p1"  # standalone launch/patient: a patient user is their own context
    assert body["refresh_token"] and body["id_token"]

    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    own = await server.get("/Patient/p1", headers=bearer)
    assert own.status_code == 200, own.text
    assert own.json()["id"] == "p1"
    found = await server.get("/Observation", headers=bearer)
    assert found.status_code == 200, found.text
    assert [e["resource"]["id"] for e in found.json().get("entry", [])] == ["o1"]  # the policy still decides
    other = await server.get("/Patient/p2", headers=bearer)
    assert other.status_code in (403, 404)


async def test_the_access_token_carries_the_claims_the_resource_server_reads(server, pkce, sign_in, exchange):
    body = (await exchange((await sign_in(authorize_params(pkce)))["code"])).json()
    keys = KeySet.import_key_set((await server.get("/auth/jwks")).json())
    claims = jwt.decode(body["access_token"], keys, algorithms=["ES256"]).claims
    assert claims["iss"] == f"{BASE}/auth" and claims["aud"] == BASE
    assert claims["role"] == "patient" and claims["fhirUser"] == f"{BASE}/Patient/p1"
    assert claims["patient"] == "p1" and claims["client_id"] == APP and claims["sub"] == "aigerim"
    assert claims["jti"] and claims["exp"] - claims["iat"] <= 600
    assert "patient/*.rs" in claims["scope"].split()


async def test_the_id_token_names_the_user_with_fhirUser(server, pkce, sign_in, exchange):
    params = authorize_params(pkce, nonce="n-0S6_WzA2Mj")
    body = (await exchange((await sign_in(params))["code"])).json()
    keys = KeySet.import_key_set((await server.get("/auth/jwks")).json())
    claims = jwt.decode(body["id_token"], keys, algorithms=["ES256"]).claims
    assert claims["iss"] == f"{BASE}/auth" and claims["aud"] == [APP] and claims["sub"] == "aigerim"
    assert claims["fhirUser"] == f"{BASE}/Patient/p1" and claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["exp"] > time.time() and "at_hash" in claims


async def test_pkce_plain_is_refused(server, pkce):
    params = authorize_params(pkce, code_challenge_method="plain", code_challenge=pkce.verifier)
    query = redirect_query(await server.get("/auth/authorize", params=params))
    assert query["error"] == "invalid_request" and "S256" in query["error_description"]
    assert query["state"] == params["state"]


async def test_pkce_is_required(server, pkce):
    query = redirect_query(await server.get("/auth/authorize",
                                            params=authorize_params(pkce, code_challenge="", code_challenge_method="")))
    assert query["error"] == "invalid_request" and "PKCE" in query["error_description"]


async def test_a_wrong_code_verifier_is_refused_and_spends_the_code(server, pkce, sign_in, exchange):
    code = (await sign_in(authorize_params(pkce)))["code"]
    wrong = await exchange(code, verifier="x" * 64)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    again = await exchange(code)  # the right verifier, too late: a code is tried once
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


async def test_a_code_is_exchanged_once(server, pkce, sign_in, exchange):
    code = (await sign_in(authorize_params(pkce)))["code"]
    assert (await exchange(code)).status_code == 200
    replay = await exchange(code)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


async def test_a_wrong_password_shows_the_form_again(server, pkce, sign_in):
    params = authorize_params(pkce)
    form = {**await sign_in_form(server, params), "signin_method": "password", "username": "aigerim",
            "password": "not the password"}
    response = await server.post("/auth/authorize", data=form)
    assert response.status_code == 401
    assert "not correct" in response.text and "location" not in response.headers
    unknown = await server.post("/auth/authorize", data={**form, "username": "nobody", "password": PASSWORD})
    assert unknown.status_code == 401 and "not correct" in unknown.text  # the same answer: no enumeration
    assert response.headers["x-frame-options"] == "DENY"


async def test_the_aud_must_be_this_fhir_server(server, pkce):
    query = redirect_query(await server.get("/auth/authorize",
                                            params=authorize_params(pkce, aud="https://other.example.kz/fhir")))
    assert query["error"] == "invalid_request" and "aud" in query["error_description"]


async def test_an_unregistered_redirect_uri_is_never_redirected_to(server, pkce):
    response = await server.get("/auth/authorize",
                                params=authorize_params(pkce, redirect_uri="https://evil.example/cb"))
    assert response.status_code == 400 and "location" not in response.headers


async def test_an_unknown_client_gets_an_error_page(server, pkce):
    response = await server.get("/auth/authorize", params=authorize_params(pkce, client_id="nobody"))
    assert response.status_code == 400 and "invalid_client" in response.text


async def test_scopes_the_client_is_not_registered_for_are_not_granted(server, pkce, sign_in, exchange):
    params = authorize_params(pkce, scope="openid patient/*.rs system/*.cruds")
    body = (await exchange((await sign_in(params))["code"])).json()
    assert body["scope"].split() == ["openid", "patient/*.rs"]
    assert "refresh_token" not in body  # neither offline_access nor online_access asked


async def test_a_practitioner_gets_no_standalone_patient_context(server, pkce, sign_in, exchange):
    params = authorize_params(pkce, scope="openid fhirUser launch/patient user/*.rs")
    body = (await exchange((await sign_in(params, username="dr.serik"))["code"])).json()
    assert "patient" not in body and "launch/patient" not in body["scope"].split()


async def test_ehr_launch_gives_the_launched_patient(server, pkce, sign_in, exchange, auth):
    ehr = auth("practitioner", "Practitioner/dr1", bin="940140000385")
    opened = await server.post("/auth/launch", data={"patient": "Patient/p2"}, headers=ehr)
    assert opened.status_code == 201, opened.text
    launch = opened.json()["launch"]
    params = authorize_params(pkce, scope="openid launch patient/*.rs", launch=launch)
    body = (await exchange((await sign_in(params, username="dr.serik"))["code"])).json()
    assert body["patient"] == "p2" and "launch" in body["scope"].split()


async def test_an_unknown_launch_is_refused(server, pkce):
    params = authorize_params(pkce, scope="openid launch patient/*.rs", launch="made-up")
    query = redirect_query(await server.get("/auth/authorize", params=params))
    assert query["error"] == "invalid_request" and "launch" in query["error_description"]


async def test_only_practitioners_and_systems_open_launch_contexts(server, auth):
    patient = auth("patient", "Patient/p1")
    assert (await server.post("/auth/launch", data={"patient": "p1"}, headers=patient)).status_code == 403
    assert (await server.post("/auth/launch", data={"patient": "p1"})).status_code == 401


async def test_authorize_by_post_shows_the_sign_in_form(server, pkce):
    response = await server.post("/auth/authorize", data=authorize_params(pkce))
    assert response.status_code == 200 and 'name="username"' in response.text


async def test_a_redirect_uri_is_matched_exactly(server, pkce):
    response = await server.get("/auth/authorize", params=authorize_params(pkce, redirect_uri=REDIRECT + "/x"))
    assert response.status_code == 400


async def test_token_responses_are_not_cached(server, pkce, sign_in, exchange):
    response = await exchange((await sign_in(authorize_params(pkce)))["code"])
    assert response.headers["cache-control"] == "no-store" and response.headers["pragma"] == "no-cache"


async def test_an_invalid_code_and_a_code_of_another_client_are_refused(server, pkce, sign_in, exchange, registry):
    from fhir_server.identity.registration import new_client

    bad = await exchange("no-such-code")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    registry.add_client(new_client("other-app", "Other", redirect_uris=[REDIRECT], scopes=["patient/*.rs"]))
    code = (await sign_in(authorize_params(pkce)))["code"]
    stolen = await server.post("/auth/token", data={"grant_type": "authorization_code", "code": code,
                                                    "redirect_uri": REDIRECT, "client_id": "other-app",
                                                    "code_verifier": pkce.verifier})
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"


async def test_a_disabled_user_cannot_sign_in_or_refresh(server, pkce, sign_in, exchange, registry):
    body = (await exchange((await sign_in(authorize_params(pkce)))["code"])).json()
    registry.set_user_disabled("aigerim", True)
    form = {**await sign_in_form(server, authorize_params(pkce)), "signin_method": "password",
            "username": "aigerim", "password": PASSWORD}
    assert (await server.post("/auth/authorize", data=form)).status_code == 401
    refreshed = await server.post("/auth/token", data={"grant_type": "refresh_token", "client_id": APP,
                                                       "refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 400


async def test_a_parameter_sent_twice_is_refused(server, pkce):
    params = [*authorize_params(pkce).items(), ("scope", "user/*.cruds")]
    response = await server.get("/auth/authorize", params=params)
    assert response.status_code in (302, 400)
    assert "Multiple" in (response.headers.get("location", "") + response.text).replace("+", " ").replace("%27", "'")


@pytest.mark.req("AC-14")
async def test_sign_ins_failures_and_token_issue_are_audited(server, pkce, sign_in, exchange, auth):
    form = {**await sign_in_form(server, authorize_params(pkce)), "signin_method": "password",
            "username": "aigerim", "password": "wrong!!!"}
    assert (await server.post("/auth/authorize", data=form)).status_code == 401
    assert (await exchange((await sign_in(authorize_params(pkce)))["code"])).status_code == 200
    assert (await exchange("spent-or-made-up")).status_code == 400
    auditor = auth("auditor", "Practitioner/aud1")
    found = await server.get("/AuditEvent?_count=200", headers=auditor)
    assert found.status_code == 200, found.text
    logins = [e["resource"] for e in found.json().get("entry", [])
              if e["resource"]["subtype"][0]["code"] == "110122"]
    described = {(e["outcome"], e.get("outcomeDesc", "").split(":")[0].split(" (")[0]) for e in logins}
    assert ("4", "sign-in failed") in described
    assert ("0", "signed in") in described
    assert ("0", "authorization_code") in described
    assert ("4", "authorization_code refused") in described
    signed_in = next(e for e in logins if e["outcome"] == "0" and e["outcomeDesc"].startswith("signed in"))
    assert signed_in["agent"][0]["who"] == {"reference": "Patient/p1"}
    assert signed_in["agent"][1]["who"] == {"identifier": {"value": APP}}
    assert all("wrong!!!" not in str(e) for e in logins)
