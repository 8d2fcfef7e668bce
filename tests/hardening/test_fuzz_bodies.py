"""Hostile JSON against create, update, $validate, transaction and batch, open and secure: never
a 5xx, always an OperationOutcome when refused (issue 12 proof)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.hardening.fuzzing import FHIR_JSON, FUZZ, HOSTILE_BODIES, TYPES, VALUES, Server, check, server

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


#: Operations whose inputs are value[x] parameters, each with the names it reads: a hostile value of any
#: JSON kind under any ``value[x]`` must be refused as such, never reach the handler as the wrong type.
OPERATIONS = st.sampled_from([
    ("/ValueSet/$expand", ("url", "filter", "count", "offset", "displayLanguage", "valueSet")),
    ("/ValueSet/$validate-code", ("url", "system", "code", "display", "coding", "codeableConcept", "valueSet")),
    ("/CodeSystem/$validate-code", ("url", "system", "code", "coding")),
    ("/CodeSystem/$lookup", ("system", "code", "version", "coding", "displayLanguage")),
    ("/ConceptMap/$translate", ("url", "system", "code", "source", "target", "targetsystem", "coding")),
    ("/Patient/p1/$everything", ("start", "end", "_since", "_type", "_count")),
    ("/Patient/p1/$access-log", ("date", "agent", "_count")),
    ("/Patient/$data-subject-request", ("patient", "kind", "reason", "period")),
    ("/Bundle/$verify-signature", ("bundle", "resource")),
])
VALUE_KEYS = st.sampled_from(["valueString", "valueUri", "valueCode", "valueInteger", "valueBoolean", "valueDecimal",
                              "valueCoding", "valueCodeableConcept", "valueReference", "valuePeriod", "valueDate",
                              "resource", "part", "valueX", "value"])


@FUZZ
@given(op=OPERATIONS, picks=st.lists(st.tuples(st.integers(0, 6), VALUE_KEYS, VALUES), min_size=1, max_size=4))
def test_type_confused_parameters_of_operations(server: Server, op: tuple[str, tuple[str, ...]],
                                                picks: list[tuple[int, str, str]]) -> None:
    url, names = op
    parameters = ",".join('{"name":"' + names[i % len(names)] + '","' + key + '":' + value + "}"
                          for i, key, value in picks)
    body = ('{"resourceType":"Parameters","parameter":[' + parameters + "]}").encode("utf-8", "surrogatepass")
    check(server.request("POST", url, content=body, headers=FHIR_JSON))


def test_a_value_of_the_wrong_kind_is_400_with_its_path(server: Server) -> None:
    body = b'{"resourceType":"Parameters","parameter":[{"name":"url","valueUri":{"a":1}}]}'
    r = server.request("POST", "/ValueSet/$expand", content=body, headers=FHIR_JSON)
    assert r.status_code == 400, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "structure" and issue["expression"] == ["Parameters.parameter[0].valueUri"]
    inline = b'{"resourceType":"Parameters","parameter":[{"name":"valueSet","resource":{"resourceType":"ValueSet",' \
        b'"compose":"x"}}]}'
    r = server.request("POST", "/ValueSet/$expand", content=inline, headers=FHIR_JSON)
    assert r.status_code == 400 and r.json()["issue"][0]["code"] == "structure", r.text
    r = server.request("GET", "/ValueSet/$expand?valueSet=x")  # a resource parameter cannot be in the URL
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["valueSet"], r.text


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
