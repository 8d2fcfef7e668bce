"""The kit against this project's own server: every check passes, or warns / skips with a reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance import Report, Status, run
from tests.conformance.conftest import BASE, kzfhir, system_token


def _by_id(report: Report) -> dict[str, Status]:
    return {r.id: r.status for r in report.results}


def _assert_conformant(report: Report) -> None:
    """No check failed, every warning and skip says why; for a partial run that is exit 0."""
    bad = [(r.id, r.message) for r in report.results if r.status in (Status.FAIL, Status.ERROR)]
    assert bad == []
    assert all(r.message for r in report.results if r.status in (Status.WARNING, Status.SKIPPED))
    assert report.exit_code == 0
    assert report.kit_error is None


@pytest.mark.req("TM-14")
async def test_open_server_meets_fhir_semantics_but_fails_security(open_server: Any) -> None:
    report = await run(BASE, transport=httpx.ASGITransport(app=open_server), record_wait=1.0)
    statuses = _by_id(report)
    fhir_checks = [r for r in report.results if r.group not in ("security", "access", "vendor-data")]
    assert [(r.id, r.message) for r in fhir_checks if r.status in (Status.FAIL, Status.ERROR)] == []
    assert statuses["KZ-03"] is Status.PASS and statuses["TX-02"] is Status.PASS
    # an open endpoint is not conformant, even run without a token (issue 18)
    assert statuses["SEC-02"] is Status.FAIL and report.exit_code == 1
    assert statuses["CLN-01"] is Status.PASS
    search = next(r for r in report.results if r.id == "SRCH-01")
    # search answers are summarised, never quoted: a vendor's search may return real patients
    assert search.evidence[-1].excerpt.startswith("Bundle type=searchset total=")
    assert "Серікбаев" not in search.evidence[-1].excerpt


@pytest.mark.req("MD-B")
@pytest.mark.req("MD-D")
async def test_national_strict_server_passes_and_refuses_every_invalid_kz_example(tmp_path: Path) -> None:
    async with kzfhir(tmp_path, require_kz_profiles=True) as app:
        report = await run(BASE, transport=httpx.ASGITransport(app=app), checks=["kz-profiles", "search"])
    _assert_conformant(report)
    invalid = [r for r in report.results if r.id >= "KZ-20" and r.id < "KZ-40"]
    assert len(invalid) == 17
    assert all(r.status is Status.PASS and r.message.startswith("refused 422") for r in invalid)


@pytest.mark.req("AC-12")
@pytest.mark.req("TM-01")
async def test_secured_server_passes_with_a_system_token_but_consent_stays_undemonstrated(
    secured_server: Any, tmp_path: Path
) -> None:
    token = system_token(tmp_path)
    report = await run(BASE, token=token, transport=httpx.ASGITransport(app=secured_server))
    assert [(r.id, r.message) for r in report.results if r.status in (Status.FAIL, Status.ERROR)] == []
    # one token cannot show consent enforcement: without test identities the verdict is not conformant
    assert report.exit_code == 1 and "critical requirements not demonstrated: " in report.verdict
    assert all(v.verdict.value == "not tested" for v in report.requirements if v.id in ("AC-01", "AC-14"))
    statuses = _by_id(report)
    assert all(statuses[i] is Status.PASS for i in ("SEC-02", "SEC-03", "SEC-04", "SEC-05"))
    # an organisation's token alone cannot make a patient's consent active (AC-08: only the patient's signed
    # form, or the patient): the checks that need patient data say so instead of passing
    for check in ("KZ-05", "SRCH-04"):
        assert statuses[check] is Status.SKIPPED
        assert "signed" in next(r.message for r in report.results if r.id == check)
    # the server keeps its audit log server-written (AC-14): skipped, with the reason
    assert statuses["KZ-08"] is Status.SKIPPED
    assert statuses["CLN-01"] is Status.PASS
    assert token not in report.to_json() and token not in report.to_markdown()


async def test_secured_server_without_token_skips_data_checks_saying_a_token_is_needed(
    secured_server: Any,
) -> None:
    report = await run(BASE, transport=httpx.ASGITransport(app=secured_server), checks=["security", "rest"])
    statuses = _by_id(report)
    assert statuses["SEC-02"] is Status.PASS
    rest = [r for r in report.results if r.group == "rest"]
    assert all(r.status is Status.SKIPPED and "--token" in r.message for r in rest)
    assert report.exit_code == 0


async def test_token_the_server_rejects_is_a_kit_error_not_a_server_failure(secured_server: Any) -> None:
    report = await run(BASE, token="expired.or.foreign", transport=httpx.ASGITransport(app=secured_server),
                       checks=["REST-01", "SEC-03"])
    statuses = _by_id(report)
    assert statuses["SEC-03"] is Status.PASS
    assert statuses["REST-01"] is Status.ERROR
    rest = next(r for r in report.results if r.id == "REST-01")
    assert "rejected the kit's token (401" in rest.message
    assert report.exit_code == 2


async def test_kit_deletes_what_it_created_unless_told_to_keep_it(open_server: Any) -> None:
    transport = httpx.ASGITransport(app=open_server)
    await run(BASE, transport=transport, checks=["search"])
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert "entry" not in (await client.get("Patient")).json()
        kept = await run(BASE, transport=transport, checks=["search"], keep=True)
        assert _by_id(kept)["CLN-01"] is Status.SKIPPED
        assert len((await client.get("Patient")).json()["entry"]) == 1


async def test_only_runs_the_named_groups_and_check_ids(open_server: Any) -> None:
    transport = httpx.ASGITransport(app=open_server)
    report = await run(BASE, transport=transport, checks=["capability", "TERM-02"])
    ids = [r.id for r in report.results]
    assert ids[-2:] == ["TERM-02", "CLN-01"]
    assert all(i.startswith("CAP-") for i in ids[:-2])
    with pytest.raises(ValueError, match="unknown check group or id: nonsense"):
        await run(BASE, transport=transport, checks=["nonsense"])


async def test_json_report_of_a_real_run_follows_the_documented_schema(open_server: Any) -> None:
    report = await run(BASE, transport=httpx.ASGITransport(app=open_server), checks=["rest"])
    data = json.loads(report.to_json())
    assert data["schema"] == "kzfhir-conformance-report/1"
    assert data["target"] == {"baseUrl": BASE, "authenticated": False, "software": "kzfhir",
                              "version": data["target"]["version"], "fhirVersion": "4.0.1"}
    first = data["results"][0]
    assert set(first) == {"id", "group", "title", "covers", "status", "message", "durationMs", "evidence",
                          "evidenceOmitted"}
    assert first["evidence"][0]["request"] == f"POST {BASE}/Organization"
    assert first["evidence"][0]["status"] == 201
    assert first["evidence"][0]["headers"]["etag"] == 'W/"1"'
