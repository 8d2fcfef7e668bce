"""Request codings, response compression, request ids, per-client limits and quiet disconnects
(issue 12 §3-4; api/middleware.py)."""

from __future__ import annotations

import asyncio
import gzip
import logging
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from fhir_server.config import Settings

pytestmark = pytest.mark.open_mode
PATIENT = {"resourceType": "Patient", "name": [{"family": "Ахметов"}], "gender": "male"}


def fhir(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"content-type": "application/fhir+json", **(extra or {})}


def outcome(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == code, body
    return body


@pytest.mark.parametrize("coding,pack", [("gzip", gzip.compress), ("deflate", zlib.compress),
                                         ("x-gzip", gzip.compress)])
async def test_compressed_bodies_are_decompressed(client, coding: str, pack: Any) -> None:
    r = await client.post("/Patient", content=pack(orjson.dumps(PATIENT)), headers=fhir({"content-encoding": coding}))
    assert r.status_code == 201, r.text
    assert r.json()["name"][0]["family"] == "Ахметов"


async def test_a_gzip_bomb_is_413_after_at_most_the_limit(client) -> None:
    bomb = gzip.compress(b'{"resourceType":"Patient","x":"' + b"a" * (20 << 20) + b'"}', compresslevel=9)
    assert len(bomb) < 1 << 20
    r = await client.post("/Patient", content=bomb, headers=fhir({"content-encoding": "gzip"}))
    outcome(r, 413, "too-costly")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_body_bytes": 1 << 20, "max_requests_per_client": 1})


async def test_unknown_codings_are_415(client) -> None:
    for coding in ("br", "compress", "gzip, gzip"):
        r = await client.post("/Patient", content=b"xx", headers=fhir({"content-encoding": coding}))
        outcome(r, 415, "not-supported")


async def test_corrupt_and_truncated_gzip_are_400(client) -> None:
    packed = gzip.compress(orjson.dumps(PATIENT))
    for body in (b"not gzip at all", packed[:-9], packed + b"trailing"):
        r = await client.post("/Patient", content=body, headers=fhir({"content-encoding": "gzip"}))
        outcome(r, 400, "structure")


async def test_identity_coding_is_plain(client) -> None:
    r = await client.post("/Patient", json=PATIENT, headers=fhir({"content-encoding": "identity"}))
    assert r.status_code == 201


async def test_responses_are_gzipped_when_accepted_and_plain_otherwise(client) -> None:
    for n in range(30):
        await client.post("/Patient", json={**PATIENT, "id": f"p{n}"}, headers=fhir())
    zipped = await client.get("/Patient", headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.json()["total"] == 30
    plain = await client.get("/Patient", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json()["total"] == 30


async def test_every_response_carries_a_request_id_and_failures_log_one_line(client, caplog) -> None:
    caplog.set_level(logging.WARNING)
    ok = await client.get("/metadata")
    bad = await client.get("/Patient/a/_history/%C2%B3")
    assert ok.headers["x-request-id"] != bad.headers["x-request-id"]
    lines = [r for r in caplog.records if r.name == "kzfhir.request"]
    assert len(lines) == 1 and bad.headers["x-request-id"] in lines[0].getMessage()
    assert " 404 GET " in lines[0].getMessage() and lines[0].exc_info is None


async def _slow_body() -> AsyncIterator[bytes]:
    body = orjson.dumps(PATIENT)
    yield body[:10]
    await asyncio.sleep(0.5)
    yield body[10:]


async def test_a_second_concurrent_request_of_one_client_is_429(client) -> None:
    slow = asyncio.create_task(client.post("/Patient", content=_slow_body(), headers=fhir()))
    await asyncio.sleep(0.1)
    second = await client.get("/metadata")
    outcome(second, 429, "throttled")
    assert second.headers["retry-after"] == "1"
    assert (await slow).status_code == 201
    assert (await client.get("/metadata")).status_code == 200  # the slot is free again


async def test_a_client_gone_mid_body_logs_one_line_without_traceback(client, caplog) -> None:
    caplog.set_level(logging.INFO)
    messages = [{"type": "http.request", "body": b'{"resourceType":', "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/Patient", "raw_path": b"/Patient", "query_string": b"",
             "root_path": "", "headers": [(b"content-type", b"application/fhir+json"), (b"host", b"t")],
             "client": ("127.0.0.9", 5), "server": ("t", 80)}
    await client.app(scope, receive, send)
    assert not [r for r in caplog.records if r.exc_info]
    lines = [r.getMessage() for r in caplog.records if r.name == "kzfhir.request"]
    assert len(lines) == 1 and "client disconnected" in lines[0]
