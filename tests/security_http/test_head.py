"""HEAD on read and search (issue 14 §6; R4 http.html, RFC 9110 §9.3.2): GET's status and headers without
the body, through the same access decision and audit as GET — a HEAD is no way around the policy."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.req("AC-14")


def _by_request(events: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [e for e in events if any(ent.get("what", {}).get("identifier", {}).get("value") == request_id
                                     for ent in e.get("entity", []))]


async def test_head_is_get_without_the_body(server, token):
    dr1 = token("practitioner", "Practitioner/dr1")
    get = await server.get("/Observation/o1", headers=dr1)
    head = await server.head("/Observation/o1", headers=dr1)
    assert get.status_code == head.status_code == 200
    assert head.content == b"" and head.headers["etag"] == get.headers["etag"]
    assert head.headers["last-modified"] == get.headers["last-modified"]
    search = await server.head("/Observation?subject=Patient/p1", headers=dr1)
    assert search.status_code == 200 and search.content == b""
    assert (await server.head("/metadata")).status_code == 200


async def test_head_of_hidden_data_answers_like_an_unknown_id_and_is_audited(server, token):
    dr2 = token("practitioner", "Practitioner/dr2")  # no consent of anyone
    hidden = await server.head("/Observation/o1", headers={**dr2, "X-Request-Id": "head-probe"})
    unknown = await server.head("/Observation/nothing", headers=dr2)
    assert hidden.status_code == unknown.status_code == 404 and hidden.content == b""
    assert (await server.head("/Observation/o1")).status_code == 401  # no token
    auditor = token("auditor", "Practitioner/dr2")
    log = (await server.get("/AuditEvent?patient=Patient/p1&_count=500", headers=auditor)).json()
    assert _by_request([e["resource"] for e in log.get("entry", [])], "head-probe")
