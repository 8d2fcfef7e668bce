"""The patient's cabinet (TM-12): my records, my consents, who accessed my data, my requests, my notifications.

Every handler asks the API as the signed-in person (``portal.call``); what the policy hides is simply not in
the answer, and a refusal is shown with the API's own reason. The patient shown is the session's own
(``Session.patient``: the person's Patient, or the one a representative's token names)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_plus, urlencode, urlsplit

from starlette.responses import Response

from fhir_server.portal import charts, esign
from fhir_server.portal.api import ApiError, entries
from fhir_server.portal.web import PREFIX, Forbidden, Page, Portal, fhir_id, first
from fhir_server.telemed.terms import ACCEPTANCE, CONSENT_CATEGORY, INFORMED, Offer, current_offers

DSR_SYSTEM = "https://fhir.kzfhir.kz/CodeSystem/kz-data-subject-request"
BIN_SYSTEM = "https://fhir.kzfhir.kz/sid/bin"
#: what a consent may be limited to (the portal's choice list; the Consent itself may name any type)
CONSENT_CLASSES = ("Observation", "Condition", "Encounter", "MedicationRequest", "DocumentReference",
                   "DiagnosticReport", "Immunization", "AllergyIntolerance")
RECORD_TYPES = ("Encounter", "Observation", "Condition", "MedicationRequest", "DocumentReference", "Goal")


def _patient(page: Page) -> str:
    patient = page.me.patient
    if not patient:
        raise Forbidden()
    return patient


async def records(portal: Portal, page: Page) -> Response:
    patient = _patient(page)
    found = await asyncio.gather(*(portal.call(page, "GET", f"/{kind}", params={"patient": f"Patient/{patient}",
                                                                                "_count": "200"})
                                   for kind in RECORD_TYPES))
    data = {kind: entries(bundle) for kind, bundle in zip(RECORD_TYPES, found, strict=True)}
    series = charts.series_of(data["Observation"], data["Goal"])
    plots = [{"series": s, "svg": charts.svg(s, page.t("portal.chart_title", name=s.label), f"chart-{i}")}
             for i, s in enumerate(series)]
    return portal.render(page, "records.html", records=data, plots=plots, label=charts.concept_label)


# -- consents (AC-01 give/revoke, AC-10 grant a relative) -------------------------------------------------------
def consent_resource(patient: str, actor: dict[str, Any], classes: list[str], until: str, *,
                     write: bool = False) -> dict[str, Any]:
    """An active Consent of the patient: ``access`` (read) for the actor, and with ``write`` also ``collect``
    and ``correct`` (create and change records, e.g. acknowledge a monitoring alert; security/policy/decision.py
    maps the R4 consentaction codes to interactions)."""
    actions = ("access", "collect", "correct") if write else ("access",)
    provision: dict[str, Any] = {
        "type": "permit",
        "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                         "code": "PRCP"}]}, "reference": actor}],
        "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": a}]}
                   for a in actions],
    }
    if classes:
        provision["class"] = [{"system": "http://hl7.org/fhir/resource-types", "code": c} for c in classes]
    consent: dict[str, Any] = {
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "dateTime": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {"provision": [provision]},
    }
    if until:
        consent["provision"]["period"] = {"end": until}
    return consent


def _grantee(kind: str, value: str) -> dict[str, Any] | None:
    value = value.strip()
    if kind == "organisation" and len(value) == 12 and value.isdigit():
        return {"identifier": {"system": BIN_SYSTEM, "value": value}, "display": f"BIN {value}"}
    type_ = {"practitioner": "Practitioner", "relative": "RelatedPerson"}.get(kind)
    if type_ and value and all(c.isalnum() or c in "-." for c in value) and len(value) <= 64:
        return {"reference": f"{type_}/{value}"}
    return None


def consent_kind(consent: dict[str, Any]) -> str:
    """``offer`` (acceptance of a public offer, TM-03), ``informed`` (TM-07) or ``privacy`` (access, AC-01)."""
    codes = {(c.get("system"), c.get("code")) for cat in consent.get("category") or [] for c in cat.get("coding") or []}
    if (CONSENT_CATEGORY, ACCEPTANCE) in codes:
        return "offer"
    if (CONSENT_CATEGORY, INFORMED) in codes:
        return "informed"
    return "privacy"


def describe_consent(consent: dict[str, Any]) -> dict[str, Any]:
    provisions = (consent.get("provision") or {}).get("provision") or []
    who, classes, actions = [], [], set()
    for provision in provisions:
        actions |= {c.get("code", "") for a in provision.get("action") or [] for c in a.get("coding") or []}
        for actor in provision.get("actor") or []:
            ref = actor.get("reference") or {}
            ident = ref.get("identifier") or {}
            who.append(ref.get("reference") or (f"BIN {ident.get('value')}" if ident.get("value") else "?"))
        classes += [c.get("code", "") for c in provision.get("class") or []]
    source = consent.get("sourceAttachment") or {}
    return {"id": consent.get("id", ""), "status": consent.get("status", ""), "who": who, "classes": classes,
            "write": bool(actions & {"collect", "correct"}), "kind": consent_kind(consent),
            "policy": [str(p.get("uri", "")) for p in consent.get("policy") or [] if p.get("uri")],
            "signed": str(source.get("contentType", "")).startswith("application/pkcs7"),
            "date": str(consent.get("dateTime", ""))[:10],
            "until": str(((consent.get("provision") or {}).get("period") or {}).get("end", ""))}


def _offer_row(contract: dict[str, Any], offer: Offer) -> dict[str, Any]:
    terms = [str(t.get("text")) for t in contract.get("term") or [] if t.get("text")]
    return {"id": contract.get("id", ""), "title": contract.get("title", ""), "version": offer.version,
            "issued": offer.issued[:10], "canonical": offer.canonical, "terms": terms,
            "subtitle": contract.get("subtitle", "")}


async def _offers(portal: Portal, page: Page) -> list[dict[str, Any]]:
    """The current version of each public offer of remote services (TM-03: directory data, any caller reads)."""
    found = entries(await portal.call(page, "GET", "/Contract", params={"status": "executable", "_count": "100"}))
    by_ref = {f"Contract/{c.get('id')}": c for c in found}
    return [_offer_row(by_ref[o.reference], o) for o in current_offers(found).values() if o.reference in by_ref]


async def consents(portal: Portal, page: Page, *, error: str = "", status: int = 200) -> Response:
    patient = _patient(page)
    found, offers = await asyncio.gather(
        portal.call(page, "GET", "/Consent", params={"patient": f"Patient/{patient}", "_count": "100"}),
        _offers(portal, page))
    rows = sorted((describe_consent(c) for c in entries(found)), key=lambda c: (c["status"] != "active", c["date"]))
    active = [c for c in rows if c["status"] == "active"]
    for offer in offers:
        offer["accepted"] = next((c["date"] for c in active if c["kind"] == "offer" and offer["canonical"] in
                                  c["policy"]), "")
    informed_given = next((c["date"] for c in active if c["kind"] == "informed"), "")
    query = page.request.query_params
    return portal.render(page, "consents.html", status=status, consents=rows, classes=CONSENT_CLASSES, error=error,
                         offers=offers, informed_given=informed_given, signed=query.get("signed", ""),
                         given=query.get("given", ""), revoked=query.get("revoked", ""))


def _wants_eds(fields: dict[str, list[str]]) -> bool:
    return first(fields, "eds") == "yes"


async def give_consent(portal: Portal, page: Page) -> Response:
    fields = await portal.form(page)
    patient = _patient(page)
    actor = _grantee(first(fields, "grantee_kind"), first(fields, "grantee"))
    if actor is None:
        return await consents(portal, page, error=page.t("portal.consent_bad_grantee"), status=400)
    classes = [c for c in fields.get("classes", []) if c in CONSENT_CLASSES]
    until = first(fields, "until")
    if until:
        try:
            dt.date.fromisoformat(until)
        except ValueError:
            return await consents(portal, page, error=page.t("portal.bad_date"), status=400)
    write = first(fields, "write") == "yes"
    consent = consent_resource(patient, actor, classes, until, write=write)
    if _wants_eds(fields):
        t = page.t
        who = actor.get("reference") or actor.get("display", "")
        form = esign.form_text(page, t("portal.sign_give_heading"), [
            (t("portal.sign_patient"), f"Patient/{patient}"), (t("portal.grantee"), str(who)),
            (t("portal.what"), ", ".join(classes) or t("portal.all_records")),
            (t("portal.sign_actions"), t("portal.consent_write") if write else t("portal.sign_read_only")),
            (t("portal.until"), until or "—"), (t("portal.sign_terms"), t("portal.consent_terms"))])
        return esign.prepare(portal, page, "give", form, consent=consent)
    try:
        await portal.call(page, "POST", "/Consent", body=consent)
    except ApiError as refused:
        return await consents(portal, page, error=refused.text, status=refused.status)
    return portal.redirect(f"{PREFIX}/consents?given=1")


def _treatment_consent(patient: str, category: str, **more: Any) -> dict[str, Any]:
    """The patient's own acceptance of an offer or informed consent (telemed/terms.py reads them)."""
    return {"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "treatment"}]},
            "category": [{"coding": [{"system": CONSENT_CATEGORY, "code": category}]}],
            "patient": {"reference": f"Patient/{patient}"}, "performer": [{"reference": f"Patient/{patient}"}],
            "dateTime": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **more}


