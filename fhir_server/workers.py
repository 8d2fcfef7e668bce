"""``kzfhir serve --workers N``: N server processes sharing one listening socket (issue 11 §3).

The parent binds the socket, makes the development signing key before any worker would make its own
(the paging-cursor key is the database's: search/cursor_key.py), then spawns the workers and watches them: a worker
that dies is started again, and SIGTERM/SIGINT stop them all (each finishes its requests, as uvicorn
does on a signal). Workers are spawned, not forked, so none inherits the parent's threads or a
connection. Only a PostgreSQL store can be shared: SQLite is single-process by design, and the
second process on a file is refused (storage/sqlite/lock.py).
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from typing import Any

#: A worker that dies this soon after its start counts as failing to start; this many in a row and
#: the supervisor gives up (a database that refuses every connection, a bad setting) rather than spin.
QUICK_DEATH_SECONDS = 10.0
MAX_QUICK_DEATHS = 5


def run_worker(overrides: dict[str, object], sock: socket.socket, log_level: str) -> None:
    """One worker: its own app, store and pools, serving the inherited socket."""
    import uvicorn

    from fhir_server.api.app import create_app
    from fhir_server.api.operator import configure_logging
    from fhir_server.config import Settings

    settings = Settings(**overrides)  # type: ignore[arg-type]
    app = create_app(settings)
    configure_logging(settings)
    uvicorn.Server(uvicorn.Config(app, **uvicorn_options(settings, log_level))).run(sockets=[sock])


def uvicorn_options(settings: Any, log_level: str) -> dict[str, Any]:
    """The ASGI server's options, the same for one process and for each worker."""
    from fhir_server.api.http_protocol import protocol_class
    from fhir_server.cli import log_config

    # issue 12: header/body timeouts, header size, connection cap and OperationOutcome error pages live
    # in the protocol (api/http_protocol.py); no WebSocket, one log format for uvicorn's and our lines
    return {"host": settings.host, "port": settings.port, "log_level": log_level, "access_log": False,
            "loop": "uvloop", "http": protocol_class(settings), "ws": "none", "log_config": log_config(log_level),
            "timeout_keep_alive": max(1, round(settings.keep_alive_timeout))}


def supervise(overrides: dict[str, object], workers: int, log_level: str) -> int:
    """Bind, spawn ``workers`` processes, restart any that dies, stop them all on SIGTERM/SIGINT."""
    import uvicorn

    from fhir_server.config import Settings

    settings = Settings(**overrides)  # type: ignore[arg-type]
    # the import string is never loaded here: the Config only binds (IPv4/IPv6, SO_REUSEADDR as uvicorn does)
    sock = uvicorn.Config("fhir_server.api.app:create_app", host=settings.host, port=settings.port).bind_socket()
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    def start() -> tuple[BaseProcess, float]:
        process = context.Process(target=run_worker, args=(overrides, sock, log_level), daemon=False)
        process.start()
        return process, time.monotonic()

    running = [start() for _ in range(workers)]
    quick_deaths = 0
    status = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for index, (process, started) in enumerate(running):
                if process.is_alive() or stopping:
                    continue
                quick_deaths = quick_deaths + 1 if time.monotonic() - started < QUICK_DEATH_SECONDS else 0
                print(f"kzfhir serve: worker {process.pid} ended (exit {process.exitcode})"
                      + ("" if quick_deaths < MAX_QUICK_DEATHS else "; giving up"), file=sys.stderr, flush=True)
                if quick_deaths >= MAX_QUICK_DEATHS:
                    stopping, status = True, 1
                    break
                running[index] = start()
    finally:
        for process, _ in running:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn lets the requests in flight finish
        for process, _ in running:
            process.join(30)
            if process.is_alive():
                process.kill()
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
