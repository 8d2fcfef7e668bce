"""Real local services the consultation tests talk to: a telecom (video) service speaking the v1 session
API of docs/consultation.md over HTTP, and a clamd speaking INSTREAM over TCP.

The video service runs as an asyncio server in the test's event loop (the server under test calls it with
httpx, asynchronously). The clamd runs on a thread of its own: the server scans on a worker thread and
waits for the answer.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socketserver
import struct
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Session:
    consultation: str
    participants: list[str]
    start: str
    links: dict[str, str] = field(default_factory=dict)
    end: str | None = None


@dataclass
class VideoService:
    """Sessions by id; each participant's link carries a fresh secret token; joining needs the bearer token
    and a listed participant, as a real service's API would."""

    token: str = "video-api-token"
    fail_with: int | None = None
    sessions: dict[str, Session] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def all_links(self) -> list[str]:
        return [link for s in self.sessions.values() for link in s.links.values()]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method, path, _ = (await reader.readline()).decode().split(" ", 2)
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        body = json.loads(raw) if raw else {}
        self.calls.append((f"{method} {path}", body))
        status, answer = self._answer(method, path, headers, body)
        data = json.dumps(answer).encode()
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + data)
        await writer.drain()
        writer.close()

    def _answer(self, method: str, path: str, headers: dict[str, str], body: dict[str, Any]
                ) -> tuple[int, dict[str, Any]]:
        if self.fail_with is not None:
            return self.fail_with, {"error": "down"}
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "unauthorized"}
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["v1", "sessions"]:
            sid = secrets.token_hex(8)
            self.sessions[sid] = Session(body["consultation"], list(body["participants"]), _now())
            return 201, {"sessionId": sid}
        if method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "sessions"]:
            session = self.sessions.get(parts[2])
            if session is None:
                return 404, {"error": "no such session"}
            if parts[3] == "join":
                who = body.get("participant")
                if who not in session.participants or session.end is not None:
                    return 403, {"error": "not a participant"}
                session.links[who] = f"https://video.example.kz/room/{parts[2]}?t={secrets.token_urlsafe(24)}"
                return 200, {"link": session.links[who], "expires": "2030-01-01T00:00:00Z"}
            if parts[3] == "end":
                session.end = _now()
                return 200, {"start": session.start, "end": session.end, "participants": sorted(session.links)}
        return 404, {"error": "unknown"}


class _Clamd(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        conn = self.request
        command = b""
        while not command.endswith(b"\0"):
            command += conn.recv(1)
        data = b""
        while True:
            size = struct.unpack(">I", self._exactly(4))[0]
            if size == 0:
                break
            data += self._exactly(size)
        self.server.scanned.append(data)  # type: ignore[attr-defined]
        conn.sendall(b"stream: Eicar-Test-Signature FOUND\0" if EICAR in data else b"stream: OK\0")

    def _exactly(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            more = self.request.recv(n - len(out))
            if not more:
                raise ConnectionError("short read")
            out += more
        return out


class Clamd:
    """A clamd that knows one signature: the EICAR test file (what a real clamd reports for it too)."""

    def __init__(self) -> None:
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Clamd)
        self.server.daemon_threads = True
        self.server.scanned = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"clamd://127.0.0.1:{self.server.server_address[1]}"

    @property
    def scanned(self) -> list[bytes]:
        return self.server.scanned  # type: ignore[attr-defined, no-any-return]

    def __enter__(self) -> Clamd:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


ACK = "https://fhir.kzfhir.kz/mappings/nehp/ack-v1.json"


@dataclass
class AckingReceiver:
    """A real HTTP receiver on 127.0.0.1 answering ack-v1: accepted with an id, or rejected with a reason."""

    reject: str | None = None
    bodies: list[dict[str, object]] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/records"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = json.loads(await reader.readexactly(int(headers.get("content-length", "0"))))
        self.bodies.append(body)
        key = headers["idempotency-key"]
        ack = {"schema": ACK, "message": key, "status": "rejected", "reason": self.reject} if self.reject else \
            {"schema": ACK, "message": key, "status": "accepted", "id": f"NEHP-{len(self.bodies)}"}
        data = json.dumps(ack).encode()
        status = 422 if self.reject else 200
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                     "Connection: close\r\n\r\n".encode() + data)
        await writer.drain()
        writer.close()
