"""The organisation's console for staff: the data-subject request queue with due dates and the overdue ones
highlighted, answering a request (admins, AC-15/AC-16/AC-17/AC-27); for practitioners the critical-value
alerts (TM-26), the consilium requests they take part in (TM-08), and a view of a patient's records — exactly
what that patient's Consents let the practitioner see (AC-01), through the same API."""

from __future__ import annotations

import asyncio
import datetime as dt

from starlette.responses import Response

from fhir_server.portal.api import ApiError, entries
from fhir_server.portal.cabinet import DSR_SYSTEM, describe_task
from fhir_server.portal.charts import concept_label
from fhir_server.portal.web import PREFIX, Page, Portal, fhir_id, first

VIEW_TYPES = ("Observation", "Condition", "Encounter")


ALERT_CODE = "follow-up of a critical value (TM-26)"  # the Task monitoring writes (jobs/monitoring.py)
#: a consilium request (TM-08): a ServiceRequest of this category naming two or more performers (kz-sr-2)
CONSILIUM = "https://fhir.kzfhir.kz/CodeSystem/kz-remote-service-form|consilium"
OPEN_REQUESTS = "draft,active,on-hold"


def _display(reference: object) -> str:
    ref = reference if isinstance(reference, dict) else {}
    return str(ref.get("display") or ref.get("reference") or "")


async def consilia(portal: Portal, page: Page) -> list[dict[str, object]]:
    """The open consilium requests naming this practitioner as a performer or requester (what the patients'
    Consents let them read: hidden means absent), each with the participants' opinions so far (TM-08:
    Communications ``basedOn`` the request, telemed/consilium.py), oldest first."""
    me = page.me.fhir_user
    found = await asyncio.gather(*(portal.call(page, "GET", "/ServiceRequest", params={
        role: me, "category": CONSILIUM, "status": OPEN_REQUESTS, "_count": "100"}) for role in ("performer",
                                                                                              "requester")))
    seen: dict[str, dict[str, object]] = {}
    for request in [r for bundle in found for r in entries(bundle)]:
        seen[str(request.get("id"))] = {
            "id": request.get("id", ""), "patient": _display(request.get("subject")),
            "what": concept_label(request.get("code")), "status": request.get("status", ""),
            "why": "; ".join(concept_label(c) for c in request.get("reasonCode") or []) or
                   "; ".join(_display(r) for r in request.get("reasonReference") or []),
            "requester": _display(request.get("requester")),
            "performers": [_display(p) for p in request.get("performer") or []],
            "when": str(request.get("authoredOn", ""))[:16].replace("T", " "),
            "due": str(request.get("occurrenceDateTime", "") or ((request.get("occurrencePeriod") or {}).get(
                "start", "")))[:16].replace("T", " "),
            "names": _names(request), "opinions": [], "mine": False}
    if seen:
        opinions = entries(await portal.call(page, "GET", "/Communication", params={
            "based-on": ",".join(f"ServiceRequest/{sid}" for sid in seen), "_count": "500"}))
        for opinion in sorted(opinions, key=lambda c: str(c.get("sent", ""))):
            sender = str((opinion.get("sender") or {}).get("reference", ""))
            for based in opinion.get("basedOn") or []:
                row = seen.get(str((based or {}).get("reference", "")).removeprefix("ServiceRequest/"))
                if row is None:
                    continue
                names = row["names"] if isinstance(row["names"], dict) else {}
                row["opinions"].append({  # type: ignore[attr-defined]
                    "who": names.get(sender) or _display(opinion.get("sender")),
                    "when": str(opinion.get("sent", ""))[:16].replace("T", " "),
                    "text": " ".join(str(p.get("contentString", "")) for p in opinion.get("payload") or []
                                     if isinstance(p, dict))})
                row["mine"] = row["mine"] or sender == me
    return sorted(seen.values(), key=lambda r: str(r["when"]), reverse=True)


def _names(request: dict[str, object]) -> dict[str, str]:
    """``Practitioner/x`` -> the display the request gives its participants."""
    refs = [*(request.get("performer") or []), request.get("requester")]  # type: ignore[misc]
    return {str(r.get("reference")): str(r.get("display") or r.get("reference")) for r in refs
            if isinstance(r, dict) and r.get("reference")}


