"""``/openapi.json`` follows the CapabilityStatement, and schemathesis, driven by it against a real
server, finds no 5xx and no refusal without an OperationOutcome (issue 12 proof)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.hardening.live import Live, serving

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("KZFHIR_SCHEMATHESIS_EXAMPLES", "8"))  # per API operation
# the operations schemathesis explores: one clinical and one administrative type, and the system level
COVERED = r"^/(Patient|Observation)(/|$)|^/(metadata|_history)?$"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with serving(tmp_path_factory.mktemp("openapi")) as server:
        for rid in ("p1", "p2"):
            httpx.put(f"{server.url}/Patient/{rid}", json={"resourceType": "Patient", "id": rid},
                      headers={"content-type": "application/fhir+json"}, timeout=30)
        yield server


def test_every_interaction_of_the_capability_statement_is_a_path(live: Live) -> None:
    doc = live.get("/openapi.json").json()
    statement = live.get("/metadata").json()
    assert doc["openapi"].startswith("3.")
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert set(doc["paths"]["/Patient/{id}"]) == {"get", "put", "patch", "delete"}
    assert "get" in doc["paths"]["/Patient/{id}/_history/{vid}"]
    query = {p["name"] for p in doc["paths"]["/Patient"]["get"]["parameters"]}
    assert {p["name"] for p in patient["searchParam"]} <= query
    for op in patient.get("operation", []):
        assert f"/Patient/${op['name']}" in doc["paths"]
    assert len([r for r in statement["rest"][0]["resource"]]) * 4 < len(doc["paths"])


def _check(case: Any, response: Any) -> None:
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/fhir+json"), response.text[:300]
        body = response.json()
        assert body["resourceType"] == "OperationOutcome" and body["issue"], body


def test_schemathesis_finds_no_server_error(live: Live) -> None:
    """Every covered operation, valid and invalid inputs (schemathesis' positive and negative modes).
    Driven through ``APIOperation.as_strategy``: its pytest plugin does not load under pytest 9."""
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json").include(path_regex=COVERED)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    calls = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                nonlocal calls
                calls += 1
                _check(case, case.call(base_url=live.url, timeout=60))

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # an operation without inputs has no invalid ones
    assert calls >= len(operations) * 2
    print(f"schemathesis: {len(operations)} operations, {calls} requests")
