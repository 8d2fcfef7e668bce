"""SMART v2 granular scopes from the built-in authorization server (issue 16): granted when asked, shown on
the consent screen, returned by introspection, honoured by the resource server; a scope it could not
enforce is refused with its reason. The checks of Inferno's SMART granular-scope tests (US Core / SMART
App Launch STU2.2 kits: "granular scopes" groups) are reproduced: the token response lists the granted
granular scopes, and searches made with that token return exactly the resources matching them."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from fhir_server.identity.registration import new_client
from tests.identity.conftest import (
    APP,
    PASSWORD,
    _store,
    approve,
    authorize_params,
    redirect_query,
    sign_in_form,
)

pytestmark = [pytest.mark.req("TM-04"), pytest.mark.req("AC-12")]
CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_SCOPE = f"patient/Observation.rs?category={CAT}|vital-signs"
SURVEY_SCOPE = f"patient/Observation.rs?category={CAT}|survey"
ASKED = f"openid fhirUser launch/patient patient/Patient.rs {VITAL_SCOPE} {SURVEY_SCOPE}"


def observation(oid: str, category: str | None, patient: str = "p1") -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Observation", "id": oid, "status": "final",
                                "code": {"text": "x"}, "subject": {"reference": f"Patient/{patient}"}}
    if category:
        resource["category"] = [{"coding": [{"system": CAT, "code": category}]}]
    return resource


async def _more_data(server: Any) -> None:
    for resource in (observation("lab1", "laboratory"), observation("sv1", "survey"), observation("none1", None)):
        await _store(server.app, resource)


def _bearer(body: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


def _ids(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "Observation"}


def _categories(resource: dict[str, Any]) -> set[str]:
    return {c.get("code") for cat in resource.get("category", []) for c in cat.get("coding", [])}


async def test_granular_scopes_are_granted_and_honoured_as_inferno_checks(server, pkce, sign_in, exchange):
    await _more_data(server)
    body = (await exchange((await sign_in(authorize_params(pkce, scope=ASKED)))["code"])).json()
    # Inferno: the token response's scope holds the granted granular scopes, exactly as asked
    assert set(body["scope"].split()) == set(ASKED.split())
    granted = _bearer(body)
    # Inferno: each search made with the granular token returns only resources matching a granted scope ...
    found = (await server.get("/Observation", headers=granted)).json()
    assert all(_categories(e["resource"]) & {"vital-signs", "survey"} for e in found.get("entry", []))
    # ... and every resource a granted scope matches (what the same search with those filters returns)
    wide = await exchange((await sign_in(authorize_params(pkce, scope="openid patient/*.rs")))["code"])
    everything = (await server.get("/Observation?category=vital-signs,survey", headers=_bearer(wide.json()))).json()
    assert _ids(found) == _ids(everything) == {"o1", "sv1"}
    # searching with the scope's own parameter, and with another category
    assert _ids((await server.get("/Observation?category=survey", headers=granted)).json()) == {"sv1"}
    assert _ids((await server.get("/Observation?category=laboratory", headers=granted)).json()) == set()
    assert (await server.get("/Observation/lab1", headers=granted)).status_code == 404
    assert (await server.get("/Observation/none1", headers=granted)).status_code == 404
    assert (await server.get("/Observation/sv1", headers=granted)).status_code == 200
    assert (await server.get("/Patient/p1", headers=granted)).status_code == 200


async def test_introspection_returns_the_granular_scopes(server, pkce, sign_in, exchange):
    body = (await exchange((await sign_in(authorize_params(pkce, scope=ASKED)))["code"])).json()
    seen = (await server.post("/auth/introspect", data={"token": body["access_token"], "client_id": APP})).json()
    assert seen["active"] is True
    assert VITAL_SCOPE in seen["scope"].split() and SURVEY_SCOPE in seen["scope"].split()


async def test_the_consent_screen_shows_each_granular_scope_and_what_it_limits(server, pkce):
    params = authorize_params(pkce, scope=ASKED)
    form = {**await sign_in_form(server, params), "signin_method": "password", "username": "aigerim",
            "password": PASSWORD}
    page = await server.post("/auth/authorize", data=form)
    assert page.status_code == 200 and 'name="consent_ticket"' in page.text
    offered = [html.unescape(s) for s in re.findall(r'name="scope_ok" value="([^"]*)"', page.text)]
    assert VITAL_SCOPE in offered and SURVEY_SCOPE in offered
    assert f"only Observation resources where <em>category = {CAT}|vital-signs</em>" in html.unescape(page.text)
    # the person may leave one out: it is not granted
    query = redirect_query(await approve(server, page, keep=["patient/Patient.rs", VITAL_SCOPE]))
    assert "code" in query


async def test_a_deselected_granular_scope_is_not_granted(server, pkce, exchange):
    params = authorize_params(pkce, scope=ASKED)
    form = {**await sign_in_form(server, params), "signin_method": "password", "username": "aigerim",
            "password": PASSWORD}
    page = await server.post("/auth/authorize", data=form)
    query = redirect_query(await approve(server, page, keep=[VITAL_SCOPE]))
    body = (await exchange(query["code"])).json()
    assert VITAL_SCOPE in body["scope"].split() and SURVEY_SCOPE not in body["scope"].split()


@pytest.mark.parametrize("scope, reason", [
    ("patient/Observation.rs?category:in=http://example.org/vs", "modifier ':in'"),
    ("patient/Observation.rs?subject.name=x", "chained"),
    ("patient/Observation.rs?_include=Observation:subject", "result parameter"),
    ("patient/Observation.rs?no-such-param=1", "not a search parameter"),
])
async def test_a_granular_scope_the_server_cannot_enforce_is_refused(server, pkce, scope, reason):
    response = await server.get("/auth/authorize", params=authorize_params(pkce, scope=f"openid {scope}"))
    query = redirect_query(response)
    assert query["error"] == "invalid_scope"
    assert reason in query["error_description"] and scope in query["error_description"]


async def test_a_backend_service_gets_granular_scopes_and_is_refused_unenforceable_ones(server, backend):
    lab = f"system/Observation.rs?category={CAT}|laboratory"
    granted = await server.post("/auth/token", data=backend.form(scope=lab))
    assert granted.status_code == 200, granted.text
    assert granted.json()["scope"] == lab
    refused = await server.post("/auth/token", data=backend.form(scope="system/Observation.rs?code:below=http://x|1"))
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope" and "':below'" in refused.json()["error_description"]


def test_registering_a_client_for_an_unenforceable_granular_scope_is_refused() -> None:
    with pytest.raises(ValueError, match="modifier ':not-in'"):
        new_client("x-app", "X", redirect_uris=["https://x.example/cb"],
                   scopes=["patient/Observation.rs?category:not-in=http://example.org/vs"])
    client = new_client("x-app", "X", redirect_uris=["https://x.example/cb"], scopes=[VITAL_SCOPE])
    assert client.scopes == (VITAL_SCOPE,)
