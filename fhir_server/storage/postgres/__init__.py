"""The PostgreSQL backend (issue 11 §2): the Store and the audit seam on PostgreSQL 15+ with psycopg 3.

``store.py`` the Store, ``txview.py`` write units, ``schema.py`` the tables (the SQLite index tables'
DDL translated, so both backends index alike), ``audit.py`` the audit seam, ``conn.py`` the connection
through which the SQLite backend's query code (search planner, history, outbox, audit queries) runs here
unchanged. docs/postgres.md says what works and what does not yet.
"""
