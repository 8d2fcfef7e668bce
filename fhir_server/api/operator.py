"""What an operator needs around the FHIR API (issue 13 item 4), as one ASGI layer outside the app:

- ``GET /health``: the process is alive (liveness; no store access, no token);
- ``GET /ready``: the store answers and its schema is the one this version creates (readiness);
- ``GET /metrics``: Prometheus metrics (``api/metrics.py``);
- a request id for every request: the client's ``X-Request-Id`` when usable (the audit's rule,
  docs/security.md), else a new one, which is put on the request (so the AuditEvent records the same id)
  and echoed in the response's ``X-Request-Id``;
- one JSON access-log line per request on the ``kzfhir.access`` logger (setting ``access_log``);
- CORS for the origins in ``cors_origins`` (Starlette's CORSMiddleware), and the browsable API page
  (``api/docs_page.py``).

The three endpoints carry no patient data and need no token, as load balancers and scrapers call them
without one; keep them off the public side of a reverse proxy when the figures are not for everyone
(docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import re
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.middleware.cors import CORSMiddleware

from fhir_server import __version__
from fhir_server.api import docs_page
from fhir_server.api.metrics import Metrics, interaction, store_figures
from fhir_server.config import Settings
from fhir_server.security.auth.request import usable_request_id
from fhir_server.security.context import next_request_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

access_log = logging.getLogger("kzfhir.access")
HEALTH_JSON = b"application/health+json"  # draft-inadarei-api-health-check
PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"
#: Headers a browser client of a FHIR API sends and reads (FHIR R4 http.html: versions, conditions, Prefer).
CORS_REQUEST_HEADERS = ("Authorization", "Content-Type", "Accept", "If-Match", "If-None-Match", "If-None-Exist",
                        "If-Modified-Since", "Prefer", "X-Request-Id", "X-Purpose-Of-Use", "X-Break-Glass-Reason",
                        "X-Legal-Basis")
CORS_EXPOSED_HEADERS = ("Location", "Content-Location", "ETag", "Last-Modified", "X-Request-Id", "Retry-After",
                        "X-Progress")
_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)")


def expected_tables() -> set[str]:
    """The tables this version's schema creates (storage/sqlite/schema.py and what it adds)."""
    from fhir_server.backends import AUDIT_RULES
    from fhir_server.storage.sqlite import indexing
    from fhir_server.storage.sqlite.audit.schema import chain_ddl
    from fhir_server.storage.sqlite.outbox import OUTBOX_DDL
    from fhir_server.storage.sqlite.schema import BASE_DDL

    ddl = [*BASE_DDL, *OUTBOX_DDL, *indexing.ddl(), chain_ddl(AUDIT_RULES.genesis)]
    return set(_TABLE.findall("\n".join(ddl)))


def _schema_problems(conn: sqlite3.Connection) -> list[str]:
    present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    problems = [f"table {t} is missing" for t in sorted(expected_tables() - present)]
    if "resources" in present and "patients" not in {r[1] for r in conn.execute("PRAGMA table_info(resources)")}:
        problems.append("column resources.patients is missing")
    return problems


async def readiness(services: Any) -> tuple[bool, dict[str, Any]]:
    """Ready when the store answers a read and its schema is the one this version creates: on SQLite every
    table and column, on PostgreSQL the version recorded in ``kzfhir_schema``. Read replicas are reported
    ("warn" when one is out of use: the primary serves its reads), never a reason to be unready."""
    store = services.store
    checks: dict[str, Any] = {}
    try:
        run_read = getattr(store, "run_read", None)
        schema_problems = getattr(store, "schema_problems", None)
        if run_read is not None:
            problems: list[str] = await run_read(_schema_problems)
        elif schema_problems is not None:
            problems = await schema_problems()
        else:  # another backend: a read through the protocol proves it reachable
            await store.read("Patient", "kzfhir-readiness-probe")
            problems = []
        checks["store"] = {"status": "pass"}
        checks["schema"] = {"status": "fail", "output": "; ".join(problems)} if problems else {"status": "pass"}
    except Exception as exc:  # any failure to read means not ready: say which, never raise
        checks["store"] = {"status": "fail", "output": f"{type(exc).__name__}: {exc}"[:300]}
    replicas = getattr(store, "replica_figures", None)
    figures = replicas() if callable(replicas) else None
    if figures:
        out = [f"{r['name']}: {r['problem'] or 'in use'}" for r in figures["replicas"]]
        usable = all(r["up"] for r in figures["replicas"])
        checks["replicas"] = {"status": "pass" if usable else "warn", "output": "; ".join(out)}
    ok = all(c["status"] in ("pass", "warn") for c in checks.values())
    return ok, {"status": "pass" if ok else "fail", "version": __version__, "checks": checks}


class AccessLines:
    """The access log of ``kzfhir serve``: JSON lines to stdout, written in batches.

    A ``logging.StreamHandler`` costs about 18 µs a request (a LogRecord, the caller's frame looked up, a
    lock, a write and a flush per line), as much as a read by id itself. Lines are queued here and
    written together at most ``FLUSH_SECONDS`` later (and at exit), in one write; a line is never lost on
    a clean stop, and at most that much of the log on a crash (the audit trail is separate and durable).
    """

    FLUSH_SECONDS = 0.2

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.pending: list[bytes] = []
        self.scheduled = False
        atexit.register(self.flush)

    def write(self, line: bytes) -> None:
        self.pending.append(line)
        if self.scheduled:
            return
        try:
            asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)
            self.scheduled = True
        except RuntimeError:  # no event loop (a command line tool): write at once
            self.flush()

    def flush(self) -> None:
        self.scheduled = False
        lines, self.pending = self.pending, []
        if lines:
            with contextlib.suppress(OSError, ValueError):  # stdout closed or gone: the server goes on
                self.stream.write(b"".join(lines))
                self.stream.flush()


