"""Operator basics (issue 13 item 4): /health, /ready, Prometheus /metrics, request ids shared by the
response and the audit, JSON access-log lines without query values, CORS as a setting."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.api.metrics import interaction
from fhir_server.api.operator import expected_tables
from fhir_server.config import Settings
from tests.conftest import BASE

FHIR_JSON = {"content-type": "application/fhir+json"}
BIN = "940140000385"


async def test_health_and_ready_need_no_token(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.headers["content-type"] == "application/health+json"
    assert health.json()["status"] == "pass" and health.json()["version"]
    ready = await client.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"store": {"status": "pass"}, "schema": {"status": "pass"}}
    assert (await client.get("/Patient")).status_code == 401  # the API itself stays secured


async def test_ready_is_503_when_the_schema_is_not_this_versions(settings: Settings, tmp_path: Path) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        with sqlite3.connect(settings.database) as conn:  # an older database, as if a migration had not run
            conn.execute("DROP TABLE jobs")
        ready = await c.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["schema"] == {"status": "fail", "output": "table jobs is missing"}
    assert {"resources", "history", "outbox", "audit_chain", "jobs"} <= expected_tables()


async def test_metrics_count_interactions_statuses_and_the_store(client: httpx.AsyncClient, auth) -> None:
    system = {**auth("system", bin=BIN), **FHIR_JSON}
    org = {"resourceType": "Organization", "id": "o1", "name": "Поликлиника"}
    assert (await client.put("/Organization/o1", json=org, headers=system)).status_code == 201
    assert (await client.get("/Organization/o1", headers=system)).status_code == 200
    assert (await client.get("/Organization/nope", headers=system)).status_code == 404
    assert (await client.get("/Organization?name=Поли", headers=system)).status_code == 200
    assert (await client.get("/Patient")).status_code == 401
    text = (await client.get("/metrics")).text
    for line in ('kzfhir_http_requests_total{interaction="update",method="PUT",status="201"} 1',
                 'kzfhir_http_requests_total{interaction="read",method="GET",status="200"} 1',
                 'kzfhir_http_requests_total{interaction="read",method="GET",status="404"} 1',
                 'kzfhir_http_requests_total{interaction="search-type",method="GET",status="200"} 1',
                 'kzfhir_http_requests_total{interaction="search-type",method="GET",status="401"} 1',
                 'kzfhir_http_request_duration_seconds_count{interaction="read"} 2',
                 'kzfhir_http_request_duration_seconds_bucket{interaction="read",le="+Inf"} 2',
                 "kzfhir_write_requests_in_flight 0"):
        assert line in text, line
    figures = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
               if line and not line.startswith("#") and "{" not in line}
    assert figures["kzfhir_writer_units_total"] >= 1
    assert figures["kzfhir_writer_commits_total"] >= 1
    assert "kzfhir_audit_unchained_reads" in figures  # the audit lag
    assert "kzfhir_outbox_oldest_pending_seconds" in figures  # the outbox backlog
    assert "# TYPE kzfhir_outbox_messages gauge" in text


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/metadata", "capabilities"), ("POST", "/", "transaction"), ("GET", "/", "search-system"),
    ("GET", "/_history", "history-system"), ("GET", "/Patient", "search-type"), ("POST", "/Patient", "create"),
    ("POST", "/Patient/_search", "search-type"), ("PUT", "/Patient", "update"), ("GET", "/Patient/1", "read"),
    ("PUT", "/Patient/1", "update"), ("PATCH", "/Patient/1", "patch"), ("DELETE", "/Patient/1", "delete"),
    ("GET", "/Patient/_history", "history-type"), ("GET", "/Patient/1/_history", "history-instance"),
    ("GET", "/Patient/1/_history/2", "vread"), ("GET", "/Patient/1/Observation", "search-compartment"),
    ("GET", "/Patient/1/$everything", "operation"), ("POST", "/$export", "operation"),
    ("GET", "/$export-status/abc", "operation"), ("GET", "/health", "operator"), ("GET", "/docs/", "docs"),
    ("GET", "/favicon.ico", "other"),
])
def test_interaction_is_read_from_method_and_path(method: str, path: str, expected: str) -> None:
    assert interaction(method, path) == expected


async def _audit_request_ids(client: httpx.AsyncClient, auth) -> set[str]:
    events = (await client.get("/AuditEvent?_count=100", headers=auth("auditor", "Practitioner/a1"))).json()
    return {x["what"]["identifier"]["value"] for e in events.get("entry", []) for x in e["resource"]["entity"]
            if x.get("type", {}).get("code") == "XrequestId"}


async def test_the_request_id_is_the_responses_and_the_audits(client: httpx.AsyncClient, auth) -> None:
    system = {**auth("system", bin=BIN), **FHIR_JSON}
    org = {"resourceType": "Organization", "name": "Поликлиника"}
    made = await client.post("/Organization", json=org, headers=system)
    given = await client.post("/Organization", json=org, headers={**system, "X-Request-Id": "mis-42.a"})
    unusable = await client.post("/Organization", json=org, headers={**system, "X-Request-Id": "bad id;"})
    assert given.headers["x-request-id"] == "mis-42.a"
    assert unusable.headers["x-request-id"] not in ("bad id;", "")
    assert len({made.headers["x-request-id"], unusable.headers["x-request-id"], "mis-42.a"}) == 3
    assert {made.headers["x-request-id"], "mis-42.a", unusable.headers["x-request-id"]} <= \
        await _audit_request_ids(client, auth)
    assert [v for k, v in made.headers.multi_items() if k == "x-request-id"] == [made.headers["x-request-id"]]


@pytest.mark.open_mode
async def test_access_log_is_one_json_line_without_query_values(client: httpx.AsyncClient,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kzfhir.access"):
        r = await client.get("/Patient?name=%D0%90%D1%85%D0%BC%D0%B5%D1%82%D0%BE%D0%B2&birthdate=1985-03-15")
    lines = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "kzfhir.access"]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == r.headers["x-request-id"]
    assert (line["method"], line["path"], line["interaction"], line["status"]) == ("GET", "/Patient", "search-type",
                                                                                  200)
    assert line["params"] == ["birthdate", "name"]
    assert "1985" not in json.dumps(line) and "%D0" not in json.dumps(line) and "Ахметов" not in json.dumps(line)
    assert line["ms"] >= 0 and line["time"].endswith("+00:00")


@pytest.fixture
async def cors_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database=tmp_path / "db.sqlite", synchronous_full=False, security_enabled=False,
                        cors_origins="https://mis.example.kz, https://cabinet.example.kz")
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


async def test_cors_for_the_configured_origins_only(cors_client: httpx.AsyncClient) -> None:
    preflight = await cors_client.options("/Patient", headers={
        "Origin": "https://mis.example.kz", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, if-match, prefer"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://mis.example.kz"
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    read = await cors_client.get("/metadata", headers={"Origin": "https://cabinet.example.kz"})
    assert read.headers["access-control-allow-origin"] == "https://cabinet.example.kz"
    exposed = read.headers["access-control-expose-headers"].lower()
    assert {"location", "etag", "x-request-id"} <= {h.strip() for h in exposed.split(",")}
    stranger = await cors_client.get("/metadata", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in stranger.headers


async def test_no_cors_headers_by_default(client: httpx.AsyncClient) -> None:
    r = await client.get("/metadata", headers={"Origin": "https://mis.example.kz"})
    assert "access-control-allow-origin" not in r.headers


async def test_served_access_lines_are_written_in_batches_and_none_is_lost() -> None:
    """``kzfhir serve``'s access log (operator.AccessLines): lines queued on the loop reach the stream
    together within FLUSH_SECONDS, in order, one JSON object per line."""
    import asyncio
    import io

    from fhir_server.api.operator import AccessLines

    stream = io.BytesIO()
    lines = AccessLines(stream)
    for n in range(500):
        lines.write(b'{"n":%d}\n' % n)
    assert stream.getvalue() == b""  # nothing written per line
    await asyncio.sleep(AccessLines.FLUSH_SECONDS * 2)
    assert [json.loads(line)["n"] for line in stream.getvalue().splitlines()] == list(range(500))
    lines.write(b'{"n":500}\n')
    lines.flush()  # at exit
    assert stream.getvalue().endswith(b'{"n":500}\n')
