"""The access log page a page at a time (AC-24, TM-18): the API pages with ``_cursor`` and the page follows its
``next`` links; the dates are the API's filter, break-glass and refused lines are found across API pages; a
break-glass line is highlighted wherever it falls."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from tests.portal.conftest import sign_in

ROW = re.compile(r'<tr class="([^"]*)">(.*?)</tr>', re.S)


def rows(page: str) -> list[tuple[str, str]]:
    return ROW.findall(page)


def link(page: str, rel_text: str) -> str | None:
    found = re.search(r'<a href="([^"]+)"(?: rel="next")?>' + re.escape(rel_text) + "</a>", page)
    return html.unescape(found.group(1)) if found else None


@pytest.mark.req("AC-24")
@pytest.mark.req("TM-18")
async def test_the_log_pages_through_the_api_and_finds_break_glass_on_an_older_page(web: httpx.AsyncClient, auth):
    emergency = auth("practitioner", "Practitioner/dr2", bin="940140000385")
    emergency["X-Break-Glass-Reason"] = "unconscious, brought by ambulance"
    assert (await web.get("/Condition/c1", headers=emergency)).status_code == 200  # the oldest line of interest
    patient = auth("patient", "Patient/p1")
    for i in range(70):  # newer lines: the patient reading her own records
        assert (await web.get(f"/Observation/o{i % 4 + 1}", headers=patient)).status_code == 200
    await sign_in(web)

    first = await web.get("/portal/access-log")
    assert first.status_code == 200
    assert len(rows(first.text)) == 50  # one API page
    assert not any("emergency" in cls for cls, _ in rows(first.text))
    older = link(first.text, "Older entries")
    assert older and re.fullmatch(r"/portal/access-log\?cursor=\d+", older), older
    assert link(first.text, "Newest entries") is None

    second = await web.get(older)
    glass = [body for cls, body in rows(second.text) if "emergency" in cls]
    assert len(glass) == 1 and "unconscious, brought by ambulance" in glass[0] and "Practitioner/dr2" in glass[0]
    assert "Emergency accesses on this page: 1." in second.text
    assert link(second.text, "Newest entries") == "/portal/access-log"
    assert "continues from where the previous one stopped" in second.text
    assert len(rows(second.text)) >= 71 - 50  # the rest: the 70 reads and the break-glass one, and the sign-in's

    # "break-glass only" is not an API filter: the page reads on along the next links and finds it
    only = await web.get("/portal/access-log", params={"only": "emergency"})
    found = rows(only.text)
    assert len(found) == 1 and "emergency" in found[0][0]
    assert link(only.text, "Older entries") is None  # the whole log was read
    # the dates are the API's: nothing since tomorrow, and no link to older pages of nothing
    future = await web.get("/portal/access-log", params={"since": "2099-01-01"})
    assert rows(future.text) == [] and link(future.text, "Older entries") is None
    # a forged cursor is only a cursor: digits or nothing
    odd = await web.get("/portal/access-log", params={"cursor": "1; DROP"})
    assert odd.status_code == 200 and len(rows(odd.text)) == 50


@pytest.mark.req("AC-24")
def test_only_a_next_link_to_the_same_operation_is_followed():
    from fhir_server.portal.cabinet import next_query

    op = "/Patient/p1/$access-log"

    def answer(url: str) -> dict[str, object]:
        return {"parameter": [{"name": "next", "valueUri": url}]}

    assert next_query(answer("http://localhost/Patient/p1/$access-log?_view=compact&_cursor=42"), op) == {
        "_view": "compact", "_cursor": "42"}
    assert next_query(answer("http://localhost/Patient/p1/%24access-log?_cursor=7"), op) == {"_cursor": "7"}
    assert next_query(answer("http://localhost/Patient/p2/$access-log?_cursor=7"), op) is None
    assert next_query(answer("http://localhost/Patient/p1/$access-log?_cursor=x"), op) is None
    assert next_query({"parameter": []}, op) is None