async def accept_offer(portal: Portal, page: Page) -> Response:
    """TM-03: the acceptance names the offer version accepted; only a current offer can be accepted."""
    fields = await portal.form(page)
    patient = _patient(page)
    offer = next((o for o in await _offers(portal, page) if o["canonical"] == first(fields, "offer")), None)
    if offer is None:
        return await consents(portal, page, error=page.t("portal.offer_gone"), status=409)
    consent = _treatment_consent(patient, ACCEPTANCE, policy=[{"uri": offer["canonical"]}])
    if _wants_eds(fields):
        t = page.t
        form = esign.form_text(page, t("portal.sign_offer_heading"), [
            (t("portal.sign_patient"), f"Patient/{patient}"), (t("portal.offer"), str(offer["title"])),
            (t("portal.offer_version"), f"{offer['canonical']} ({offer['issued']})"),
            *((t("portal.offer_term"), term) for term in offer["terms"])])
        return esign.prepare(portal, page, "give", form, consent=consent)
    return await _post(portal, page, consent)


async def give_informed(portal: Portal, page: Page) -> Response:
    """TM-07: informed consent to remote services, with the text the page shows."""
    fields = await portal.form(page)
    patient = _patient(page)
    consent = _treatment_consent(patient, INFORMED, policyRule={"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]})
    if _wants_eds(fields):
        t = page.t
        form = esign.form_text(page, t("portal.sign_informed_heading"), [
            (t("portal.sign_patient"), f"Patient/{patient}"), (t("portal.sign_terms"), t("portal.informed_text"))])
        return esign.prepare(portal, page, "give", form, consent=consent)
    return await _post(portal, page, consent)


async def _post(portal: Portal, page: Page, consent: dict[str, Any]) -> Response:
    try:
        await portal.call(page, "POST", "/Consent", body=consent)
    except ApiError as refused:
        return await consents(portal, page, error=refused.text, status=refused.status)
    return portal.redirect(f"{PREFIX}/consents?given=1")


async def revoke_consent(portal: Portal, page: Page) -> Response:
    """AC-01: a Consent is revoked (status inactive), never deleted; the very next request of the grantee
    is judged without it (docs/security.md §3, the facts generation). Signed, the revoked version carries the
    signed revocation (esign.py)."""
    fields = await portal.form(page)
    cid = fhir_id(page.request.path_params["cid"])
    consent = await portal.call(page, "GET", f"/Consent/{cid}")
    if _wants_eds(fields):
        t, about = page.t, describe_consent(consent)
        form = esign.form_text(page, t("portal.sign_revoke_heading"), [
            (t("portal.sign_patient"), f"Patient/{_patient(page)}"), (t("portal.sign_consent"), f"Consent/{cid}"),
            (t("portal.grantee"), ", ".join(about["who"]) or ", ".join(about["policy"])),
            (t("portal.given"), about["date"])])
        return esign.prepare(portal, page, "revoke", form, cid=cid)
    consent["status"] = "inactive"
    await portal.call(page, "PUT", f"/Consent/{cid}", body=consent)
    return portal.redirect(f"{PREFIX}/consents?revoked=1")


# -- the access log (AC-24, TM-18) ----------------------------------------------------------------------------
#: lines on one page of the log; with a filter the API cannot apply, up to this many API pages are read for it
LOG_PAGE = 50
LOG_SCAN_PAGES = 20


def _line(entry: dict[str, Any]) -> dict[str, Any]:
    line: dict[str, Any] = {"what": [], "why": []}
    for part in entry.get("part") or []:
        value = next((v for k, v in part.items() if k.startswith("value")), "")
        if part.get("name") == "what":
            line["what"].append(unquote_plus(str(value)))  # a search's query text, readable (patient=Patient/p1)
        elif part.get("name") == "why":
            line["why"].append(value)
        else:
            line[str(part.get("name"))] = value
    return line


def _wanted(line: dict[str, Any], only: str) -> bool:
    if only == "emergency":
        return line.get("emergency") is True
    if only == "refused":
        return line.get("outcome") != "success"
    return True


def next_query(answer: Any, operation: str) -> dict[str, str] | None:
    """The query of the answer's ``next`` link, to follow it: only a link to this same operation (the API
    builds it from the caller's own parameters and an opaque ``_cursor``), never another path."""
    link = next((str(p.get("valueUri", "")) for p in (answer or {}).get("parameter") or []
                 if p.get("name") == "next"), "")
    if not link:
        return None
    parts = urlsplit(link)
    if not unquote(parts.path).endswith(operation):
        return None
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return query if query.get("_cursor", "").isdigit() else None


async def access_log(portal: Portal, page: Page) -> Response:
    """The log newest first, a page at a time (the API pages with ``_cursor``; the page follows its ``next``
    link). The dates are the API's own filter (``_since``, ``_until``); "break-glass only" and "refused only"
    are not API parameters, so the page reads on along the next links, up to LOG_SCAN_PAGES pages of the API,
    until it has LOG_PAGE lines that match, and links to where it stopped."""
    patient = _patient(page)
    query = page.request.query_params
    since, until, only = query.get("since", ""), query.get("until", ""), query.get("only", "all")
    if only not in ("all", "emergency", "refused"):
        only = "all"
    cursor = query.get("cursor", "")
    params = {"_view": "compact", "_count": str(LOG_PAGE)}
    error = ""
    for name, value in (("_since", since), ("_until", until)):
        if value:
            try:
                dt.date.fromisoformat(value)
                params[name] = value
            except ValueError:
                error = page.t("portal.bad_date")
    if cursor.isdigit() and len(cursor) <= 19:
        params["_cursor"] = cursor
    operation = f"/Patient/{patient}/$access-log"
    lines: list[dict[str, Any]] = []
    following: dict[str, str] | None = params
    scanned = 0
    while following is not None and scanned < (1 if only == "all" else LOG_SCAN_PAGES):
        answer = await portal.call(page, "GET", operation, params=following)
        scanned += 1
        lines += [line for line in (_line(p) for p in (answer or {}).get("parameter") or []
                                    if p.get("name") == "entry") if _wanted(line, only)]
        following = next_query(answer, operation)
        if len(lines) >= LOG_PAGE:
            break
    older = ""
    if following is not None:
        kept = {"since": since, "until": until, "only": only, "cursor": following["_cursor"]}
        older = f"{PREFIX}/access-log?" + urlencode({k: v for k, v in kept.items() if v and v != "all"})
    newest = ""
    if "_cursor" in params:
        newest = f"{PREFIX}/access-log?" + urlencode({k: v for k, v in (("since", since), ("until", until),
                                                                        ("only", only)) if v and v != "all"})
    return portal.render(page, "access_log.html", lines=lines, since=since, until=until, only=only, error=error,
                         older=older, newest=newest.rstrip("?"), later_page="_cursor" in params,
                         emergencies=sum(1 for line in lines if line.get("emergency") is True),
                         scanned_all=following is None)


# -- data-subject requests (AC-15, AC-16, AC-27, AC-22) ----------------------------------------------------------
def past(moment: str) -> bool:
    """Whether a dateTime with its zone (a due date, ``restriction.period.end``) has passed."""
    try:
        when = dt.datetime.fromisoformat(moment)
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when < dt.datetime.now(dt.UTC)


def describe_task(task: dict[str, Any]) -> dict[str, Any]:
    code = next((c.get("code", "") for c in (task.get("code") or {}).get("coding") or []
                 if c.get("system") == DSR_SYSTEM), "")
    answer = [str(o.get("valueString")) for o in task.get("output") or [] if o.get("valueString")]
    due = str(((task.get("restriction") or {}).get("period") or {}).get("end", ""))
    open_ = task.get("status") not in ("completed", "rejected", "cancelled", "failed", "entered-in-error")
    return {"id": task.get("id", ""), "kind": code, "status": task.get("status", ""),
            "received": str(task.get("authoredOn", ""))[:16].replace("T", " "), "due": due[:10], "due_full": due,
            "overdue": open_ and past(due),
            "open": open_, "description": task.get("description", ""),
            "changes": [str(i.get("valueString")) for i in task.get("input") or [] if i.get("valueString")],
            "answer": answer, "reason": (task.get("statusReason") or {}).get("text", ""),
            "patient": ((task.get("for") or {}).get("reference") or ""),
            "business": (task.get("businessStatus") or {}).get("text", "")}


async def requests(portal: Portal, page: Page, *, error: str = "", status: int = 200) -> Response:
    patient = _patient(page)
    found = entries(await portal.call(page, "GET", "/Task", params={"patient": f"Patient/{patient}",
                                                                    "code": f"{DSR_SYSTEM}|", "_count": "100"}))
    rows = sorted((describe_task(t) for t in found), key=lambda r: r["received"], reverse=True)
    return portal.render(page, "requests.html", status=status, requests=rows, error=error,
                         filed=page.request.query_params.get("filed", ""))


async def file_request(portal: Portal, page: Page) -> Response:
    fields = await portal.form(page)
    patient = _patient(page)
    kind = first(fields, "kind")
    if kind not in ("information", "correction", "destruction"):
        return await requests(portal, page, error=page.t("portal.request_bad_kind"), status=400)
    parameters: list[dict[str, Any]] = [{"name": "kind", "valueCode": kind}]
    if first(fields, "description"):
        parameters.append({"name": "description", "valueString": first(fields, "description")[:4000]})
    if first(fields, "change"):
        parameters.append({"name": "change", "valueString": first(fields, "change")[:4000]})
    try:
        task = await portal.call(page, "POST", f"/Patient/{patient}/$data-subject-request",
                                 body={"resourceType": "Parameters", "parameter": parameters})
    except ApiError as refused:
        return await requests(portal, page, error=refused.text, status=refused.status)
    return portal.redirect(f"{PREFIX}/requests?filed={task.get('id', '')}")


# -- notifications (AC-18) ----------------------------------------------------------------------------------------
async def notifications(portal: Portal, page: Page) -> Response:
    patient = _patient(page)
    found = entries(await portal.call(page, "GET", f"/Patient/{patient}/$notifications", params={"_count": "100"}))
    rows = [{"text": page.t.pick([str(p.get("contentString", "")) for p in c.get("payload") or []]),
             "status": c.get("status", ""), "urgent": c.get("priority") == "urgent",
             "sent": str(c.get("sent", ""))[:16].replace("T", " ")} for c in found]
    return portal.render(page, "notifications.html", notifications=rows)
