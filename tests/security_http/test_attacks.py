"""Issue 10's attacks, each reproduced as a hostile caller would and answered as the fix requires.

The world (tests/security_http/conftest.py): Patients p1 and p2; dr1 may read p1's Observations
(Consent cons1); the organisation BIN 940140000385 may read p1's Observations and Conditions
(cons-org); dr2 has no consent of anyone; nobody has a consent of p2 but p2.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import pytest

from tests.security_http.conftest import BIN, FHIR_JSON, consent

pytestmark = [pytest.mark.req("AC-12"), pytest.mark.req("AC-01")]

OBS_P2 = {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
          "subject": {"reference": "Patient/p2"}}


def _bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _get(url: str) -> dict[str, Any]:
    return {"request": {"method": "GET", "url": url}}


async def _store(server, resource: dict[str, Any]) -> None:
    """Set-up the way the server writes its own resources: one version through the write path's
    ``store_version`` (index rows and patients computed as for any write), no caller involved."""
    from fhir_server.interactions.write import store_version

    services = server.app.state.services
    await services.store.transaction(lambda view: store_version(
        view, services, resource, resource["resourceType"], resource["id"], 1, "PUT"))


async def _events(server, token, patient: str) -> list[dict[str, Any]]:
    auditor = token("auditor", "Practitioner/dr2")
    body = (await server.get(f"/AuditEvent?patient=Patient/{patient}&_count=500", headers=auditor)).json()
    return [e["resource"] for e in body.get("entry", [])]


def _by_request(events: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [e for e in events if any(ent.get("what", {}).get("identifier", {}).get("value") == request_id
                                     for ent in e.get("entity", []))]


# -- 1. a search inside a batch or transaction ---------------------------------------------------------
@pytest.mark.parametrize("kind", ["batch", "transaction"])
@pytest.mark.parametrize("role", [("practitioner", "Practitioner/dr2"), ("patient", "Patient/p1"),
                                  ("practitioner", "Practitioner/dr1")])
async def test_a_search_inside_a_bundle_returns_only_what_the_caller_may_see(server, token, kind, role):
    headers = {**token(*role), **FHIR_JSON}
    bundle = _bundle(kind, _get("Observation?subject=Patient/p2"), _get("Observation?_id=o2"),
                     _get("Patient?_id=p2&_revinclude=Observation:subject"))
    r = await server.post("/", json=bundle, headers=headers)
    assert r.status_code == 200, r.text
    for entry in r.json()["entry"]:
        assert entry["response"]["status"].startswith("200")
        inner = entry["resource"]
        assert "total" not in inner  # filtered results never carry a total
        assert [e for e in inner.get("entry", []) if e["search"]["mode"] != "outcome"] == []


@pytest.mark.parametrize("url", ["Observation?subject:Patient.name=Садыкова", "Patient?_has:Observation:patient:code=x",
                                 "Observation?subject=Patient/p2&_summary=count"])
async def test_chains_has_and_counts_inside_a_bundle_are_refused_as_directly(server, token, url):
    headers = {**token("practitioner", "Practitioner/dr2"), **FHIR_JSON}
    direct = await server.get(f"/{url}", headers=headers)
    r = await server.post("/", json=_bundle("batch", _get(url)), headers=headers)
    assert direct.status_code == 403
    assert r.json()["entry"][0]["response"]["status"].startswith("403")


@pytest.mark.req("AC-14")
@pytest.mark.req("AC-24")
async def test_a_search_in_a_bundle_that_showed_nothing_is_in_the_targeted_patients_log(server, token):
    headers = {**token("practitioner", "Practitioner/dr2"), **FHIR_JSON, "X-Request-Id": "probe-batch-1"}
    await server.post("/", json=_bundle("batch", _get("Observation?subject=Patient/p2")), headers=headers)
    probes = _by_request(await _events(server, token, "p2"), "probe-batch-1")
    assert probes and all(e["outcome"] == "4" for e in probes)
    log = (await server.get("/Patient/p2/$access-log", headers=token("patient", "Patient/p2"))).json()
    assert any(e["resource"]["agent"][0]["who"].get("reference") == "Practitioner/dr2" for e in log["entry"])


# -- 2 and 3. conditional forms are no oracle over hidden data -------------------------------------------
async def test_if_none_exist_matching_a_hidden_resource_does_not_return_it(server, token):
    patient = {**token("patient", "Patient/p1"), **FHIR_JSON}  # o2 is p2's: hidden from p1
    entry = {"resource": {**OBS_P2, "subject": {"reference": "Patient/p1"}},
             "request": {"method": "POST", "url": "Observation", "ifNoneExist": "_id=o2"}}
    r = await server.post("/", json=_bundle("transaction", entry), headers=patient)
    assert r.status_code == 200, r.text
    response = r.json()["entry"][0]
    assert response["response"]["status"].startswith("201")  # no visible match: created, o2 is not handed out
    assert response["resource"]["id"] != "o2"


async def _answers(server, headers, method: str, criteria: str, body: dict[str, Any] | None) -> tuple[int, str]:
    url = f"/Observation?{criteria}"
    if method == "POST":
        r = await server.post("/Observation", json=body, headers={**headers, "If-None-Exist": criteria})
    elif method == "PUT":
        r = await server.put(url, json=body, headers=headers)
    else:
        r = await server.delete(url, headers=headers)
    text = r.json()["issue"][0]["diagnostics"] if r.status_code >= 400 else ""
    return r.status_code, text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_conditional_writes_answer_alike_for_a_hidden_match_and_for_no_match(server, token, method):
    """dr2 writes an Observation of p1 (no consent): the answer must not depend on whether a hidden
    Observation of p2 matches the criteria."""
    headers = {**token("practitioner", "Practitioner/dr2"), **FHIR_JSON}
    body = {**OBS_P2, "subject": {"reference": "Patient/p1"}}
    hidden = await _answers(server, headers, method, "_id=o2", body)
    nothing = await _answers(server, headers, method, "_id=no-such-observation", body)
    assert hidden == nothing
    assert "p2" not in hidden[1] and "o2" not in hidden[1]
    r = await server.get("/Observation/o2", headers=token("patient", "Patient/p2"))
    assert r.status_code == 200  # the hidden match was not deleted or changed


async def test_a_conditional_update_never_overwrites_a_hidden_match(server, token):
    patient = {**token("patient", "Patient/p1"), **FHIR_JSON}
    own = {**OBS_P2, "subject": {"reference": "Patient/p1"}, "code": {"text": "home reading"}}
    r = await server.put("/Observation?_id=o2", json=own, headers=patient)
    assert r.status_code == 201  # created anew under a server id: o2 of p2 is absent for p1
    assert r.json()["id"] != "o2"
    o2 = (await server.get("/Observation/o2", headers=token("patient", "Patient/p2"))).json()
    assert o2["subject"]["reference"] == "Patient/p2" and o2["meta"]["versionId"] == "1"


async def test_update_as_create_answers_alike_for_a_free_and_a_hidden_id(server, token):
    headers = {**token("practitioner", "Practitioner/dr1"), **FHIR_JSON}
    body = {**OBS_P2, "subject": {"reference": "Patient/p1"}}
    taken = await server.put("/Observation/o2", json={**body, "id": "o2"}, headers=headers)
    free = await server.put("/Observation/o-free", json={**body, "id": "o-free"}, headers=headers)
    assert taken.status_code == free.status_code == 405
    assert taken.json()["issue"][0]["diagnostics"] == free.json()["issue"][0]["diagnostics"]


# -- 4. who may write a Consent -----------------------------------------------------------------------
def _grant_to(who: str, status: str = "active") -> dict[str, Any]:
    grant = consent("ignored", {"reference": who}, classes=("Observation", "Condition", "Patient"))
    grant.pop("id")
    grant["status"] = status
    grant["performer"] = [{"reference": "Patient/p1"}]
    return grant


@pytest.mark.req("AC-04")
@pytest.mark.req("AC-09")
@pytest.mark.parametrize(("role", "user", "extra"), [
    ("practitioner", "Practitioner/dr1", {}),  # holds p1's consent
    ("practitioner", "Practitioner/dr2", {"break_glass": "emergency"}),
    ("system", None, {"bin": BIN}),  # an organisation without the patient's signed form
    ("related-person", "RelatedPerson/rp2", {}),  # authority not verified
    ("patient", "Patient/p2", {}),  # someone else
])
async def test_only_the_patient_or_a_verified_representative_makes_a_consent_active(server, token, role, user, extra):
    headers = {**token(role, user, **extra), **FHIR_JSON}
    r = await server.post("/Consent", json=_grant_to("Practitioner/dr2"), headers=headers)
    assert r.status_code in (403, 404), r.text
    cons1 = (await server.get("/Consent/cons1", headers=token("patient", "Patient/p1"))).json()
    widened = {**cons1, "provision": _grant_to("Practitioner/dr2")["provision"]}
    r = await server.put("/Consent/cons1", json=widened, headers=headers)
    assert r.status_code in (403, 404, 405), r.text
    dr2 = token("practitioner", "Practitioner/dr2")
    assert (await server.get("/Observation/o1", headers=dr2)).status_code == 404  # nothing was granted


@pytest.mark.req("AC-04")
async def test_a_practitioner_proposes_and_the_patient_activates_and_revokes(server, token):
    dr1 = {**token("practitioner", "Practitioner/dr1"), **FHIR_JSON}
    r = await server.post("/Consent", json=_grant_to("Practitioner/dr2", "proposed"), headers=dr1)
    assert r.status_code == 201, r.text
    proposed = r.json()
    dr2 = token("practitioner", "Practitioner/dr2")
    assert (await server.get("/Observation/o1", headers=dr2)).status_code == 404
    patient = {**token("patient", "Patient/p1"), **FHIR_JSON}
    r = await server.put(f"/Consent/{proposed['id']}", json={**proposed, "status": "active"}, headers=patient)
    assert r.status_code == 200, r.text
    assert (await server.get("/Observation/o1", headers=dr2)).status_code == 200
    r = await server.put(f"/Consent/{proposed['id']}", json={**r.json(), "status": "inactive"}, headers=patient)
    assert r.status_code == 200
    assert (await server.get("/Observation/o1", headers=dr2)).status_code == 404  # revocation holds at once
    representative = {**token("related-person", "RelatedPerson/rp1"), **FHIR_JSON}
    r = await server.post("/Consent", json=_grant_to("Practitioner/dr2"), headers=representative)
    assert r.status_code == 201, r.text  # a verified representative acts for the patient (AC-09)


@pytest.mark.req("AC-08")
async def test_an_organisation_records_an_active_consent_only_with_the_patients_eds(server, token, tmp_path):
    from signing import init_pki, load_signer, sign_pdf
    from tests.signing.samples import make_pdf

    init_pki(tmp_path / "pki")
    # the test PKI's "doctor" certificate carries IIN 123456789011: here it is the patient's own certificate
    await _store(server, {"resourceType": "Patient", "id": "p9",
                          "identifier": [{"system": "https://fhir.kzfhir.kz/sid/iin", "value": "123456789011"}]})
    system = {**token("system", bin=BIN), **FHIR_JSON}

    async def form(signer_name: str) -> dict[str, Any]:
        signer = load_signer(tmp_path / "pki" / f"{signer_name}.key.pem", tmp_path / "pki" / f"{signer_name}.cert.pem")
        pdf = await sign_pdf(make_pdf("Consent to the collection and processing of personal medical data"), signer)
        grant = consent("ignored", {"identifier": {"system": "https://fhir.kzfhir.kz/sid/bin", "value": BIN}},
                        classes=("Observation",))
        grant.pop("id")
        grant["patient"] = {"reference": "Patient/p9"}
        grant["sourceAttachment"] = {"contentType": "application/pdf", "data": base64.b64encode(pdf).decode()}
        return grant

    others = await server.post("/Consent", json=await form("doctor-ec"), headers=system)  # another person's EDS
    assert others.status_code == 403 and "signed" in others.json()["issue"][0]["diagnostics"]
    owners = await server.post("/Consent", json=await form("doctor"), headers=system)
    assert owners.status_code == 201, owners.text


async def test_registration_is_a_patient_and_a_consent_request_and_data_waits_for_activation(server, token):
    org = {"identifier": {"system": "https://fhir.kzfhir.kz/sid/bin", "value": BIN}}
    request = consent("ignored", org, classes=("Observation", "Patient"), actions=("collect", "access"),
                      status="proposed")
    request.pop("id")
    request["patient"] = {"reference": "urn:uuid:0000000a-0000-0000-0000-000000000009"}
    system = {**token("system", bin=BIN), **FHIR_JSON}
    obs = {"resource": {**OBS_P2, "subject": {"reference": "urn:uuid:0000000a-0000-0000-0000-000000000009"}},
           "request": {"method": "POST", "url": "Observation"}}
    register = [{"fullUrl": "urn:uuid:0000000a-0000-0000-0000-000000000009",
                 "resource": {"resourceType": "Patient", "name": [{"family": "Новый"}]},
                 "request": {"method": "POST", "url": "Patient"}},
                {"resource": request, "request": {"method": "POST", "url": "Consent"}}]
    early = await server.post("/", json=_bundle("transaction", *register, obs), headers=system)
    assert early.status_code == 403, early.text
    assert "urn:uuid:0000000a-0000-0000-0000-000000000009" in early.json()["issue"][0]["diagnostics"]
    r = await server.post("/", json=_bundle("transaction", *register), headers=system)
    assert r.status_code == 200, r.text
    patient_id = r.json()["entry"][0]["response"]["location"].split("/")[1]
    consent_id = r.json()["entry"][1]["response"]["location"].split("/")[1]
    own = {**token("patient", f"Patient/{patient_id}"), **FHIR_JSON}
    proposed = (await server.get(f"/Consent/{consent_id}", headers=own)).json()
    assert (await server.put(f"/Consent/{consent_id}", json={**proposed, "status": "active"}, headers=own)
            ).status_code == 200
    data = {**obs["resource"], "subject": {"reference": f"Patient/{patient_id}"}}
    assert (await server.post("/Observation", json=data, headers=system)).status_code == 201
    plain = await server.post("/Patient", json={"resourceType": "Patient", "gender": "female"}, headers=system)
    assert plain.status_code == 403  # a person is registered with their consent (request), never alone


# -- 5. $everything, history and resources about a patient's data -----------------------------------------
@pytest.mark.parametrize("path", ["/Patient/{p}/$everything", "/Patient/{p}/_history", "/Patient/{p}/$access-log",
                                  "/Patient/{p}"])
async def test_a_hidden_patient_answers_like_an_unknown_one(server, token, path):
    dr2 = token("practitioner", "Practitioner/dr2")
    hidden = await server.get(path.format(p="p2"), headers=dr2)
    unknown = await server.get(path.format(p="nobody"), headers=dr2)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["issue"][0]["diagnostics"].replace("p2", "X") == \
        unknown.json()["issue"][0]["diagnostics"].replace("nobody", "X")


async def test_provenance_of_hidden_data_is_the_patients_data(server, token):
    """A Provenance names no patient itself: it is the data of the patients whose resources it targets."""
    await _store(server, {"resourceType": "Provenance", "id": "prov-o2", "target": [{"reference": "Observation/o2"}],
                          "recorded": "2025-05-01T10:00:00+05:00",
                          "agent": [{"who": {"reference": "Practitioner/dr1"}}]})
    pid = "prov-o2"
    for role, user in (("practitioner", "Practitioner/dr1"), ("practitioner", "Practitioner/dr2"),
                       ("patient", "Patient/p1")):
        headers = token(role, user)
        assert (await server.get(f"/Provenance/{pid}", headers=headers)).status_code == 404
        found = (await server.get("/Provenance?target=Observation/o2", headers=headers)).json()
        assert found.get("entry", []) == []
    assert (await server.get(f"/Provenance/{pid}", headers=token("patient", "Patient/p2"))).status_code == 200


# -- 7. every attempt is audited -------------------------------------------------------------------------
@pytest.mark.req("AC-14")
async def test_unknown_ids_and_empty_searches_leave_a_record(server, token):
    dr2 = token("practitioner", "Practitioner/dr2")
    await server.get("/Observation/no-such-id", headers={**dr2, "X-Request-Id": "probe-unknown"})
    await server.get("/Observation?subject=Patient/p2", headers={**dr2, "X-Request-Id": "probe-empty"})
    await server.get("/Observation?code=nothing-like-this", headers={**dr2, "X-Request-Id": "probe-none"})
    auditor = token("auditor", "Practitioner/dr2")
    everything = (await server.get("/AuditEvent?_count=1000", headers=auditor)).json()
    events = [e["resource"] for e in everything["entry"]]
    for request_id in ("probe-unknown", "probe-empty", "probe-none"):
        assert _by_request(events, request_id), request_id
    assert _by_request(await _events(server, token, "p2"), "probe-empty")  # the targeted patient's log


@pytest.mark.req("AC-14")
async def test_a_failed_login_keeps_the_clients_request_id(server, token):
    await server.get("/Observation/o1", headers={"Authorization": "Bearer not.a.token", "X-Request-Id": "login-1"})
    auditor = token("auditor", "Practitioner/dr2")
    events = [e["resource"] for e in (await server.get("/AuditEvent?_count=200", headers=auditor)).json()["entry"]]
    logins = [e for e in _by_request(events, "login-1") if e["type"]["code"] == "110114"]
    assert logins


@pytest.mark.req("AC-14")
async def test_every_entry_of_a_batch_is_audited(server, token):
    headers = {**token("practitioner", "Practitioner/dr1"), **FHIR_JSON, "X-Request-Id": "batch-7"}
    bundle = _bundle("batch", _get("Observation/o1"), _get("Observation/o2"), _get("Condition?subject=Patient/p1"),
                     {"request": {"method": "DELETE", "url": "Observation?_id=nothing"}})
    r = await server.post("/", json=bundle, headers=headers)
    assert [e["response"]["status"][:3] for e in r.json()["entry"]] == ["200", "404", "200", "204"]
    auditor = token("auditor", "Practitioner/dr2")
    events = [e["resource"] for e in (await server.get("/AuditEvent?_count=500", headers=auditor)).json()["entry"]]
    subtypes = [e["subtype"][0]["code"] for e in _by_request(events, "batch-7")]
    assert {"read", "search-type", "delete"} <= set(subtypes)
    assert len(_by_request(events, "batch-7")) >= 4


def _quote(text: str) -> str:
    return quote(text, safe="")
