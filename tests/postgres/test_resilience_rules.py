"""The rules behind the PostgreSQL store's resilience and read routing, without a database: which errors
mean "the database is out of reach" (503), what the client is told, how read-your-writes is carried
(cookie, token), and how a replica is named in /metrics (never with its credentials)."""

from __future__ import annotations

import psycopg
from psycopg_pool import PoolTimeout

from fhir_server.storage.postgres.conn import DatabaseUnavailable, connect_kwargs, is_unavailable, reason_of, safe_name
from fhir_server.storage.postgres.replicas import COOKIE, ReadYourWrites, unusable


def test_what_counts_as_the_database_out_of_reach() -> None:
    assert is_unavailable(psycopg.OperationalError("connection refused"))
    assert is_unavailable(psycopg.errors.AdminShutdown("terminating connection due to administrator command"))
    assert is_unavailable(PoolTimeout("couldn't get a connection after 1.00 sec"))
    assert is_unavailable(psycopg.errors.ReadOnlySqlTransaction("cannot execute UPDATE in a read-only transaction"))
    assert not is_unavailable(psycopg.errors.QueryCanceled("canceling statement due to statement timeout"))
    assert not is_unavailable(psycopg.errors.UniqueViolation("duplicate key"))
    assert not is_unavailable(ValueError("not a database error"))
    # on a replica, a query cancelled by replay is the primary's to serve, a statement timeout is not
    assert unusable(psycopg.errors.SerializationFailure("canceling statement due to conflict with recovery"))
    assert not unusable(psycopg.errors.QueryCanceled("canceling statement due to statement timeout"))


def test_the_client_is_told_503_transient_with_retry_after_and_no_connection_string() -> None:
    error = DatabaseUnavailable(reason_of(psycopg.OperationalError(
        'connection to server at "db.example.kz" failed: password authentication failed for user "kzfhir"')))
    assert error.status == 503 and error.headers == {"Retry-After": "5"}
    assert error.outcome()["issue"][0]["code"] == "transient"
    assert "password" not in error.message and error.reason == "OperationalError"
    assert reason_of(PoolTimeout("couldn't get a connection after 1.00 sec")) == \
        "PoolTimeout: couldn't get a connection after 1.00 sec"


def test_connections_get_a_connect_timeout_unless_the_url_has_one() -> None:
    assert connect_kwargs("postgresql://kzfhir@db/kz", 30000) == {
        "autocommit": True, "options": "-c statement_timeout=30000", "connect_timeout": 5}
    assert "connect_timeout" not in connect_kwargs("postgresql://kzfhir@db/kz?connect_timeout=2", 0)


def test_a_replica_is_named_by_hosts_ports_and_database_only() -> None:
    assert safe_name("postgresql://kzfhir:secret@db2.example.kz:5433/kzfhir") == "db2.example.kz:5433/kzfhir"
    assert safe_name("postgresql://kzfhir@db1,db2:5433/kz?target_session_attrs=standby") == "db1:5432,db2:5433/kz"


def test_read_your_writes_by_cookie_and_by_token() -> None:
    rw = ReadYourWrites(ttl_seconds=90)
    token = (b"authorization", b"Bearer abc")
    route = rw.begin("PUT", [token])
    assert not route.replicas and route.after == 0 and rw.finish(route) == []  # wrote nothing: no cookie
    route.wrote(1_700_000_000_000_001)
    cookie = rw.finish(route)
    expected = f"{COOKIE}=1700000000000001; Path=/; Max-Age=90; HttpOnly; SameSite=Lax"
    assert cookie == [(b"set-cookie", expected.encode())]
    # the same token, no cookie: remembered in this process
    assert rw.begin("GET", [token]).after == 1_700_000_000_000_001
    # the cookie alone, another token
    later = rw.begin("GET", [(b"cookie", b"theme=dark; kzfhir_rw=1700000000000009"), (b"authorization", b"Bearer x")])
    assert later.replicas and later.after == 1_700_000_000_000_009
    # a client that never wrote, and cookies that are not instants
    assert rw.begin("GET", [(b"cookie", b"kzfhir_rw=-5; other=1")]).after == 0
    assert rw.begin("GET", [(b"cookie", b"kzfhir_rw=" + b"9" * 40)]).after == 0
    assert rw.begin("HEAD", []).replicas and not rw.begin("POST", []).replicas
