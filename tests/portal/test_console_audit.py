"""The console's audit-chain page (AC-14, TM-13): an administrator or an auditor runs the verification from the
page, through ``AuditEvent/$audit-verify`` with their own token, and sees the chain intact; after a row is changed
behind the server's back the page shows it broken at that row. A practitioner may not open the page, and the API
refuses the operation to them too. Without JavaScript: plain forms, followed by hand."""

from __future__ import annotations

import re
import sqlite3

import httpx
import pytest

from fhir_server.config import Settings
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.registration import new_user
from fhir_server.identity.registry import Registry
from tests.portal.conftest import MIS_BIN, PASSWORD, csrf, sign_in


def tamper(settings: Settings) -> int:
    """Change one stored AuditEvent, as someone with write access to the database file: its seq."""
    conn = sqlite3.connect(str(settings.database))
    try:
        conn.execute("DROP TRIGGER audit_chain_no_update")
        seq, data = conn.execute("SELECT seq, data FROM audit_chain WHERE event_id NOT LIKE 'r%' AND "
                                 "event_id NOT LIKE 't%' ORDER BY seq LIMIT 1 OFFSET 1").fetchone()
        conn.execute("UPDATE audit_chain SET data = ? WHERE seq = ?",
                     (bytes(data).replace(b'"recorded":"', b'"recorded":"1', 1), seq))
        conn.commit()
    finally:
        conn.close()
    return int(seq)


async def run_check(web: httpx.AsyncClient, anchor: str = "") -> httpx.Response:
    page = await web.get("/portal/console/audit")
    assert page.status_code == 200, page.text
    return await web.post("/portal/console/audit", data={"csrf_token": csrf(page), "anchor": anchor})


@pytest.mark.req("AC-14")
@pytest.mark.req("TM-13")
async def test_the_console_verifies_the_audit_chain_and_shows_a_broken_one(web: httpx.AsyncClient,
                                                                          settings: Settings) -> None:
    Registry(IdentityConfig.from_settings(settings).database).add_user(
        new_user("auditor1", PASSWORD, "auditor", "Practitioner/aud1", MIS_BIN))
    await sign_in(web, "dr.serik")
    assert (await web.get("/portal/console/audit")).status_code == 403  # not a practitioner's page
    web.cookies.clear()

    await sign_in(web, "admin1")
    console = await web.get("/portal/console")
    assert 'href="/portal/console/audit"' in console.text
    assert "The audit chain has not been checked yet." in (await web.get("/portal/console/audit")).text
    intact = await run_check(web)
    assert intact.status_code == 200, intact.text
    assert "The audit chain is intact." in intact.text
    checked = int(re.search(r'id="audit-checked">(\d+)<', intact.text).group(1))  # type: ignore[union-attr]
    assert checked > 3
    head = re.search(r'id="audit-head">(\d+:[0-9a-f]{64})<', intact.text).group(1)  # type: ignore[union-attr]
    assert "Checked at" in intact.text
    opened = await web.get("/portal/console/audit")  # the status the last check left, without checking again
    assert "The last check" in opened.text and "The audit chain is intact." in opened.text
    assert "Practitioner/adm1" in opened.text and head in opened.text
    # an anchor that is not one: the API's 400, in the page
    bad = await run_check(web, "12:not-a-hash")
    assert bad.status_code == 400 and "anchor must be SEQ:HASH" in bad.text

    seq = tamper(settings)
    broken = await run_check(web, head)
    assert broken.status_code == 200
    assert f"The audit chain is broken at record {seq}." in broken.text
    assert f'id="audit-broken">{seq}<' in broken.text and "the event was changed" in broken.text
    web.cookies.clear()

    await sign_in(web, "auditor1")  # an auditor too, in Russian
    web.cookies.set("kzfhir_lang", "ru")
    opened = await web.get("/portal/console/audit")
    assert "Последняя проверка" in opened.text and f"Цепочка аудита нарушена на записи {seq}." in opened.text
    again = await run_check(web)
    assert f"Цепочка аудита нарушена на записи {seq}." in again.text
