"""Prometheus metrics of the server (issue 13 item 4): requests by FHIR interaction and status, their
latencies, requests in flight, the writer's commits, the outbox backlog and the audit lag.

Written in the text exposition format 0.0.4 by hand: a few counters do not need a client library. The
interaction is read from the method and the path alone (FHIR R4 http.html §3.1.0), so labels stay a
small fixed set whatever the URLs are.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from bisect import bisect_left
from collections import Counter
from datetime import datetime
from itertools import accumulate
from pathlib import Path
from typing import Any

from fhir_server import __version__
from fhir_server.storage.sqlite.audit.journal import unchained_lines

#: Upper bounds (seconds) of the latency histogram's buckets.
BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPERATOR_PATHS = frozenset({"/health", "/ready", "/metrics"})


def interaction(method: str, path: str) -> str:
    """The FHIR interaction a request is (``read``, ``search-type``, ``transaction`` ...), or ``operator``,
    ``docs``, ``other``. ``transaction`` stands for batch too: telling them apart needs the body."""
    if path in OPERATOR_PATHS:
        return "operator"
    if path == "/docs" or path.startswith("/docs/"):
        return "docs"
    parts = [p for p in path.split("/") if p]
    if not parts:
        return {"POST": "transaction", "GET": "search-system"}.get(method, "other")
    if parts[-1].startswith("$") or (len(parts) > 1 and parts[-2].startswith("$")):
        return "operation"  # $export-status/$export-file and friends carry an id after the name
    if parts[0] == "metadata":
        return "capabilities"
    if parts[0] == "_history":
        return "history-system"
    if not parts[0][:1].isupper():
        return "other"
    if len(parts) == 1:
        return {"GET": "search-type", "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}.get(method, "other")
    if parts[1] == "_search":
        return "search-type"
    if parts[1] == "_history":
        return "history-type"
    if len(parts) == 2:
        return {"GET": "read", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "other")
    if parts[2] == "_history":
        return "history-instance" if len(parts) == 3 else "vread"
    return "search-compartment" if method == "GET" else "other"


class Metrics:
    """Counts of one process; ``observe`` is called once per request from the event loop."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.latency: dict[str, list[float]] = {}  # interaction -> bucket counts + [sum, count]
        self.in_flight = 0
        self.writes_in_flight = 0
        self._lock = threading.Lock()

    def started(self, method: str) -> None:
        self.in_flight += 1
        if method in WRITES:
            self.writes_in_flight += 1

    def observe(self, method: str, kind: str, status: int, seconds: float) -> None:
        self.in_flight -= 1
        if method in WRITES:
            self.writes_in_flight -= 1
        # one bucket per observation (the first bound >= seconds; past the last: +Inf only), cumulated in
        # render(): a bisection instead of a comparison per bucket on every request
        with self._lock:
            self.requests[(kind, method, status)] += 1
            row = self.latency.get(kind)
            if row is None:
                row = self.latency[kind] = [0.0] * (len(BUCKETS) + 2)
            n = bisect_left(BUCKETS, seconds)
            if n < len(BUCKETS):
                row[n] += 1
            row[-2] += seconds
            row[-1] += 1

    def render(self, store: dict[str, Any]) -> str:
        out = [
            "# HELP kzfhir_build_info The running version.", "# TYPE kzfhir_build_info gauge",
            f'kzfhir_build_info{{version="{__version__}"}} 1',
            "# HELP kzfhir_http_requests_total Requests answered, by FHIR interaction, method and status.",
            "# TYPE kzfhir_http_requests_total counter",
        ]
        with self._lock:
            requests = sorted(self.requests.items())
            latency = {k: list(v) for k, v in sorted(self.latency.items())}
        out += [f'kzfhir_http_requests_total{{interaction="{k}",method="{m}",status="{s}"}} {n}'
                for (k, m, s), n in requests]
        out += ["# HELP kzfhir_http_request_duration_seconds Time to answer, by FHIR interaction.",
                "# TYPE kzfhir_http_request_duration_seconds histogram"]
        for kind, row in latency.items():
            cumulated = list(accumulate(row[:len(BUCKETS)]))  # Prometheus buckets count all below their bound
            out += [f'kzfhir_http_request_duration_seconds_bucket{{interaction="{kind}",le="{b}"}} '
                    f'{int(cumulated[n])}' for n, b in enumerate(BUCKETS)]
            out += [f'kzfhir_http_request_duration_seconds_bucket{{interaction="{kind}",le="+Inf"}} {int(row[-1])}',
                    f'kzfhir_http_request_duration_seconds_sum{{interaction="{kind}"}} {row[-2]:.6f}',
                    f'kzfhir_http_request_duration_seconds_count{{interaction="{kind}"}} {int(row[-1])}']
        out += ["# HELP kzfhir_http_requests_in_flight Requests being answered now.",
                "# TYPE kzfhir_http_requests_in_flight gauge", f"kzfhir_http_requests_in_flight {self.in_flight}",
                "# HELP kzfhir_write_requests_in_flight Write requests (POST/PUT/PATCH/DELETE) being answered: "
                "what waits for the single writer.", "# TYPE kzfhir_write_requests_in_flight gauge",
                f"kzfhir_write_requests_in_flight {self.writes_in_flight}"]
        out += _store_lines(store)
        return "\n".join(out) + "\n"


