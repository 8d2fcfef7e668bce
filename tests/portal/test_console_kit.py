"""The console's conformance-kit page (issue 18 from issue 17's console): an administrator starts a run against
this server with a writer token, the page lists it, and its page shows the kit's own verdict, per requirement and
per check — what ``$conformance-runs`` recorded from the real run, shown in the page's language. The token is not
in any page. A practitioner may not open it. Plain forms, no JavaScript (the running page has a link to look
again, no automatic reload)."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from conformance.registry import GROUPS
from fhir_server.config import Settings
from fhir_server.portal.oversight import KIT_GROUPS
from fhir_server.security.auth import issue_dev_token
from tests.portal.conftest import MIS_BIN, csrf, sign_in


def test_the_page_offers_the_kits_groups() -> None:
    assert KIT_GROUPS == GROUPS


@pytest.mark.req("TM-14")
async def test_an_admin_starts_a_kit_run_and_reads_its_verdicts(web: httpx.AsyncClient, settings: Settings) -> None:
    await sign_in(web, "dr.serik")
    assert (await web.get("/portal/console/kit")).status_code == 403
    web.cookies.clear()
    await sign_in(web, "admin1")
    page = await web.get("/portal/console/kit")
    assert page.status_code == 200 and 'href="/portal/console/kit"' in page.text
    writer = issue_dev_token("system", None, bin=MIS_BIN, key_path=settings.dev_key_path)
    started = await web.post("/portal/console/kit", data={
        "csrf_token": csrf(page), "writer": writer, "only": ["capability", "security"],
        "operator": "A. Inspector, Ministry of Health"})
    assert started.status_code == 303 and started.headers["location"] == "/portal/console/kit?started=1"
    listed = await web.get("/portal/console/kit?started=1")
    assert "The run has started." in listed.text and writer not in listed.text
    rid = re.search(r'<tr id="run-([0-9a-f]+)"', listed.text).group(1)  # type: ignore[union-attr]
    for _ in range(600):
        run = await web.get(f"/portal/console/kit/{rid}")
        if "The run is still going on." not in run.text:
            break
        assert 'href="/portal/console/kit/' in run.text  # look again: a link, no reload
        await asyncio.sleep(0.1)
    assert run.status_code == 200, run.text

    admin = {"Authorization": f"Bearer {issue_dev_token('admin', 'Practitioner/adm1', key_path=settings.dev_key_path)}"}
    api = (await web.get("/$conformance-runs", params={"run": rid}, headers=admin)).json()
    recorded = {next(x["valueString"] for x in p["part"] if x["name"] == "id"):
                next(x["valueCode"] for x in p["part"] if x["name"] == "status")
                for p in api["parameter"] if p["name"] == "check"}
    assert "CAP-01" in recorded and "SEC-02" in recorded
    shown = dict(re.findall(r'<tr id="check-([A-Z0-9-]+)"[^>]*><th scope="row">[^<]+</th><td>([a-z ]+)</td>',
                            run.text))
    assert shown == recorded  # every check as the kit judged it
    verdict = next(p["valueString"] for p in api["parameter"] if p["name"] == "verdict")
    assert verdict in run.text and "A. Inspector, Ministry of Health" in run.text
    assert 'id="req-' in run.text and writer not in run.text
    web.cookies.set("kzfhir_lang", "kk")
    assert "Талаптар бойынша шешім" in (await web.get(f"/portal/console/kit/{rid}")).text
    assert "Осы серверді тексерулер" in (await web.get("/portal/console/kit")).text
    refused = await web.post("/portal/console/kit", data={"csrf_token": csrf(page), "writer": ""})
    assert refused.status_code == 400  # the API's refusal, on the page
