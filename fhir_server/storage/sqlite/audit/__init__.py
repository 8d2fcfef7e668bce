"""The audit seam (storage/audit.py) on SQLite: the ``audit_chain`` table and its patient index,
the read-audit journal, the queries and verification. The chain's rules come injected
(``storage.audit.ChainRules``); nothing here decides what a row holds or how it links."""
