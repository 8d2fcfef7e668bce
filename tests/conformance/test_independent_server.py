"""The kit against an independent FHIR server without KZ support or security (peer.py, the shape of a
Medplum router in memory): a clear non-conformant report, naming what is missing, and no crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance import Status, run
from tests.conformance.conftest import BASE, minter
from tests.conformance.peer import memory_peer

# What such a server holds: plain R4, a local record number instead of an IIN, no KZ extensions.
HOLDINGS: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "mrn-1", "identifier": [{"system": "urn:clinic:mrn", "value": "1"}],
     "name": [{"family": "Doe", "given": ["Jane"]}], "gender": "female", "birthDate": "1980-01-01"},
    {"resourceType": "Organization", "id": "clinic", "name": "Clinic"},
    {"resourceType": "Appointment", "id": "visit-1", "status": "booked",
     "participant": [{"actor": {"reference": "Patient/mrn-1"}, "status": "accepted"}]},
]


async def _peer_with_holdings() -> httpx.ASGITransport:
    app = memory_peer()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        for record in HOLDINGS:
            response = await client.put(f"/{record['resourceType']}/{record['id']}", json=record)
            assert response.status_code == 201
    return transport


@pytest.mark.req("AC-12")
@pytest.mark.req("MD-B")
async def test_independent_server_without_kz_support_gets_a_clear_non_conformant_report(tmp_path: Path) -> None:
    report = await run(BASE, token="any-token", transport=await _peer_with_holdings(), minter=minter(tmp_path),
                       record_wait=1.0)
    assert report.kit_error is None
    assert [(r.id, r.message) for r in report.results if r.status is Status.ERROR] == []
    assert report.exit_code == 1 and report.verdict.startswith("NOT conformant")
    found = {r.id: r for r in report.results}
    assert found["CAP-01"].status is Status.PASS and found["REST-01"].status is Status.PASS
    assert found["SEC-02"].status is Status.FAIL and found["ACC-01"].status is Status.FAIL
    assert found["CAP-08"].status is Status.WARNING  # it does not claim the KZ profiles ...
    assert found["KZ-24"].status is Status.FAIL  # ... and accepting invalid KZ content still fails
    assert "does not declare the KZ profile" in found["KZ-24"].message
    assert found["VD-03"].status is Status.FAIL and "Patient/mrn-1" in found["VD-03"].message
    assert "MD-B 2" in found["VD-21"].message and "MD-B 4" in found["VD-21"].message
    assert found["ACC-07"].status is Status.SKIPPED and "not offered" in found["ACC-07"].message
    verdicts = {v.id: v.verdict.value for v in report.requirements}
    assert verdicts["AC-01"] == verdicts["AC-12"] == verdicts["MD-B"] == "fail"
    assert verdicts["TM-10"] == "not tested"  # outside the kit's reach, and said so
    html = report.to_html()
    assert "NOT conformant" in html and "<script" not in html
