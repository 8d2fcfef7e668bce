"""SQLite search backend: index tables, index row writing and the SQL planner/executor.

The store (``storage/sqlite/store.py``) executes ``INDEX_DDL`` at start-up, calls ``write_index`` /
``delete_index`` inside its write transaction, ``match_ids`` for conditional interactions inside that
transaction, and ``run_search`` / ``include_round`` on a reader connection.
"""

from fhir_server.storage.sqlite.search.ddl import INDEX_DDL
from fhir_server.storage.sqlite.search.executor import match_ids, run_search
from fhir_server.storage.sqlite.search.includes import include_round
from fhir_server.storage.sqlite.search.writer import delete_index, write_index

__all__ = ["INDEX_DDL", "delete_index", "include_round", "match_ids", "run_search", "write_index"]
