"""One paging-cursor key for every process and node on one PostgreSQL database (issue 11 §3).

A ``next`` link sealed by one process must open on whichever process the following request reaches
(search/cursor.py seals with a random per-process key otherwise). When ``KZFHIR_CURSOR_SECRET`` is not
set, the first process to start on the database draws a key and keeps it in the database (a row of the
jobs table under its own kind, which no job listing or status route reads); every other process reads
the same row. SQLite is served by one process, which keeps its own key.
"""

from __future__ import annotations

import secrets

from fhir_server.backends import is_postgres
from fhir_server.config import Settings
from fhir_server.search.cursor import use_key
from fhir_server.storage.protocols import Store, TxView

JOB_ID = "kzfhir:cursor-key"
KIND = "server-key"


def _key(view: TxView) -> bytes:
    held = view.job(JOB_ID)  # PostgreSQL: FOR UPDATE, and write units are serialised: one key is drawn
    if held is None:
        held = secrets.token_urlsafe(32).encode("ascii")
        view.put_job(JOB_ID, KIND, "active", held)
    return held


async def share_cursor_key(store: Store, settings: Settings) -> None:
    """At start, after the store opened: seal cursors with the database's key (PostgreSQL, no secret set)."""
    if settings.cursor_secret is not None or not is_postgres(settings.database):
        return
    use_key((await store.transaction(_key)).decode("ascii"))
