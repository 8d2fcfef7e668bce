"""Response compression (api/compression.py): Accept-Encoding with quality values, whole and streamed
bodies, what is never compressed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_server.api.compression import Compression, accepts_gzip


@pytest.mark.parametrize("header,expected", [
    (b"gzip", True), (b"GZIP", True), (b"x-gzip", True), (b"gzip, deflate, br", True), (b"br;q=1, gzip;q=0.5", True),
    (b"gzip;q=0", False), (b"gzip; q=0.000", False), (b"*", True), (b"*;q=0", False), (b"identity", False),
    (b"br, *", True), (b"gzip;q=0, *", False), (b"gzip;q=abc", False), (b"", False), (b"deflate", False),
])
def test_accept_encoding_is_read_with_its_quality_values(header: bytes, expected: bool) -> None:
    assert accepts_gzip(header) is expected


@given(st.binary(max_size=200))
def test_any_accept_encoding_bytes_are_answered(header: bytes) -> None:
    assert isinstance(accepts_gzip(header), bool)


def _app(messages: list[dict[str, Any]]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in messages:
            await send(message)
    return app


async def _get(messages: list[dict[str, Any]], accept: str | None) -> httpx.Response:
    transport = httpx.ASGITransport(app=Compression(_app(messages), minimum=100))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        headers = {"accept-encoding": accept} if accept is not None else {}
        return await client.get("/x", headers=headers)


def _start(*headers: tuple[bytes, bytes], status: int = 200) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": list(headers)}


BODY = b'{"resourceType":"Bundle","entry":[' + b'{"resource":{"resourceType":"Basic"}},' * 50 + b"{}]}"
JSON = (b"content-type", b"application/fhir+json")


async def test_a_whole_body_is_compressed_with_its_length_and_vary() -> None:
    r = await _get([_start(JSON, (b"content-length", str(len(BODY)).encode())),
                    {"type": "http.response.body", "body": BODY}], "gzip")
    assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
    assert int(r.headers["content-length"]) < len(BODY)
    assert r.content == BODY  # httpx decodes it


async def test_a_streamed_body_is_compressed_chunk_by_chunk_without_a_length() -> None:
    chunks = [BODY[:300], BODY[300:900], BODY[900:]]
    messages = [_start(JSON)] + [{"type": "http.response.body", "body": c, "more_body": n < 2}
                                 for n, c in enumerate(chunks)]
    r = await _get(messages, "gzip, br")
    assert r.headers["content-encoding"] == "gzip" and "content-length" not in r.headers
    assert r.content == BODY


@pytest.mark.parametrize("messages", [
    [_start(JSON), {"type": "http.response.body", "body": b"{}"}],  # below the minimum
    [_start(JSON, (b"content-encoding", b"br")), {"type": "http.response.body", "body": BODY}],
    [_start((b"content-type", b"image/png")), {"type": "http.response.body", "body": BODY}],
    [_start((b"content-type", b"text/event-stream")), {"type": "http.response.body", "body": BODY}],
    [_start(JSON, status=206), {"type": "http.response.body", "body": BODY}],
])
async def test_what_is_never_compressed(messages: list[dict[str, Any]]) -> None:
    r = await _get(messages, "gzip")
    assert "gzip" not in r.headers.get("content-encoding", "")
    assert r.content == messages[-1]["body"]


async def test_a_client_that_does_not_accept_gzip_gets_the_bytes_as_they_are() -> None:
    for accept in ("identity", "gzip;q=0", "br"):  # httpx sends gzip unless told otherwise
        r = await _get([_start(JSON), {"type": "http.response.body", "body": BODY}], accept)
        assert "content-encoding" not in r.headers and r.content == BODY


async def test_a_large_body_is_compressed_off_the_loop_and_still_exact() -> None:
    big = BODY * 400  # > 128 KiB: compressed on a worker thread
    r = await _get([_start(JSON), {"type": "http.response.body", "body": big}], "gzip")
    assert r.headers["content-encoding"] == "gzip"
    assert int(r.headers["content-length"]) < len(big) // 10 and r.content == big
