"""Search bounds: each limit is a 400 too-costly naming the parameter, checked before the store is
asked; includes are capped per page with a warning in the Bundle (issue 12, docs/limits.md)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.config import Settings

pytestmark = pytest.mark.open_mode
FHIR_JSON = {"content-type": "application/fhir+json"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"search_max_included": 5})


def too_costly(r: Any, expression: str) -> None:
    assert r.status_code == 400, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "too-costly" and issue["expression"] == [expression], issue


async def test_a_thousand_values_in_one_parameter_are_refused_naming_it(client) -> None:
    too_costly(await client.get("/Patient", params={"family": ",".join(f"n{i}" for i in range(1000))}), "family")


async def test_a_hundred_values_are_searched(client) -> None:
    r = await client.get("/Patient", params={"family": ",".join(f"n{i}" for i in range(100))})
    assert r.status_code == 200, r.text


async def test_escaped_commas_do_not_count_as_separators(client) -> None:
    r = await client.get("/Patient", params={"family": "\\,".join("x" * 120)})
    assert r.status_code == 200, r.text


async def test_a_50000_character_contains_is_refused(client) -> None:
    too_costly(await client.get("/Patient", params={"name:contains": "a" * 50_000}), "name:contains")


async def test_two_thousand_sort_keys_are_refused(client) -> None:
    too_costly(await client.get("/Patient", params={"_sort": ",".join(["name", "-birthdate"] * 1000)}), "_sort")


async def test_nine_short_sort_keys_are_refused_eight_are_run(client) -> None:
    keys = ["name", "-birthdate", "gender", "_id", "-_lastUpdated", "family", "given", "birthdate"]
    assert (await client.get("/Patient", params={"_sort": ",".join(keys)})).status_code == 200
    too_costly(await client.get("/Patient", params={"_sort": ",".join([*keys, "address"])}), "_sort")


async def test_too_many_parameters_are_refused_naming_the_first_one_over(client) -> None:
    params = [("family", f"f{i}") for i in range(51)]
    too_costly(await client.get("/Patient", params=params), "family")


async def test_a_chain_deeper_than_the_limit_is_refused(client) -> None:
    name = "subject:Patient.general-practitioner:Organization.partof.partof.partof.name"
    too_costly(await client.get("/Observation", params={name: "x"}), name)


async def test_store_limits_never_leak_as_500(client) -> None:
    many = [("_has:Observation:subject:code", ",".join(f"c{j}" for j in range(100))) for _ in range(40)]
    r = await client.get("/Patient", params=many)
    assert r.status_code in (200, 400), r.text


async def _patient_with_observations(client, n: int) -> None:
    r = await client.put("/Patient/p1", json={"resourceType": "Patient", "id": "p1"}, headers=FHIR_JSON)
    assert r.status_code == 201
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "hr"},
           "subject": {"reference": "Patient/p1"}}
    for _ in range(n):
        assert (await client.post("/Observation", json=obs, headers=FHIR_JSON)).status_code == 201


async def test_revinclude_is_capped_per_page_with_a_warning(client) -> None:
    await _patient_with_observations(client, 8)
    bundle = (await client.get("/Patient", params={"_id": "p1", "_revinclude": "Observation:subject"})).json()
    modes = [e["search"]["mode"] for e in bundle["entry"]]
    assert modes.count("match") == 1 and modes.count("include") == 5
    outcome = next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome")
    assert outcome["issue"][0]["severity"] == "warning" and outcome["issue"][0]["expression"] == ["_revinclude"]


async def test_iterated_wildcard_includes_are_capped_too(client) -> None:
    await _patient_with_observations(client, 8)
    bundle = (await client.get("/Patient", params={"_id": "p1", "_revinclude:iterate": "*"})).json()
    assert [e["search"]["mode"] for e in bundle["entry"]].count("include") == 5


async def test_below_the_cap_no_warning_is_added(client) -> None:
    await client.put("/Patient/p1", json={"resourceType": "Patient", "id": "p1"}, headers=FHIR_JSON)
    bundle = (await client.get("/Patient", params={"_id": "p1", "_revinclude": "Observation:subject"})).json()
    assert [e["search"]["mode"] for e in bundle["entry"]] == ["match"]


async def test_a_transaction_over_the_entry_limit_is_413(client, settings: Settings) -> None:
    client.app.state.services.settings.max_bundle_entries = 3
    entry = {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry] * 4}
    r = await client.post("/", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 413 and r.json()["issue"][0]["expression"] == ["Bundle.entry"]
    assert (await client.get("/Patient")).json()["total"] == 0
