"""The kit against servers that break the rules: it must name each specific failure, and never crash."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conformance import Report, Status, run
from tests.conformance.conftest import BASE, ORG_BIN, kzfhir
from tests.conformance.servers import claiming_kz_profiles, empty_object_server, without_etag
from tests.conformance.vendor import broken_records, seed, vendor_records


def _result(report: Report, check_id: str) -> tuple[Status, str]:
    found = next(r for r in report.results if r.id == check_id)
    return found.status, found.message


def _no_kit_errors(report: Report) -> None:
    assert [r.id for r in report.results if r.status is Status.ERROR] == []


async def test_server_answering_empty_objects_fails_capability_security_rest_and_profiles() -> None:
    report = await run(BASE, token="any-token", transport=httpx.ASGITransport(app=empty_object_server()))
    _no_kit_errors(report)
    assert report.exit_code == 1
    expected = {
        "CAP-01": "expected 200 with a CapabilityStatement",
        "SEC-02": "clinical search answered (200): the endpoint is open",
        "SEC-03": "clinical search answered",
        "REST-01": "create Organization: expected HTTP 201, got 200",
        "REST-08": "unknown id: expected 404, got 200",
        "REST-09": "malformed JSON: expected 400, got 200",
        "KZ-03": "names no id",
        "SRCH-01": "names no id",
        "TX-02": "the transaction was accepted",
        "TERM-01": "missing",
    }
    for check_id, text in expected.items():
        status, message = _result(report, check_id)
        assert status is Status.FAIL, check_id
        assert text in message, (check_id, message)
    assert _result(report, "CAP-02")[0] is Status.SKIPPED  # nothing to inspect without a statement


@pytest.mark.req("TM-14")
async def test_server_without_etags_fails_create_read_and_update(tmp_path: Path) -> None:
    async with kzfhir(tmp_path) as app:
        report = await run(BASE, transport=httpx.ASGITransport(app=without_etag(app)), checks=["rest"])
    _no_kit_errors(report)
    failed = {r.id: r.message for r in report.results if r.status is Status.FAIL}
    assert set(failed) == {"REST-01", "REST-02", "REST-03"}
    assert all("ETag is None" in message for message in failed.values())
    assert _result(report, "REST-07")[0] is Status.PASS


@pytest.mark.req("MD-B")
@pytest.mark.req("MD-D")
async def test_server_declaring_kz_profiles_but_accepting_invalid_content_fails(tmp_path: Path) -> None:
    async with kzfhir(tmp_path, validate_on_write=False) as app:
        transport = httpx.ASGITransport(app=claiming_kz_profiles(app))
        report = await run(BASE, transport=transport, checks=["kz-profiles", "REST-10", "CAP-08"])
    _no_kit_errors(report)
    assert _result(report, "CAP-08")[0] is Status.PASS
    status, message = _result(report, "REST-10")
    assert status is Status.FAIL and "got 201" in message
    invalid = [r for r in report.results if "KZ-20" <= r.id < "KZ-40"]
    assert all(r.status is Status.FAIL and "declares the KZ profile" in r.message for r in invalid)
    assert "kz-app-1" in _result(report, "KZ-24")[1]
    assert _result(report, "KZ-04")[0] is Status.PASS  # valid content is still fine
    assert _result(report, "CLN-01")[0] is Status.PASS  # the accepted invalid resources were deleted too


@pytest.mark.req("MD-B")
@pytest.mark.req("MD-D")
@pytest.mark.req("TM-04")
async def test_server_not_declaring_kz_profiles_still_fails_for_accepting_invalid_content(
    tmp_path: Path,
) -> None:
    """Not declaring the KZ profiles is no way out of the KZ rules: MD-B, MD-D and TM-04 fail."""
    async with kzfhir(tmp_path, validate_on_write=False) as app:
        report = await run(BASE, transport=httpx.ASGITransport(app=app),
                           checks=["CAP-08", "KZ-04", "KZ-05", "KZ-21", "KZ-24", "KZ-28", "KZ-31"])
    _no_kit_errors(report)
    assert _result(report, "CAP-08")[0] is Status.WARNING
    for check_id in ("KZ-21", "KZ-24", "KZ-28", "KZ-31"):
        status, message = _result(report, check_id)
        assert status is Status.FAIL and "does not declare the KZ profile" in message, check_id
    assert _result(report, "KZ-04")[0] is Status.PASS  # valid content is still fine
    verdicts = {v.id: v.verdict.value for v in report.requirements}
    assert verdicts["MD-B"] == verdicts["MD-D"] == verdicts["TM-04"] == "fail"
    assert report.exit_code == 1


async def test_unreachable_endpoint_is_a_kit_error_with_exit_code_2() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    report = await run("http://mis.invalid/fhir", transport=httpx.MockTransport(refuse))
    assert report.exit_code == 2
    assert report.kit_error is not None and "endpoint unreachable" in report.kit_error
    assert report.results == ()


async def test_endpoint_dying_mid_run_stops_the_run_with_exit_code_2(open_server: object) -> None:
    inner = httpx.ASGITransport(app=open_server)  # type: ignore[arg-type]
    calls = 0

    async def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise httpx.ConnectError("connection refused", request=request)
        return await inner.handle_async_request(request)

    report = await run(BASE, transport=httpx.MockTransport(flaky), checks=["capability", "rest"])
    assert report.exit_code == 2
    assert report.kit_error is not None and "later checks not run" in report.kit_error
    assert report.results[-1].id == "CLN-01"


async def test_extra_headers_reach_the_server_on_every_request() -> None:
    seen: list[dict[str, str]] = []
    app = empty_object_server(seen)
    await run(BASE, headers={"X-Purpose-Of-Use": "TREAT"}, transport=httpx.ASGITransport(app=app),
              checks=["CAP-01"])
    assert seen and all(h.get("x-purpose-of-use") == "TREAT" for h in seen)


async def test_requests_go_below_a_base_url_with_a_path() -> None:
    urls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(404)

    transport = httpx.MockTransport(answer)
    await run("https://mis.example.kz/fhir", transport=transport, checks=["CAP-01", "TX-02"])
    assert urls[:2] == ["https://mis.example.kz/fhir/metadata"] * 2
    assert "https://mis.example.kz/fhir/" in urls  # the transaction goes to the base itself


@pytest.mark.req("MD-B")
@pytest.mark.req("MD-D")
@pytest.mark.req("TM-04")
async def test_server_holding_invalid_kz_records_fails_the_vendor_data_checks(tmp_path: Path) -> None:
    await seed(tmp_path / "db.sqlite", tmp_path / "k.json", vendor_records(ORG_BIN) + broken_records())
    async with kzfhir(tmp_path, validate_on_write=False) as app:
        transport = httpx.ASGITransport(app=claiming_kz_profiles(app))
        report = await run(BASE, transport=transport, checks=["vendor-data", "KZ-20", "KZ-25", "KZ-28"])
    _no_kit_errors(report)
    failed = {r.id: r.message for r in report.results if r.status is Status.FAIL}
    assert set(failed) == {"KZ-20", "KZ-25", "KZ-28", "VD-03", "VD-04", "VD-05", "VD-20", "VD-21", "VD-22"}
    assert "Patient/vendor-bad-patient" in failed["VD-03"] and "••••••••0018" in failed["VD-20"]
    assert "850315300018" not in report.to_json()  # identifiers are masked in the report
    assert "MD-B 2: no service code" in failed["VD-21"] and "MD-B 4: no date and time" in failed["VD-21"]
    assert "MD-D 1: no form of the remote service" in failed["VD-22"]
    assert _result(report, "VD-01")[0] is Status.PASS  # the valid records are judged valid
    verdicts = {v.id: v.verdict.value for v in report.requirements}
    assert verdicts["MD-B"] == verdicts["MD-D"] == "fail"


async def test_a_token_the_server_echoes_never_reaches_the_report() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "not-found", "diagnostics": f"you sent {request.headers['authorization']}"}]})

    report = await run(BASE, token="secret-writer-token", transport=httpx.MockTransport(echo), checks=["REST-08"])
    assert "you sent Bearer [token]" in report.to_json()
    assert "secret-writer-token" not in report.to_json() + report.to_markdown() + report.to_html()