async def opinion(portal: Portal, page: Page) -> Response:
    """POST /portal/console/consilium/{sid}/opinion (TM-08): a participant's opinion, written as the MIS would
    write it: a Communication ``basedOn`` the request, about its patient, from the practitioner to the
    requester. The server decides who may (telemed/consilium.py): a practitioner who takes no part is refused
    with an audited 403, shown here with the API's reason."""
    fields = await portal.form(page)
    sid = fhir_id(page.request.path_params["sid"])
    text = first(fields, "opinion")[:4000]
    if not text:
        return await console(portal, page, error=page.t("portal.console_opinion_empty"), status=400)
    request = await portal.call(page, "GET", f"/ServiceRequest/{sid}")
    communication: dict[str, object] = {
        "resourceType": "Communication", "status": "completed",
        "basedOn": [{"reference": f"ServiceRequest/{sid}"}],
        "category": [{"text": "consilium opinion"}],
        "subject": request.get("subject") or {}, "sender": {"reference": page.me.fhir_user},
        "sent": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "payload": [{"contentString": text}]}
    requester = request.get("requester")
    if isinstance(requester, dict) and requester.get("reference"):
        communication["recipient"] = [{"reference": requester["reference"]}]
    try:
        await portal.call(page, "POST", "/Communication", body=communication)
    except ApiError as refused:
        return await console(portal, page, error=refused.text, status=refused.status)
    return portal.redirect(f"{PREFIX}/console?opinion={sid}#consilium-{sid}")


async def console(portal: Portal, page: Page, *, error: str = "", status: int = 200) -> Response:
    queue: list[dict[str, object]] = []
    alerts: list[dict[str, object]] = []
    consilium: list[dict[str, object]] = []
    if page.me.role == "admin":
        found = entries(await portal.call(page, "GET", "/Task", params={"code": f"{DSR_SYSTEM}|", "_count": "200"}))
        queue = sorted((describe_task(t) for t in found), key=lambda r: (not r["open"], str(r["due_full"])))
    if page.me.role == "practitioner" and page.me.fhir_user:
        found = entries(await portal.call(page, "GET", "/Task", params={
            "owner": page.me.fhir_user, "priority": "stat", "status": "requested,accepted", "_count": "100"}))
        alerts = sorted(({"id": t.get("id", ""), "patient": (t.get("for") or {}).get("reference", ""),
                          "text": t.get("description", ""), "when": str(t.get("authoredOn", ""))[:16].replace("T", " "),
                          "status": t.get("status", "")}
                         for t in found if (t.get("code") or {}).get("text") == ALERT_CODE),
                        key=lambda a: (a["status"] != "requested", str(a["when"])))
        consilium = await consilia(portal, page)
    query = page.request.query_params
    return portal.render(page, "console.html", status=status, queue=queue, alerts=alerts, consilium=consilium,
                         error=error,
                         answered=query.get("answered", ""), acknowledged=query.get("acknowledged", ""),
                         opinion_sent=query.get("opinion", ""))


async def acknowledge(portal: Portal, page: Page) -> Response:
    """TM-26: the practitioner takes the critical value in hand: the follow-up Task becomes ``accepted``
    (R4 Task state machine) with who and when in a note; written with the practitioner's own rights."""
    await portal.form(page)
    tid = fhir_id(page.request.path_params["tid"])
    task = await portal.call(page, "GET", f"/Task/{tid}")
    if task.get("status") != "requested":
        return portal.redirect(f"{PREFIX}/console")
    task["status"] = "accepted"
    task.setdefault("note", []).append({"authorReference": {"reference": page.me.fhir_user},
                                        "text": "acknowledged in the portal"})
    try:
        await portal.call(page, "PUT", f"/Task/{tid}", body=task)
    except ApiError as refused:
        return await console(portal, page, error=refused.text, status=refused.status)
    return portal.redirect(f"{PREFIX}/console?acknowledged={tid}")


async def answer(portal: Portal, page: Page) -> Response:
    fields = await portal.form(page)
    tid = fhir_id(page.request.path_params["tid"])
    outcome = first(fields, "outcome")
    parameters: list[dict[str, object]] = [{"name": "outcome", "valueCode": outcome}]
    if first(fields, "note"):
        parameters.append({"name": "note", "valueString": first(fields, "note")[:4000]})
    if first(fields, "reason"):
        parameters.append({"name": "reason", "valueString": first(fields, "reason")[:4000]})
    try:
        await portal.call(page, "POST", f"/Task/{tid}/$dsr-answer",
                          body={"resourceType": "Parameters", "parameter": parameters})
    except ApiError as refused:
        return await console(portal, page, error=refused.text, status=refused.status)
    return portal.redirect(f"{PREFIX}/console?answered={tid}")


DELIVERY_TOPICS = ("nehp", "payment", "egov-cabinet")
DELIVERY_STATES = ("dead", "pending", "delivered")
STATE_TEXTS = {"dead": "portal.console_delivery_state_dead", "pending": "portal.console_delivery_state_pending",
               "delivered": "portal.console_delivery_state_delivered"}
