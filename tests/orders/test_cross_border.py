"""The cross-border guard (AC-23): personal data go only to allowed destinations, the country's by default.
Configured destinations outside the list refuse the start; a Subscription endpoint outside it is refused and
audited. Security is on."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.egress import EgressGuard, guard_for
from tests.orders.conftest import OpenWorld
from tests.subscriptions.conftest import subscription

DEFAULT = guard_for(Settings())
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@pytest.mark.req("AC-23")
@given(st.lists(label, min_size=1, max_size=3), st.sampled_from(["com", "ru", "io", "kz.example.com", "kzz"]))
def test_only_names_in_the_country_or_listed_leave_by_default(labels: list[str], foreign: str):
    assert DEFAULT.allows_host(".".join([*labels, "kz"]))
    assert DEFAULT.allows_host(".".join([*labels, "қаз"]))
    assert not DEFAULT.allows_host(".".join([*labels, foreign]))


@pytest.mark.req("AC-23")
def test_addresses_are_judged_by_network_and_names_are_never_resolved():
    assert DEFAULT.allows_host("127.0.0.1") and DEFAULT.allows_host("10.2.3.4") and DEFAULT.allows_host("::1")
    assert not DEFAULT.allows_host("8.8.8.8") and not DEFAULT.allows_host("2001:4860::8888")
    assert not DEFAULT.allows_host("") and not DEFAULT.allows_host(None)
    listed = EgressGuard.parse("nehp.example.com, 203.0.113.0/24")
    assert listed.allows_url("https://NEHP.example.com./api") and listed.allows_url("https://203.0.113.7:8443/x")
    assert not listed.allows_url("https://other.example.com") and not listed.allows_url("https://gov.kz")
    assert EgressGuard.parse("*").allows_url("https://anything.example")


@pytest.mark.req("AC-23")
def test_a_configured_destination_abroad_refuses_the_start(tmp_path: Path):
    for setting in ({"nehp_url": "https://nehp.example.com/in"}, {"notify_webhook_url": "https://8.8.8.8/hook"},
                    {"smtp_host": "smtp.example.com"}, {"video_service_url": "https://video.example.io"},
                    {"jwks_url": "https://idp.example.org/jwks"}):
        with pytest.raises(ValueError, match="AC-23"):
            create_app(Settings(database=tmp_path / "x.sqlite", dev_key_path=tmp_path / "k.json", **setting))
    create_app(Settings(database=tmp_path / "x.sqlite", dev_key_path=tmp_path / "k.json",
                        nehp_url="https://nehp.dsm.gov.kz/in", payment_url="http://10.1.2.3/claims"))
    create_app(Settings(database=tmp_path / "x.sqlite", dev_key_path=tmp_path / "k.json",
                        nehp_url="https://nehp.example.com/in", egress_allowed_hosts="nehp.example.com"))


@pytest.mark.req("AC-23")
async def test_a_subscription_abroad_is_refused_and_audited(open_world: OpenWorld):
    async with open_world() as w:
        patient = w.as_("Patient/p1")
        r = await w.client.post("/Subscription", json=subscription("https://hooks.example.com/p1"), headers=patient)
        assert r.status_code == 422 and "AC-23" in r.text
        assert r.json()["issue"][0]["expression"] == ["Subscription.channel.endpoint"]
        ok = await w.client.post("/Subscription", json=subscription("https://hooks.medapp.kz/p1"), headers=patient)
        assert ok.status_code == 201, ok.text
        moved = {**ok.json(), "channel": {**ok.json()["channel"], "endpoint": "https://hooks.example.com/p1"}}
        r = await w.client.put(f"/Subscription/{moved['id']}", json=moved, headers=patient)
        assert r.status_code == 422
        kept = await w.client.get(f"/Subscription/{moved['id']}", headers=patient)
        assert kept.json()["channel"]["endpoint"] == "https://hooks.medapp.kz/p1"
        await w.store.audit.sync()
        refused = [e for _, e in await w.store.audit.events(None, 50) if e.get("outcome") != "0"]
        assert any("AC-23" in str(e.get("outcomeDesc", "")) for e in refused)
