"""Index tables of the SQLite backend (one per search value kind; architecture core decision 3).

Every table is clustered on ``(rid, param, n)`` (WITHOUT ROWID): rewriting or probing one resource's
rows touches one B-tree range. A second index per table serves lookups by value within a resource
type, which is how the planner finds candidate resources. Resources that are deleted have no rows,
so counts over these indexes need no join with ``resources``.
"""

from __future__ import annotations

TABLES = ("sp_token", "sp_string", "sp_date", "sp_number", "sp_quantity", "sp_reference", "sp_uri", "sp_compartment")

INDEX_DDL: list[str] = [
    """CREATE TABLE IF NOT EXISTS sp_token (
        rid INTEGER NOT NULL, n INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
        grp INTEGER NOT NULL, system TEXT, code TEXT, text TEXT,
        PRIMARY KEY (rid, param, n)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS sp_token_value ON sp_token(type, param, code, system)",
    """CREATE TABLE IF NOT EXISTS sp_string (
        rid INTEGER NOT NULL, n INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
        grp INTEGER NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL,
        PRIMARY KEY (rid, param, n)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS sp_string_value ON sp_string(type, param, norm)",
    """CREATE TABLE IF NOT EXISTS sp_date (
        rid INTEGER NOT NULL, n INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
        grp INTEGER NOT NULL, low INTEGER NOT NULL, high INTEGER NOT NULL,
        PRIMARY KEY (rid, param, n)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS sp_date_value ON sp_date(type, param, low, high)",
    """CREATE TABLE IF NOT EXISTS sp_number (
        rid INTEGER NOT NULL, n INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
        grp INTEGER NOT NULL, low REAL NOT NULL, high REAL NOT NULL,
        PRIMARY KEY (rid, param, n)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS sp_number_value ON sp_number(type, param, low, high)",
    """CREATE TABLE IF NOT EXISTS sp_quantity (
        rid INTEGER NOT NULL, n INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
        grp INTEGER NOT NULL, system TEXT, code TEXT, unit TEXT, low REAL NOT NULL, high REAL NOT NULL,
        PRIMARY KEY (rid, param, n)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS sp_quantity_value ON sp_quantity(type, param, code, low)",
    """CREATE TABLE IF NOT EXISTS sp_reference (
        rid INTEGER NOT NULL, n INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
        grp INTEGER NOT NULL, ref_type TEXT, ref_id TEXT, ref_version TEXT, url TEXT,
        PRIMARY KEY (rid, param, n)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS sp_reference_target ON sp_reference(ref_id, ref_type, param, type)",
    "CREATE INDEX IF NOT EXISTS sp_reference_url ON sp_reference(url, param, type) WHERE url IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS sp_uri (
        rid INTEGER NOT NULL, n INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
        grp INTEGER NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (rid, param, n)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS sp_uri_value ON sp_uri(type, param, value)",
    """CREATE TABLE IF NOT EXISTS sp_compartment (
        rid INTEGER NOT NULL, type TEXT NOT NULL, comp_type TEXT NOT NULL, comp_id TEXT NOT NULL,
        PRIMARY KEY (rid, comp_type, comp_id)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS sp_compartment_member ON sp_compartment(comp_type, comp_id, type)",
]
# _lastUpdated search/sort and $everything's _since also rely on the store's own index
# ``resources_type_updated ON resources(type, last_updated)`` (storage/sqlite/schema.py).
