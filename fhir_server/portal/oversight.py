"""The console's oversight pages: the audit chain's verification (AC-14, TM-13; administrators and auditors) and
the conformance-kit runs (issue 18; administrators). Each page is a client of the API, with the signed-in person's
token: ``AuditEvent/$audit-verify`` verifies the chain; the kit's runs are ``$conformance-run`` jobs, listed by
``$conformance-runs`` (operations/conformance_runs.py).

The verification reads the whole trail, so the page does not run it on every view: it opens on the status the
last check left (kept by the server, with who ran it and when), what the check is for and a button; the
button's POST runs it and the answer shows the status (intact or broken, where and why), how many rows were
checked, the head to record as an anchor, and when it ran. A head recorded earlier may be given as an
anchor, which is what catches a rewritten tail."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from fhir_server.portal.api import ApiError
from fhir_server.portal.web import PREFIX, NotFound, Page, Portal, first


def parameters(answer: Any) -> dict[str, Any]:
    """``{name: value}`` of a flat Parameters answer."""
    out: dict[str, Any] = {}
    for item in (answer.get("parameter") or []) if isinstance(answer, dict) else []:
        value = next((v for k, v in item.items() if k.startswith("value")), None)
        out[str(item.get("name"))] = value
    return out


def _result(answer: Any) -> dict[str, Any] | None:
    result = parameters(answer)
    if "verified" not in result:
        return None
    result["ranAt"] = str(result.get("ranAt", ""))[:19].replace("T", " ")
    return result


async def audit(portal: Portal, page: Page) -> Response:
    """GET /portal/console/audit: the status as the last check left it (``$audit-verify?last=true``: kept by the
    server, not run again), what the check is, and the button to run it."""
    last = _result(await portal.call(page, "GET", "/AuditEvent/$audit-verify", params={"last": "true"}))
    return portal.render(page, "audit.html", result=last, last=True, anchor="", error="")


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
                             result=None, last=False, anchor=anchor, error=refused.text or str(refused.status))
    return portal.render(page, "audit.html", result=_result(answer), last=False, anchor=anchor, error="")


# -- conformance-kit runs (admins) --------------------------------------------------------------------------
KIT_GROUPS = ("capability", "security", "access", "rest", "kz-profiles", "vendor-data", "search", "transaction",
              "terminology")  # conformance.registry.GROUPS, in its order (tests check they agree)
KIT_TEXTS = {"running": "portal.console_kit_status_running", "done": "portal.console_kit_status_done",
             "failed": "portal.console_kit_status_failed", "ok": "portal.console_kit_exit_ok",
             "bad": "portal.console_kit_exit_bad"}


def _value(part: dict[str, Any]) -> Any:
    return next((v for k, v in part.items() if k.startswith("value")), None)


def _run_row(item: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"only": [], "checks": {}}
    for part in item.get("part") or []:
        name = str(part.get("name"))
        if name == "only":
            row["only"].append(_value(part))
        elif name == "checks":
            counted = {p.get("name"): _value(p) for p in part.get("part") or []}
            row["checks"][str(counted.get("status"))] = counted.get("count")
        else:
            row[name] = _value(part)
    for when in ("started", "finished"):
        row[when] = str(row.get(when) or "")[:19].replace("T", " ")
    return row


async def kit(portal: Portal, page: Page, *, error: str = "", status: int = 200) -> Response:
    """GET /portal/console/kit: the kit's runs against this server, newest first, with their verdicts
    (``GET $conformance-runs``), and the form that starts one."""
    answer = await portal.call(page, "GET", "/$conformance-runs")
    runs = [_run_row(item) for item in (answer or {}).get("parameter") or [] if item.get("name") == "run"]
    return portal.render(page, "kit.html", status=status, runs=runs, groups=KIT_GROUPS, error=error, kit_text=KIT_TEXTS,
                         started=page.request.query_params.get("started", ""))


async def kit_start(portal: Portal, page: Page) -> Response:
    """POST /portal/console/kit: ``POST $conformance-run`` with the writer token the admin pasted (sent on, kept
    nowhere: not in the session, not in the page), the groups ticked and the operator's name."""
    fields = await portal.form(page)
    writer = first(fields, "writer")
    params: list[dict[str, Any]] = [{"name": "writer", "valueString": writer}] if writer else []
    params += [{"name": "only", "valueString": g} for g in fields.get("only") or [] if g in KIT_GROUPS]
    if first(fields, "operator"):
        params.append({"name": "operator", "valueString": first(fields, "operator")[:200]})
    try:
        await portal.call(page, "POST", "/$conformance-run", body={"resourceType": "Parameters", "parameter": params})
    except ApiError as refused:
        return await kit(portal, page, error=refused.text or str(refused.status),
                         status=refused.status if refused.status < 500 else 502)
    return portal.redirect(f"{PREFIX}/console/kit?started=1")


async def kit_run(portal: Portal, page: Page) -> Response:
    """GET /portal/console/kit/{rid}: one run: running (a link to look again: no script, no automatic reload), or
    its verdict, the verdict per requirement and each check's result (``GET $conformance-runs?run=``)."""
    rid = page.request.path_params["rid"]
    if not rid.isalnum() or len(rid) > 64:
        raise NotFound()
    answer = await portal.call(page, "GET", "/$conformance-runs", params={"run": rid})
    if answer is None:  # 202: still running
        return portal.render(page, "kit_run.html", rid=rid, run=None, requirements=[], checks=[], kit_text=KIT_TEXTS)
    items = (answer or {}).get("parameter") or []
    run = _run_row({"part": [i for i in items if i.get("name") not in ("requirement", "check", "report")]})
    requirements = [{p.get("name"): _value(p) for p in i.get("part") or []} for i in items
                    if i.get("name") == "requirement"]
    checks = [{p.get("name"): _value(p) for p in i.get("part") or []} for i in items if i.get("name") == "check"]
    return portal.render(page, "kit_run.html", rid=rid, run=run, requirements=requirements, checks=checks,
                         kit_text=KIT_TEXTS)
