"""What the server cannot honour is refused at create with 422 and an expression path; topics are
advertised in the CapabilityStatement and readable."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.subscriptions.spec import PAYLOAD_CONTENT
from fhir_server.subscriptions.topics import (
    APPOINTMENT,
    CONSENT,
    CRITICAL_READING,
    DATA_SUBJECT_REQUEST,
    NEHP_SUBMISSION,
)
from tests.subscriptions.conftest import World, subscription


def _with_channel(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**body, "channel": {**body["channel"], **changes}}


CASES: dict[str, tuple[Any, str]] = {
    "unknown topic": (lambda e: subscription(e, topic="https://example.org/SubscriptionTopic/x"),
                      "Subscription.criteria"),
    "classic criteria, unknown parameter": (lambda e: subscription(e, topic="Observation?nosuch=1", filters=()),
                                            "Subscription.criteria"),
    "classic criteria, result control": (lambda e: subscription(e, topic="Observation?_sort=date", filters=()),
                                         "Subscription.criteria"),
    "classic criteria, unknown type": (lambda e: subscription(e, topic="Nothing?code=1", filters=()),
                                       "Subscription.criteria"),
    "undeclared filter": (lambda e: subscription(e, filters=("Appointment?service-type=x",)),
                          "Subscription.criteria.extension[0]"),
    "filter on another type": (lambda e: subscription(e, filters=("Observation?patient=Patient/p1",)),
                               "Subscription.criteria.extension[0]"),
    "filter without value": (lambda e: subscription(e, filters=("Appointment?patient=",)),
                             "Subscription.criteria.extension[0]"),
    "message channel": (lambda e: subscription(e, channel="message"), "Subscription.channel.type"),
    "email channel": (lambda e: subscription(e, channel="email"), "Subscription.channel.type"),
    "relative endpoint": (lambda e: subscription("/hook"), "Subscription.channel.endpoint"),
    "ftp endpoint": (lambda e: subscription("ftp://host/x"), "Subscription.channel.endpoint"),
    "unknown content": (lambda e: _with_channel(subscription(e), _payload={"extension": [
        {"url": PAYLOAD_CONTENT, "valueCode": "everything"}]}), "Subscription.channel.payload.extension"),
    "xml payload": (lambda e: _with_channel(subscription(e), payload="application/fhir+xml"),
                    "Subscription.channel.payload"),
    "bad header": (lambda e: _with_channel(subscription(e), header=["no colon"]), "Subscription.channel.header[0]"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_unsupported_requests_are_refused_with_422(world: World, case: str) -> None:
    make, expression = CASES[case]
    r = await world.client.post("/Subscription", json=make(world.endpoint),
                                headers=world.auth("practitioner", "Practitioner/dr1"))
    assert r.status_code == 422, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == [expression]
    assert world.subscriptions.registry.all() == []


async def test_a_bundle_entry_is_refused_with_its_path(world: World) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": subscription(world.endpoint, channel="email"),
         "request": {"method": "POST", "url": "Subscription"}}]}
    r = await world.client.post("/", json=bundle, headers=world.auth("practitioner", "Practitioner/dr1"))
    assert r.status_code == 422, r.text
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.channel.type"]


async def test_topics_are_advertised_and_readable(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    statement = (await world.client.get("/metadata")).json()
    [resource] = [r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription"]
    canonicals = [e["valueCanonical"] for e in resource["extension"]
                  if e["url"].endswith("capabilitystatement-subscriptiontopic-canonical")]
    assert canonicals == sorted([APPOINTMENT, CONSENT, CRITICAL_READING, DATA_SUBJECT_REQUEST, NEHP_SUBMISSION])
    assert {"status", "events"} <= {o["name"] for o in resource["operation"]}
    basic = (await world.client.get("/Basic/kz-topic-appointment", headers=dr1)).json()
    assert basic["code"]["coding"][0]["code"] == "SubscriptionTopic"
    urls = [e["valueUri"] for e in basic["extension"] if e["url"].endswith("SubscriptionTopic.url")]
    assert urls == [APPOINTMENT]
    filters = [p["valueString"] for e in basic["extension"] if e["url"].endswith("canFilterBy")
               for p in e["extension"] if p["url"] == "filterParameter"]
    assert filters == ["patient", "practitioner", "status"]
