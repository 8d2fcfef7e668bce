"""The real ``kzfhir serve`` process under hostile connections: slow headers and bodies time out
with 408, oversized headers are 431, garbage is 400, one connection too many is 503 — each an
OperationOutcome — and a client leaving mid-body leaves one log line, no traceback (issue 12)."""

from __future__ import annotations

import contextlib
import gzip
import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.hardening.live import Live, serving

pytestmark = pytest.mark.slow
LIMITS = {"KZFHIR_HEADER_TIMEOUT": "1", "KZFHIR_BODY_TIMEOUT": "1", "KZFHIR_MAX_HEADER_BYTES": "8192",
          "KZFHIR_MAX_CONNECTIONS": "40"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with serving(tmp_path_factory.mktemp("live"), LIMITS) as server:
        yield server


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], dict]:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, orjson.loads(body)


def assert_outcome(answer: tuple[int, dict[str, str], dict], status: int, code: str) -> None:
    got, headers, body = answer
    assert got == status, body
    assert headers["content-type"].startswith("application/fhir+json")
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == code, body


def test_trickled_headers_are_408_while_the_server_keeps_serving(live: Live) -> None:
    socks = [live.connect() for _ in range(20)]
    for s in socks:
        s.sendall(b"GET /metadata HTTP/1.1\r\nHost: x\r\n")
    for _ in range(3):
        time.sleep(0.3)
        for s in socks:
            with contextlib.suppress(OSError):  # already answered and closed
                s.sendall(b"X-a: b\r\n")
    assert live.get("/metadata").status_code == 200
    for s in socks:
        assert_outcome(read_answer(s), 408, "timeout")
        s.close()


def test_a_connection_that_never_speaks_is_closed_with_408(live: Live) -> None:
    with live.connect() as s:
        assert_outcome(read_answer(s), 408, "timeout")


def test_a_body_that_stops_is_408(live: Live) -> None:
    with live.connect() as s:
        s.sendall(b"POST /Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"resourceType\":")
        assert_outcome(read_answer(s), 408, "timeout")


def test_headers_over_the_limit_are_431(live: Live) -> None:
    with live.connect() as s:
        s.sendall(b"GET /metadata HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
        assert_outcome(read_answer(s), 431, "too-costly")


def test_garbage_is_a_400_outcome(live: Live) -> None:
    with live.connect() as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")
        assert_outcome(read_answer(s), 400, "structure")


def test_one_connection_too_many_is_503_with_retry_after(live: Live) -> None:
    held = [live.connect() for _ in range(40)]
    try:
        extra = live.connect()
        status, headers, body = read_answer(extra)
        assert_outcome((status, headers, body), 503, "transient")
        assert headers["retry-after"] == "1"
        extra.close()
    finally:
        for s in held:
            s.close()


def test_a_client_leaving_mid_body_logs_no_traceback(live: Live) -> None:
    for _ in range(5):
        with live.connect() as s:
            s.sendall(b"POST /Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
                      b"Content-Length: 1000\r\n\r\n{\"resourceType\":")
            time.sleep(0.1)
    time.sleep(0.5)
    assert live.get("/metadata").status_code == 200
    text = live.log.read_text()
    assert "Traceback" not in text and "Exception in ASGI" not in text


def test_gzip_both_ways_over_real_http(live: Live) -> None:
    body = gzip.compress(orjson.dumps({"resourceType": "Patient", "gender": "female"}))
    r = httpx.post(f"http://127.0.0.1:{live.port}/Patient", content=body, timeout=15,
                   headers={"content-type": "application/fhir+json", "content-encoding": "gzip"})
    assert r.status_code == 201, r.text
    meta = httpx.get(f"http://127.0.0.1:{live.port}/metadata", headers={"accept-encoding": "gzip"}, timeout=15)
    assert meta.headers["content-encoding"] == "gzip" and meta.json()["resourceType"] == "CapabilityStatement"


def test_pipelined_requests_get_their_answers_whole_and_in_order(live: Live) -> None:
    """The head and body of an answer leave in one write (http_protocol._CoalescingTransport): two
    pipelined requests on one connection still get two whole answers, the first request's first."""
    with live.connect() as sock:
        sock.sendall(b"GET /metadata?_summary=true HTTP/1.1\r\nhost: x\r\n\r\n"
                     b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        data = b""
        while data.count(b"HTTP/1.1 200") < 2 or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    first, second = data.index(b"HTTP/1.1 200"), data.rindex(b"HTTP/1.1 200")
    assert b"CapabilityStatement" in data[first:second] and b'"status"' in data[second:]