_sink: AccessLines | None = None


def configure_logging(settings: Settings) -> None:
    """Access-log lines to stdout, one JSON object each (``kzfhir serve``; the tests leave it off and read
    the ``kzfhir.access`` logger instead)."""
    global _sink
    if not settings.access_log or _sink is not None:
        return
    _sink = AccessLines(getattr(sys.stdout, "buffer", sys.stdout))


def _origins(setting: str) -> list[str]:
    return [o.strip() for o in setting.split(",") if o.strip()]


_OWN_PATHS = frozenset({"/", "/health", "/ready", "/metrics"})


class Operator:
    """The outermost ASGI layer (wraps the app ``create_app`` builds); see the module docstring."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.inner = app
        self.settings = settings
        self.metrics = Metrics()
        origins = _origins(settings.cors_origins)
        self.wrapped: Any = CORSMiddleware(
            app, allow_origins=origins, allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
            allow_headers=list(CORS_REQUEST_HEADERS), expose_headers=list(CORS_EXPOSED_HEADERS),
            allow_credentials="*" not in origins, max_age=600) if origins else app
        self.docs = docs_page.Pages() if settings.docs_page else None

    # what tests, the lifespan and other layers reach through the app this one wraps
    @property
    def app(self) -> Any:
        return self.inner.app

    @property
    def router(self) -> Any:
        return self.inner.router

    @property
    def state(self) -> Any:
        return self.inner.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.wrapped(scope, receive, send)
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        headers = scope["headers"]
        given = None
        for key, value in headers:  # the raw list: no dict of all headers built per request
            if key == b"x-request-id":
                given = usable_request_id(value.decode("latin-1"))
                break
        request_id = given or next_request_id()
        if given is None:  # the audit reads the id from the request: give it the one we answer with
            scope["headers"] = [*[(k, v) for k, v in headers if k != b"x-request-id"],
                                (b"x-request-id", request_id.encode())]
        # the inner layers (api/middleware.py) take the id and the status box from here, and leave the
        # response header to us: one send wrapper for both layers
        status = [0]
        state = scope.setdefault("state", {})
        state["request_id"], state["response_status"] = request_id, status
        id_header = (b"x-request-id", request_id.encode())
        # PostgreSQL with read replicas: where this request's reads may go, and read-your-writes for its
        # client (storage/postgres/replicas.py); None on every other store
        writes: Any = getattr(self.state.services.store, "read_your_writes", None) if path not in _OWN_PATHS else None
        route = writes.enter(method, scope["headers"]) if writes is not None else None

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                out = message.get("headers", [])
                if not any(k == b"x-request-id" for k, _ in out):  # an inner layer may have set it
                    message = {**message, "headers": (out := [*out, id_header])}
                if route is not None and route.written:  # the instant of the client's write: a cookie
                    message = {**message, "headers": [*out, *writes.finish(route)]}
            await send(message)

        self.metrics.started(method)
        try:
            # FHIR paths start with a resource type, $operation or _history: only the few others are ours
            if not ((path in _OWN_PATHS or path.startswith("/docs")) and
                    await self._own(scope, receive, sending, method, path)):
                await self.wrapped(scope, receive, sending)
        finally:
            if route is not None:
                writes.leave(route)
            seconds = time.perf_counter() - started
            # the read fast path names its interaction (api/fastpath.py); the others are parsed from the path
            kind = state.get("interaction") or interaction(method, path)
            self.metrics.observe(method, kind, status[0], seconds)
            if self.settings.access_log and (_sink is not None or access_log.isEnabledFor(logging.INFO)):
                self._log(scope, request_id, kind, status[0], seconds)

    async def _own(self, scope: Scope, receive: Receive, send: Send, method: str, path: str) -> bool:
        """Answer the operator endpoints and the API page; False for everything else."""
        if method not in ("GET", "HEAD"):
            return False
        if path == "/health":
            body = orjson.dumps({"status": "pass", "version": __version__})
            await _answer(send, 200, HEALTH_JSON, body, method)
        elif path == "/ready":
            ok, report = await readiness(self.state.services)
            await _answer(send, 200 if ok else 503, HEALTH_JSON, orjson.dumps(report), method)
        elif path == "/metrics" and self.settings.metrics:
            figures = await store_figures(self.state.services.store)
            await _answer(send, 200, PROMETHEUS_TEXT, self.metrics.render(figures).encode(), method)
        elif self.docs is not None:
            return await self.docs.handle(scope, send)
        else:
            return False
        return True

    @staticmethod
    def _log(scope: Scope, request_id: str, kind: str, status: int, seconds: float) -> None:
        client = scope.get("client")
        query = scope.get("query_string", b"").decode("latin-1")
        # parameter names only: values (names, IINs, dates of birth) are personal data (DSM-54)
        params = sorted({unquote(p.partition("=")[0]) for p in query.split("&") if p})[:50]
        line = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "request_id": request_id,
                "method": scope["method"], "path": scope["path"], "params": params, "interaction": kind,
                "status": status, "ms": round(seconds * 1000, 2), "client": client[0] if client else None}
        if _sink is not None:
            _sink.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        else:
            access_log.info(orjson.dumps(line).decode())


async def _answer(send: Send, status: int, media: bytes, body: bytes, method: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", media), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
