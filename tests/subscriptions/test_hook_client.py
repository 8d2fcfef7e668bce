"""The rest-hook HTTP client (subscriptions/http.py) against real local servers: keep-alive reuse, the
response framings (length, chunked, to the end, interim 1xx), a keep-alive connection the server closed,
timeouts, unreachable endpoints, bad headers, and TLS verified against the trust store."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fhir_server.subscriptions.http import HookClient, HookError

pytestmark = pytest.mark.req("TM-13")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[bool]]


class Server:
    """Reads each request (head and Content-Length body) and lets ``answer`` write the response; counts
    connections and keeps the requests seen."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=tls)
        scheme = "https" if tls else "http"
        return f"{scheme}://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook?x=1"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                if not await self.answer(reader, writer, head):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client under test closed the connection: this receiver is done with it
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


def fixed(response: bytes, keep: bool = True) -> Handler:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> bool:
        writer.write(response)
        await writer.drain()
        return keep

    return answer


@pytest.fixture
async def client() -> AsyncIterator[HookClient]:
    c = HookClient()
    yield c
    await c.aclose()


async def serve(answer: Handler, tls: ssl.SSLContext | None = None) -> tuple[Server, str]:
    server = Server(answer)
    return server, await server.start(tls)


async def test_keep_alive_connection_is_reused_and_the_request_is_as_sent(client):
    server, url = await serve(fixed(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok"))
    try:
        for _ in range(3):
            status = await client.request("POST", url, b'{"a":1}', {"content-type": "application/fhir+json",
                                                                   "Idempotency-Key": "sub:s1:1"}, 5)
            assert status == 202
        assert server.connections == 1
        head, _, body = server.requests[0].partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b"POST /hook?x=1 HTTP/1.1"
        assert b"Host: 127.0.0.1:" + url.split(":")[2].split("/")[0].encode() in lines
        assert b"Content-Length: 7" in lines and b"Idempotency-Key: sub:s1:1" in lines and body == b'{"a":1}'
    finally:
        await server.stop()


@pytest.mark.parametrize("response, reused", [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", True),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", True),
    (b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
], ids=["chunked", "interim-1xx", "connection-close"])
async def test_response_framings(client, response, reused):
    server, url = await serve(fixed(response, keep=reused))
    try:
        expected = 500 if not reused else (204 if b"204" in response else 200)
        assert await client.request("PUT", url, b"", {}, 5) == expected
        assert await client.request("PUT", url, b"", {}, 5) == expected
        assert server.connections == (1 if reused else 2)
    finally:
        await server.stop()


async def test_a_body_that_runs_to_the_end_of_the_connection(client):
    server, url = await serve(fixed(b"HTTP/1.1 200 OK\r\n\r\nno length, then the end", keep=False))
    try:
        assert await client.request("POST", url, b"x", {}, 5) == 200
    finally:
        await server.stop()


async def test_a_kept_connection_the_server_closed_meanwhile_is_retried_on_a_new_one(client):
    server, url = await serve(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", keep=False))
    try:  # the server closes after each answer without saying so: the client only finds out on reuse
        for _ in range(3):
            assert await client.request("POST", url, b"x", {}, 5) == 200
        assert len(server.requests) == 3 and server.connections == 3
    finally:
        await server.stop()


async def test_no_answer_in_time_is_a_timeout(client):
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> bool:
        await asyncio.sleep(10)
        return False

    server, url = await serve(silent)
    try:
        with pytest.raises(HookError) as raised:
            await client.request("POST", url, b"x", {}, 0.3)
        assert raised.value.kind == "Timeout"
    finally:
        await server.stop()


async def test_unreachable_endpoint_bad_url_and_bad_headers(client):
    server, url = await serve(fixed(b""))
    await server.stop()
    if server.server is not None:
        await server.server.wait_closed()
    with pytest.raises(HookError) as raised:
        await client.request("POST", url, b"x", {}, 5)
    assert raised.value.kind == "ConnectError"
    with pytest.raises(HookError) as raised:
        await client.request("POST", "ftp://127.0.0.1/x", b"x", {}, 5)
    assert raised.value.kind == "InvalidURL"
    for headers in ({"X-Bad": "a\r\nInjected: yes"}, {"Bad Name": "v"}, {"X-Name": "Ахметов"}):
        with pytest.raises(HookError) as raised:
            await client.request("POST", "http://127.0.0.1:9/x", b"x", headers, 5)
        assert raised.value.kind == "InvalidHeader"


async def test_garbage_instead_of_http_is_a_protocol_error(client):
    server, url = await serve(fixed(b"SSH-2.0-OpenSSH\r\n\r\n", keep=False))
    try:
        with pytest.raises(HookError) as raised:
            await client.request("POST", url, b"x", {}, 5)
        assert raised.value.kind == "RemoteProtocolError"
    finally:
        await server.stop()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_tls_is_verified_against_the_trust_store(client, tmp_path, monkeypatch):
    cert, key = _self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server, url = await serve(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), tls)
    try:
        with pytest.raises(HookError) as raised:  # not trusted: refused, nothing sent
            await client.request("POST", url, b"x", {}, 5)
        assert raised.value.kind in ("TLSError", "ConnectError") and server.requests == []
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the operator's trust store
        trusting = HookClient()
        try:
            assert await trusting.request("POST", url, b"x", {}, 5) == 200
        finally:
            await trusting.aclose()
    finally:
        await server.stop()
