"""The seams hold by construction (issue 10 §5): storage does not import security, and security holds no
SQL. The audit trail's rules reach the backends by injection (fhir_server/backends.py), so a new backend
(PostgreSQL) implements storage/audit.py without touching security/, and the rules change without
touching SQL."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "fhir_server"
#: Database drivers: none of them belongs in security/.
DRIVERS = ("sqlite3", "psycopg", "psycopg2", "psycopg_pool", "asyncpg", "pymongo", "motor")
#: What security/ may use of storage: the backend-neutral protocols and their value types.
STORAGE_PROTOCOLS = ("fhir_server.storage.protocols", "fhir_server.storage.audit")


def imports(path: Path, root: Path = ROOT) -> set[str]:
    """Every module a file imports anywhere (top level, in functions, under TYPE_CHECKING), with
    relative imports resolved and ``from package import module`` counted as the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = list(path.relative_to(root).parent.parts)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[:len(package) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _sources(folder: str) -> list[Path]:
    found = sorted((PACKAGE / folder).rglob("*.py"))
    assert found, folder
    return found


def test_storage_never_imports_security() -> None:
    found = {f"{p.relative_to(ROOT)}: {name}" for p in _sources("storage") for name in imports(p)
             if _within(name, "fhir_server.security")}
    assert found == set()


@pytest.mark.parametrize("driver", DRIVERS)
def test_security_never_imports_a_database_driver(driver: str) -> None:
    found = {f"{p.relative_to(ROOT)}: {name}" for p in _sources("security") for name in imports(p)
             if _within(name, driver)}
    assert found == set()


def test_security_uses_storage_through_its_protocols_only() -> None:
    found = {f"{p.relative_to(ROOT)}: {name}" for p in _sources("security") for name in imports(p)
             if _within(name, "fhir_server.storage")
             and not any(_within(name, allowed) for allowed in STORAGE_PROTOCOLS)}
    assert found == set()


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "fhir_server" / "storage" / "sqlite" / "audit" / "x.py"
    sample.parent.mkdir(parents=True)
    sample.write_text("import sqlite3\nfrom fhir_server.security.audit import chain\nfrom ..outbox import enqueue\n"
                      "from . import journal\ndef f() -> None:\n    import fhir_server.security.read_gate\n",
                      encoding="utf-8")
    found = imports(sample, tmp_path)
    assert {"sqlite3", "fhir_server.security.audit.chain", "fhir_server.storage.sqlite.outbox.enqueue",
            "fhir_server.storage.sqlite.audit.journal", "fhir_server.security.read_gate"} <= found
