"""KZ-20 and KZ-21 (a Patient with a wrong IIN check digit, a Patient without IIN) on a *secured*
server, over real HTTP. A secured server refuses the writer a new Patient without the writer's consent
(403), whatever its content: the kit then posts the invalid Patient as it registers a valid one, with
its consent in one transaction, so the content is what is judged. Without that a secured server
storing invalid IINs would only ever get "skipped" (TM-04, MD-B not tested), never "fail"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.responses import JSONResponse

from conformance import Report, Status, run
from fhir_server.api.app import create_app
from fhir_server.config import Settings
from tests.conformance.conftest import minter, system_token
from tests.conformance.live import served
from tests.conformance.servers import ASGIApp, Receive, Scope, Send

CHECKS = ["KZ-03", "KZ-20", "KZ-21"]


def _secured(tmp_path: Path, *, strict: bool) -> Settings:
    return Settings(database=tmp_path / "db.sqlite", dev_key_path=tmp_path / "k.json", security_enabled=True,
                    require_kz_profiles=strict, validate_on_write=strict, synchronous_full=False)


def consent_before_content(app: ASGIApp) -> ASGIApp:
    """A server that judges access before content: a plain ``POST Patient`` is refused (403) without
    looking at the body, as a server may that records the consent check first."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/Patient":
            outcome = {"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "forbidden", "diagnostics": "no consent of the new patient"}]}
            await JSONResponse(outcome, status_code=403, media_type="application/fhir+json")(scope, receive, send)
            return
        await app(scope, receive, send)

    return wrapped


async def _run(tmp_path: Path, app: Any) -> dict[str, tuple[Status, str]]:
    async with served(app) as base:
        report: Report = await run(base, token=system_token(tmp_path), minter=minter(tmp_path), record_wait=1.0,
                                   checks=CHECKS)
    assert [r.id for r in report.results if r.status is Status.ERROR] == [] and report.kit_error is None
    return {r.id: (r.status, r.message) for r in report.results}


@pytest.mark.req("TM-04")
@pytest.mark.req("MD-B")
@pytest.mark.parametrize("consent_first", [False, True], ids=["content-judged-first", "consent-judged-first"])
async def test_the_secured_national_strict_server_refuses_both_for_their_content(
    tmp_path: Path, consent_first: bool,
) -> None:
    app: Any = create_app(_secured(tmp_path, strict=True))
    found = await _run(tmp_path, consent_before_content(app) if consent_first else app)
    assert found["KZ-03"][0] is Status.PASS  # valid patients get in (with their consent)
    assert found["KZ-20"][0] is Status.PASS and "kz-iin-2" in found["KZ-20"][1]
    assert found["KZ-21"][0] is Status.PASS and "Slice 'iin'" in found["KZ-21"][1]
    assert all(message.startswith("refused 422") for _, message in (found["KZ-20"], found["KZ-21"]))
    assert found["CLN-01"][0] is Status.PASS


@pytest.mark.req("TM-04")
@pytest.mark.req("MD-B")
async def test_a_secured_server_storing_invalid_patients_fails_both(tmp_path: Path) -> None:
    found = await _run(tmp_path, create_app(_secured(tmp_path, strict=False)))
    for check_id, rule in (("KZ-20", "kz-iin-2"), ("KZ-21", "identifier:iin slice min 1")):
        status, message = found[check_id]
        assert status is Status.FAIL and message.startswith("accepted (200)") and rule in message, message
    assert found["CLN-01"][0] is Status.PASS  # the accepted invalid patients (and their consents) deleted
