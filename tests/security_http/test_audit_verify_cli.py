"""`kzfhir audit verify` over the chain a secured server wrote while serving requests (AC-14)."""

from __future__ import annotations

import sqlite3

import pytest

from fhir_server.cli import main


@pytest.mark.req("AC-14")
async def test_audit_verify_accepts_the_servers_chain_and_detects_an_edit(server, token, secure_settings, capsys):
    for path in ("/Observation/o1", "/Observation/o2", "/Condition/c1"):
        await server.get(path, headers=token("practitioner", "Practitioner/dr1"))
    await server.get("/Observation/o1")  # a failed login is audited too
    db = str(secure_settings.database)
    assert main(["audit", "verify", "--database", db]) == 0
    if db.startswith("postgresql://"):  # KZFHIR_TEST_BACKEND=postgres: the same edit on PostgreSQL
        _edit_postgres(db)
    else:
        _edit_sqlite(db)
    assert main(["audit", "verify", "--database", db]) == 1
    assert "2" in capsys.readouterr().out


def _edit_sqlite(db: str) -> None:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT COUNT(*) FROM audit_chain").fetchone()[0]
    assert rows >= 4  # two reads refused, one allowed, one failed login
    with pytest.raises(sqlite3.DatabaseError):  # the table is append-only at the SQL level
        conn.execute("UPDATE audit_chain SET data = x'00' WHERE seq = 2")
    # someone with file access drops the guard and edits an event: verification must notice
    conn.execute("DROP TRIGGER audit_chain_no_update")
    conn.execute("UPDATE audit_chain SET recorded = '2000-01-01T00:00:00Z' WHERE seq = 2")
    conn.commit()
    conn.close()


def _edit_postgres(db: str) -> None:
    import psycopg

    with psycopg.connect(db, autocommit=True) as conn:
        rows = conn.execute("SELECT count(*) FROM audit_chain").fetchone()
        assert rows is not None and rows[0] >= 2  # the refused reads (the others may still be staged)
        with pytest.raises(psycopg.DatabaseError):  # append-only at the SQL level
            conn.execute("UPDATE audit_chain SET data = '\\x00' WHERE seq = 2")
        # an administrator drops the guard and edits an event: verification must notice
        conn.execute("DROP TRIGGER audit_chain_no_update ON audit_chain")
        conn.execute("UPDATE audit_chain SET recorded = '2000-01-01T00:00:00Z' WHERE seq = 2")
