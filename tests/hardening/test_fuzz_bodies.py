"""Hostile JSON against create, update, $validate, transaction and batch, open and secure: never
a 5xx, always an OperationOutcome when refused (issue 12 proof)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.hardening.fuzzing import FHIR_JSON, FUZZ, HOSTILE_BODIES, TYPES, Server, check, server

__all__ = ["server"]  # the module-scoped fixture, one server per mode

TARGETS = st.sampled_from(["create", "update", "validate", "transaction", "batch"])


def _entry(doc: str, method: str) -> str:
    return '{"resource":' + doc + ',"request":{"method":"' + method + '","url":"Patient' + (
        '/p9' if method == "PUT" else "") + '"}}'


@FUZZ
@given(doc=HOSTILE_BODIES, target=TARGETS, rtype=TYPES)
def test_hostile_json_is_answered_with_an_outcome(server: Server, doc: str, target: str, rtype: str) -> None:
    body = doc.encode("utf-8", "surrogatepass")
    if target == "create":
        r = server.request("POST", f"/{rtype}", content=body, headers=FHIR_JSON)
    elif target == "update":
        r = server.request("PUT", f"/{rtype}/p1", content=body, headers=FHIR_JSON)
    elif target == "validate":
        r = server.request("POST", f"/{rtype}/$validate", content=body, headers=FHIR_JSON)
    else:
        bundle = '{"resourceType":"Bundle","type":"' + target + '","entry":[' + _entry(doc, "POST") + "," + (
            _entry(doc, "PUT")) + "]}"
        r = server.request("POST", "/", content=bundle.encode("utf-8", "surrogatepass"), headers=FHIR_JSON)
    check(r)


@FUZZ
@given(doc=HOSTILE_BODIES)
def test_hostile_json_in_parameters_of_operations(server: Server, doc: str) -> None:
    body = ('{"resourceType":"Parameters","parameter":[{"name":"resource","resource":' + doc + "}]}").encode(
        "utf-8", "surrogatepass")
    check(server.request("POST", "/Patient/$validate", content=body, headers=FHIR_JSON))


def test_the_issue_12_bodies_are_400_with_a_path(server: Server) -> None:
    cases = {
        b'{"resourceType":"Patient","":1}': "Patient",
        b'{"resourceType":"Patient","name":[{"family":"\\ud800"}]}': "Patient.name[0].family",
        b'{"resourceType":"Patient","\\ud800":1}': "Patient",
        b'{"resourceType":"Observation","valueQuantity":{"value":1e400}}': "Observation.valueQuantity.value",
        b'{"resourceType":"Observation","valueQuantity":{"value":-1e400}}': "Observation.valueQuantity.value",
        b'{"resourceType":"Patient","gender":"male","gender":"female"}': "Patient.gender",
    }
    for body, expression in cases.items():
        for method, url in (("POST", "/Patient"), ("PUT", "/Patient/p1"), ("POST", "/Patient/$validate")):
            r = server.request(method, url, content=body, headers=FHIR_JSON)
            assert r.status_code == 400, (method, url, body, r.text)
            issue = r.json()["issue"][0]
            assert issue["code"] == "structure" and issue["expression"] == [expression], issue


def test_an_integer_of_2_64_in_a_decimal_is_stored_exactly(server: Server) -> None:
    body = (b'{"resourceType":"Observation","status":"final","code":{"text":"x"},'
            b'"valueQuantity":{"value":18446744073709551616}}')
    r = server.request("POST", "/Observation", content=body, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    read = server.request("GET", r.headers["location"].split("/_history")[0].removeprefix("http://kzfhir.test"))
    assert b'"value":18446744073709551616' in read.content