def _store_lines(store: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if "commits" in store:
        out += ["# HELP kzfhir_writer_commits_total Commits of the group-commit writer.",
                "# TYPE kzfhir_writer_commits_total counter", f"kzfhir_writer_commits_total {store['commits']}",
                "# HELP kzfhir_writer_units_total Write units committed (units/commits = group-commit factor).",
                "# TYPE kzfhir_writer_units_total counter", f"kzfhir_writer_units_total {store['units']}"]
    if "queue" in store:
        out += ["# HELP kzfhir_writer_queue_depth Write units waiting for the writer thread.",
                "# TYPE kzfhir_writer_queue_depth gauge", f"kzfhir_writer_queue_depth {store['queue']}"]
    if "outbox" in store:
        out += ["# HELP kzfhir_outbox_messages Outbox messages not delivered, by topic and status (backlog).",
                "# TYPE kzfhir_outbox_messages gauge"]
        out += [f'kzfhir_outbox_messages{{topic="{t}",status="{s}"}} {n}' for (t, s), n in store["outbox"]]
        out += ["# HELP kzfhir_outbox_oldest_pending_seconds Age of the oldest pending outbox message.",
                "# TYPE kzfhir_outbox_oldest_pending_seconds gauge",
                f"kzfhir_outbox_oldest_pending_seconds {store['outbox_oldest']:.3f}"]
    if "replicas" in store:  # PostgreSQL read replicas (storage/postgres/replicas.py)
        figures = store["replicas"]
        out += ["# HELP kzfhir_store_reads_total Reads by id, vread, search, history and include rounds, by who "
                "served them (primary, or a replica by host:port/dbname).", "# TYPE kzfhir_store_reads_total counter",
                f'kzfhir_store_reads_total{{served_by="primary"}} {figures["primary"]}']
        out += [f'kzfhir_store_reads_total{{served_by="{r["name"]}"}} {r["served"]}' for r in figures["replicas"]]
        out += ["# HELP kzfhir_replica_fallbacks_total Reads meant for a replica that the primary served, by reason.",
                "# TYPE kzfhir_replica_fallbacks_total counter"]
        out += [f'kzfhir_replica_fallbacks_total{{reason="{reason}"}} {n}' for reason, n in figures["fallbacks"]]
        out += ["# HELP kzfhir_replica_up The replica answers and is a standby (1), or serves no reads (0).",
                "# TYPE kzfhir_replica_up gauge"]
        out += [f'kzfhir_replica_up{{replica="{r["name"]}"}} {1 if r["up"] else 0}'
                for r in figures["replicas"]]
        out += ["# HELP kzfhir_replica_lag_seconds How far the replica's data is behind the primary's newest write "
                "(0: it has replayed it; an upper bound; +Inf: never measured).",
                "# TYPE kzfhir_replica_lag_seconds gauge"]
        out += [f'kzfhir_replica_lag_seconds{{replica="{r["name"]}"}} '
                f'{"+Inf" if r["lag"] == float("inf") else format(r["lag"], ".3f")}' for r in figures["replicas"]]
    if "audit_unchained" in store:
        out += ["# HELP kzfhir_audit_unchained_reads Read-audit journal lines not yet in the hash chain (audit lag).",
                "# TYPE kzfhir_audit_unchained_reads gauge", f"kzfhir_audit_unchained_reads {store['audit_unchained']}"]
    return out


def _outbox(conn: sqlite3.Connection | Any) -> tuple[list[tuple[tuple[str, str], int]], float]:
    """The outbox backlog by topic and state, and the age of the oldest pending message (the same table on
    SQLite and PostgreSQL: storage/sqlite/outbox.py's DDL)."""
    rows = conn.execute("SELECT topic, status, COUNT(*) FROM outbox WHERE status != 'delivered' "
                        "GROUP BY topic, status ORDER BY topic, status").fetchall()
    oldest = conn.execute("SELECT MIN(created) FROM outbox WHERE status = 'pending'").fetchone()[0]
    age = 0.0
    if oldest:
        try:
            age = max(0.0, time.time() - datetime.fromisoformat(str(oldest).replace("Z", "+00:00")).timestamp())
        except ValueError:
            age = 0.0
    return [((str(t), str(s)), int(n)) for t, s, n in rows], age


async def store_figures(store: Any) -> dict[str, Any]:
    """What the embedded store tells: its writer's counts, the outbox backlog and the unchained read-audit
    lines. Read-only; a store without these accessors (another backend) contributes nothing."""
    figures: dict[str, Any] = {}
    stats = getattr(store, "writer_stats", None)
    if isinstance(stats, tuple):
        figures["commits"], figures["units"] = stats
    depth = getattr(store, "writer_queue_depth", None)  # not on SqliteStore yet (see docs/operations.md)
    if isinstance(depth, int):
        figures["queue"] = depth
    replicas = getattr(store, "replica_figures", None)
    if callable(replicas) and (found := replicas()) is not None:
        figures["replicas"] = found
    run_read, path = getattr(store, "run_read", None), getattr(store, "path", None)
    if run_read is not None and isinstance(path, str) and path != ":memory:":
        figures["outbox"], figures["outbox_oldest"] = await run_read(_outbox)
        figures["audit_unchained"] = await run_read(lambda _conn: unchained_lines(path)) \
            if Path(path).exists() else 0
    elif callable(run_query := getattr(store, "run_query", None)):  # PostgreSQL (storage/postgres/store.py)
        figures["outbox"], figures["outbox_oldest"], figures["audit_unchained"] = await run_query(_pg_figures)
    return figures


def _pg_figures(conn: Any) -> tuple[list[tuple[tuple[str, str], int]], float, int]:
    """The outbox backlog, and the reads staged in ``read_audit`` that no node has chained yet (any node chains
    them within a second: storage/postgres/read_audit.py), in one snapshot."""
    rows, age = _outbox(conn)
    staged = conn.execute("SELECT coalesce(sum(reads), 0) FROM read_audit").fetchone()
    return rows, age, int(staged[0]) if staged else 0
