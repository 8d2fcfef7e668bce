"""The fallback audit target of a request no interaction recorded itself (security/audit/targets.py): an
operation is named as the gate names it, with its inputs after it."""

from __future__ import annotations

import pytest

from fhir_server.security.audit.targets import request_target

pytestmark = pytest.mark.req("AC-14")


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/$deliveries", "topic=mail", ("operation", None, None, "$deliveries?topic=mail")),
    ("POST", "/Patient/p1/$everything", "", ("operation", "Patient", "p1", "$everything")),
    ("GET", "/Patient/$access-log", "patient=p1", ("operation", "Patient", None, "$access-log?patient=p1")),
    ("GET", "/Observation", "subject=Patient/p1", ("search-type", "Observation", None, "subject=Patient/p1")),
    ("GET", "/Patient/p1/_history/2", "", ("vread", "Patient", "p1", None)),
])
def test_the_fallback_target_names_what_was_asked(method: str, path: str, query: str,
                                                  expected: tuple[str, str | None, str | None, str | None]) -> None:
    target = request_target(method, path, query)
    assert (target.interaction, target.resource_type, target.resource_id, target.query) == expected
