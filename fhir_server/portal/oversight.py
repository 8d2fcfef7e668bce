"""The console's oversight pages, for administrators and auditors: the audit chain's verification (AC-14, TM-13)
and the conformance-kit runs (issue 18). Each page is a client of the API, with the signed-in person's token:
``AuditEvent/$audit-verify`` verifies the chain; the kit's runs are ``$kit-run`` jobs (operations/kit_runs.py).

The verification reads the whole trail, so the page does not run it on every view: it shows what it is for and
a button; the button's POST runs it and the answer shows the status (intact or broken, where and why), how many
rows were checked, the head to record as an anchor, and when it ran. A head recorded earlier may be given as an
anchor, which is what catches a rewritten tail."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from fhir_server.portal.api import ApiError
from fhir_server.portal.web import Page, Portal, first


def parameters(answer: Any) -> dict[str, Any]:
    """``{name: value}`` of a flat Parameters answer."""
    out: dict[str, Any] = {}
    for item in (answer.get("parameter") or []) if isinstance(answer, dict) else []:
        value = next((v for k, v in item.items() if k.startswith("value")), None)
        out[str(item.get("name"))] = value
    return out


async def audit(portal: Portal, page: Page) -> Response:
    """GET /portal/console/audit: what the check is, and the button to run it."""
    return portal.render(page, "audit.html", result=None, anchor="", error="")


async def audit_verify(portal: Portal, page: Page) -> Response:
    """POST /portal/console/audit: ``POST AuditEvent/$audit-verify`` with the person's token (and the anchor they
    gave), the answer shown in the page's language; a refusal is shown with the API's own text and status."""
    fields = await portal.form(page)
    anchor = first(fields, "anchor")[:200]
    params: list[dict[str, Any]] = [{"name": "anchor", "valueString": anchor}] if anchor else []
    try:
        answer = await portal.call(page, "POST", "/AuditEvent/$audit-verify",
                                   body={"resourceType": "Parameters", "parameter": params})
    except ApiError as refused:
        return portal.render(page, "audit.html", status=refused.status if refused.status < 500 else 502,
                             result=None, anchor=anchor, error=refused.text or str(refused.status))
    result = parameters(answer)
    result["ranAt"] = str(result.get("ranAt", ""))[:19].replace("T", " ")
    return portal.render(page, "audit.html", result=result, anchor=anchor, error="")
