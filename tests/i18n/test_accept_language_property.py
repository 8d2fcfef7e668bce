"""Whatever a client puts in Accept-Language, an error answer is an OperationOutcome in one of the three
languages with a matching Content-Language — never a 500 (issue 13 §6; RFC 9110 §12.5.4)."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_server.i18n import LANGUAGES

#: header values as they travel: visible ASCII and spaces (httpx refuses what HTTP cannot carry)
_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=200)
_RANGES = st.lists(st.tuples(st.sampled_from(["kk", "ru", "en", "kk-KZ", "ru-RU", "*", "de", "kz", "x-y", ""]),
                             st.one_of(st.none(), st.sampled_from(["0", "0.5", "1", "1.000", "abc", "2", ""]))),
                   max_size=5).map(lambda rs: ", ".join(t if q is None else f"{t};q={q}" for t, q in rs))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.one_of(_HEADER_TEXT, _RANGES))
async def test_any_accept_language_gives_a_localised_outcome(client: httpx.AsyncClient, header: str) -> None:
    r = await client.get("/Patient/nope", headers={"Accept-Language": header})  # no token: 401
    assert r.status_code == 401
    assert r.headers["content-language"] in LANGUAGES
    issue = r.json()["issue"][0]
    assert issue["code"] == "login" and issue["details"]["text"] == issue["diagnostics"]
