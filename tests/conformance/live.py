"""Real endpoints on loopback for the kit (issue 18): ``kzfhir serve`` processes (tests/live_server.py),
issue 18's gateway, a real HTTP proxy that checks only the shape of bearer tokens in front of an open
server, and ``served``: an in-process app (kzfhir, or kzfhir with one guarantee broken by test code,
tests/conformance/variants.py) behind uvicorn on a loopback port. The kit reaches them over TCP exactly
as a regulator's laptop reaches a vendor."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from fhir_server.security.auth import issue_dev_token
from tests.live_server import free_port, start_server

ORG_BIN = "940140000385"


@dataclass(frozen=True)
class Endpoint:
    base: str
    dev_key: Path  # the development key the server trusts (the kit mints test identities with it)

    def system_token(self) -> str:
        """An MIS back-end's token (role system, the organisation's BIN), as docs/security.md issues."""
        return issue_dev_token("system", None, bin=ORG_BIN, key_path=self.dev_key)


@contextmanager
def kzfhir_process(directory: Path, *, secure: bool) -> Iterator[Endpoint]:
    """``kzfhir serve`` on a free port, secured (the shipped default) or ``--open``; killed on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    port, key = free_port(), directory / "dev-jwks.json"
    proc = start_server(directory / "db.sqlite", port, open_mode=not secure, dev_keys=key)
    try:
        if not key.exists():  # an open server never loads its key: make the one the kit mints with
            issue_dev_token("system", None, key_path=key)
        yield Endpoint(f"http://127.0.0.1:{port}", key)
    finally:
        proc.kill()
        proc.wait(timeout=30)


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """``app`` (its lifespan included) served by uvicorn on a free loopback port in this event loop, so a
    test can break a guarantee with a monkeypatch or a wrapper and still reach it over real HTTP; the
    base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", access_log=False, ws="none"))
    task = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError("the in-process server did not start")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


# --- issue 18's gateway: about forty lines a vendor could put in front of an open server ---------------

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "accept-encoding", "te", "upgrade"}


def _plausible(authorization: str | None) -> bool:
    """A bearer JWT of three parts whose header names an algorithm other than none. No signature check."""
    scheme, _, token = (authorization or "").partition(" ")
    parts = token.strip().split(".")
    if scheme.lower() != "bearer" or len(parts) != 3:
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except ValueError:
        return False
    return isinstance(header, dict) and str(header.get("alg", "none")).lower() != "none"


def _handler(client: httpx.Client) -> type[BaseHTTPRequestHandler]:
    class Gateway(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self.path.startswith("/metadata") and not _plausible(self.headers.get("Authorization")):
                status, headers = 401, {"Content-Type": "application/fhir+json"}
                content = json.dumps({"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "login", "diagnostics": "bearer token required"}]}).encode()
            else:
                sent = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                answer = client.request(self.command, self.path, headers=sent, content=body)
                status, content = answer.status_code, answer.content
                headers = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP | {"content-encoding"}}
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            return

    return Gateway


@contextmanager
def token_gateway(upstream: Endpoint) -> Iterator[Endpoint]:
    """Issue 18's gateway on its own port in front of ``upstream``: refuses missing, malformed and
    ``alg=none`` tokens, forwards everything else unchanged (the Host header too, so the server's links
    name the gateway)."""
    with httpx.Client(base_url=upstream.base, timeout=60) as client:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(client))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Endpoint(f"http://127.0.0.1:{server.server_address[1]}", upstream.dev_key)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
