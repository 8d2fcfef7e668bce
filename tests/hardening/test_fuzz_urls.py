"""Hostile URLs — ids, versions, parameters, modifiers, prefixes, long and many values — against
read, vread, history and search, open and secure: never a 5xx (issue 12 proof)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.hardening.fuzzing import FUZZ, IDS, PARAMS, RAW, TYPES, VERSIONS, Server, check, query, server
from tests.hardening.fuzzing import _segment as segment

__all__ = ["server"]

RTYPES = TYPES | st.sampled_from(["Encounter", "Condition", "Practitioner", "Organization"])


@FUZZ
@given(rtype=RTYPES, rid=IDS, version=VERSIONS)
def test_hostile_ids_and_versions(server: Server, rtype: str, rid: str, version: str) -> None:
    check(server.request("GET", f"/{rtype}/{segment(rid)}"))
    check(server.request("GET", f"/{rtype}/{segment(rid)}/_history/{segment(version)}"))
    check(server.request("GET", f"/{rtype}/{segment(rid)}/_history"))


@FUZZ
@given(rtype=RTYPES, params=PARAMS, raw=RAW)
def test_hostile_search_parameters(server: Server, rtype: str, params: list[tuple[str, str]], raw: list[str]
                                   ) -> None:
    q = query(params, raw)
    check(server.request("GET", f"/{rtype}?{q}"))
    check(server.request("GET", f"/?{q}"))
    check(server.request("POST", f"/{rtype}/_search", content=q.encode(),
                         headers={"content-type": "application/x-www-form-urlencoded"}))


@FUZZ
@given(rtype=RTYPES, rid=IDS, params=PARAMS, raw=RAW)
def test_hostile_history_and_compartment_parameters(server: Server, rtype: str, rid: str,
                                                    params: list[tuple[str, str]], raw: list[str]) -> None:
    q = query(params, raw)
    check(server.request("GET", f"/{rtype}/_history?{q}"))
    check(server.request("GET", f"/_history?{q}"))
    check(server.request("GET", f"/Patient/{segment(rid)}/{rtype}?{q}"))
    check(server.request("GET", f"/{rtype}/{segment(rid)}/_history?{q}"))


def test_the_issue_12_urls_are_4xx(server: Server) -> None:
    for path in ("/Patient/p1/_history/%C2%B3", "/Patient/p1/_history/99999999999999999999",
                 "/Patient?name=" + ",".join(f"n{i}" for i in range(1000)),
                 "/Patient?name:contains=" + "a" * 50_000, "/Patient?_sort=" + ",".join(["name"] * 2000)):
        r = server.request("GET", path)
        check(r)
        assert 400 <= r.status_code < 500, path