DELIVERY_PAGE = 50


def _deliveries(answer: object) -> list[dict[str, object]]:
    """The rows of a ``$deliveries`` answer (operations/deliveries.py) for the page."""
    rows: list[dict[str, object]] = []
    for item in (answer.get("parameter") or []) if isinstance(answer, dict) else []:
        if item.get("name") != "delivery":
            continue
        parts = {p.get("name"): p for p in item.get("part") or []}
        value = {name: next((v for k, v in part.items() if k.startswith("value")), "") for name, part in parts.items()}
        patient = value.get("patient")
        rows.append({"id": value.get("id", ""), "key": value.get("key", ""), "attempts": value.get("attempts", 0),
                     "error": value.get("error", ""), "created": str(value.get("created", ""))[:19].replace("T", " "),
                     "delivered": str(value.get("delivered", ""))[:19].replace("T", " "),
                     "status": value.get("status", ""),
                     "patient": patient.get("reference", "") if isinstance(patient, dict) else ""})
    return rows


def _next(answer: object) -> str:
    for item in (answer.get("parameter") or []) if isinstance(answer, dict) else []:
        if item.get("name") == "next":
            return str(item.get("valueString", ""))
    return ""


def _counts(answer: object) -> dict[tuple[str, str], int]:
    """(topic, status) -> messages, from the ``count`` parameters of ``$deliveries?counts=true``."""
    out: dict[tuple[str, str], int] = {}
    for item in (answer.get("parameter") or []) if isinstance(answer, dict) else []:
        if item.get("name") == "count":
            parts = {p.get("name"): next((v for k, v in p.items() if k.startswith("value")), "")
                     for p in item.get("part") or []}
            out[(str(parts.get("topic")), str(parts.get("status")))] = int(parts.get("messages") or 0)
    return out


async def deliveries(portal: Portal, page: Page) -> Response:
    """GET /portal/console/deliveries (admins; TM-11, TM-13, TM-19): how many messages to the NEHP, the payment
    system and the e-government cabinet are given up, pending and delivered (one ``$deliveries?counts=true``),
    and the messages of one state (``?status=``, default the given-up ones) for every receiver or one
    (``?topic=``), newest first; one receiver's list pages on (``?cursor=``, the API's ``next``). Each call with
    the admin's own rights."""
    query = page.request.query_params
    status = query.get("status", "dead")
    status = status if status in DELIVERY_STATES else "dead"
    topic = query.get("topic", "")
    topics = (topic,) if topic in DELIVERY_TOPICS else DELIVERY_TOPICS
    cursor = query.get("cursor", "") if len(topics) == 1 and query.get("cursor", "").isdigit() else ""

    def ask(t: str, *, counts: bool = False) -> dict[str, str]:
        params = {"topic": t, "status": status, "_count": str(DELIVERY_PAGE)}
        if cursor:
            params["_cursor"] = cursor
        if counts:
            params["counts"] = "true"
        return params

    found = await asyncio.gather(*(portal.call(page, "GET", "/$deliveries", params=ask(t, counts=i == 0))
                                   for i, t in enumerate(topics)))
    counts = _counts(found[0])
    sections = [(t, _deliveries(answer), _next(answer) if len(topics) == 1 else "")
                for t, answer in zip(topics, found, strict=True)]
    table = [(t, [(st, counts.get((t, st), 0)) for st in DELIVERY_STATES]) for t in DELIVERY_TOPICS]
    return portal.render(page, "deliveries.html", sections=sections, error="", status_shown=status,
                         topic_shown=topic if len(topics) == 1 else "", cursor=cursor, table=table,
                         states=DELIVERY_STATES, topics=DELIVERY_TOPICS, state_text=STATE_TEXTS)


async def patient_view(portal: Portal, page: Page) -> Response:
    """GET /portal/console/patient?id=p1: the patient's records this practitioner may see (none without consent:
    hidden means absent, docs/security.md §3)."""
    pid = page.request.query_params.get("id", "").strip()
    data: dict[str, list[dict[str, object]]] = {}
    if pid:
        pid = fhir_id(pid)
        found = await asyncio.gather(*(portal.call(page, "GET", f"/{kind}", params={"patient": f"Patient/{pid}",
                                                                                    "_count": "100"})
                                       for kind in VIEW_TYPES))
        data = {kind: entries(bundle) for kind, bundle in zip(VIEW_TYPES, found, strict=True)}
    return portal.render(page, "patient_view.html", pid=pid, records=data, label=concept_label)
