"""Every route and operation the app registers, and every Bundle entry method, is covered by a probe of
the no-leak property test (tests/security_http/leak_probes.py): a new route cannot ship untested
(issue 10 "Proof")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.interactions.bundle_entries import METHODS
from fhir_server.operations.registry import registered
from tests.security_http import leak_probes


def _routes(router: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for route in router.routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:  # an included router
            out += _routes(inner)
        elif getattr(route, "path", None) is not None:
            methods = sorted(getattr(route, "methods", None) or ())
            out += [(method, route.path) for method in methods if method != "HEAD"]
    return out


def test_every_route_is_probed_or_holds_no_patient_data(tmp_path: Path) -> None:
    app = create_app(Settings(database=tmp_path / "db.sqlite", dev_key_path=tmp_path / "k.json"))
    found = {f"{method} {path}" for method, path in _routes(app.router)}
    covered = set(leak_probes.ROUTES) | set(leak_probes.PUBLIC)
    assert sorted(found - covered) == []  # a route without a probe: add one to leak_probes.py
    assert sorted(set(leak_probes.ROUTES) - found) == []  # a probe for a route that is gone
    probes = {name for name in dir(leak_probes) if not name.startswith("_")}
    assert set(leak_probes.ROUTES.values()) <= probes


def test_every_operation_is_probed_or_says_why_not() -> None:
    operations = set(registered())
    assert sorted(operations - set(leak_probes.OPERATIONS)) == []
    assert sorted(set(leak_probes.OPERATIONS) - operations) == []
    probes = {name for name in dir(leak_probes) if not name.startswith("_")}
    unprobed = {k: v for k, v in leak_probes.OPERATIONS.items() if v not in probes}
    assert all(len(reason.split()) >= 4 for reason in unprobed.values())  # a reason, not a name


def test_every_bundle_entry_method_is_probed_in_batches_and_transactions() -> None:
    assert set(leak_probes.ENTRY_METHODS) == set(METHODS)
