"""Where the SQL of the shared search planner differs between SQLite and PostgreSQL.

The planner (clauses_sql.py, values_sql.py, planner.py), the executor, includes and history queries
write ``?`` placeholders and standard SQL; the few spellings that differ come from a :class:`Dialect`
(the SQLite one by default, so the embedded store's SQL is unchanged). The PostgreSQL backend runs the
same statements through a connection that turns ``?`` into psycopg's ``%s``
(storage/postgres/conn.py) and passes :data:`POSTGRES`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    true: str  # a condition that always holds (SQLite: 1; PostgreSQL needs a boolean)
    false: str
    ordered_join: str  # SQLite's CROSS JOIN ... ON keeps the planner's join order; PostgreSQL says JOIN
    text_list: str  # a sub-query of the values of one JSON array parameter (texts)
    int_list: str  # the same for integers (row ids)


SQLITE = Dialect("sqlite", "1", "0", "CROSS JOIN", "SELECT value FROM json_each(?)", "SELECT value FROM json_each(?)")
POSTGRES = Dialect("postgresql", "TRUE", "FALSE", "JOIN", "SELECT value FROM json_array_elements_text(?::json)",
                   "SELECT value::bigint FROM json_array_elements_text(?::json)")
