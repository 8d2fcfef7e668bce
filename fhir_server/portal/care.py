"""More of the cabinet (TM-12): my remote services (the MD-D record of each), my documents and images (TM-02),
and my doctor's messages with recommendations (TM-16). Read through the API as the signed-in person, like every
page; a file is downloaded through the API too (its read is judged and audited as any read), never from the
store or from another server.

- **Remote services** are the patient's Encounters of class ``v3-ActCode#VR`` (the kz-encounter-remote profile):
  the form of the service and the telecom channel (MD-D 1, 2), the service (4), the doctor (5), the diagnoses
  with their kind and type (6), the next visit (9); with the referrals (ServiceRequest, 10), prescriptions
  (MedicationRequest, 11) and the doctor's note and conclusion (a Composition's sections, 7 and 8) that name the
  Encounter. Codes of the Kazakhstan code systems are shown in the page's language (their designations, through
  the server's terminology).
- **Signed records** (TM-10): the patient's document Bundles (``Bundle?type=document``; the policy leaves only
  those in the person's compartment, and the page keeps those whose Composition is about this patient) are
  unpacked: the Composition's title, date, authors and sections with the resources each section names, and every
  resource inside the Bundle. Whether the signature verifies is the server's own verdict
  (``Bundle/[id]/$verify-signature``, the checks of the write path, made at the time of the call), never a check
  of the portal's. A record is shown under its remote service when its Composition names that Encounter, and
  otherwise on its own, so a Composition that exists only inside a Bundle is shown too.
- **Documents and images**: DocumentReference and Media with their attachments. An attachment with inline
  ``data`` or a ``url`` naming a Binary on this server (``Binary/[id]``) is downloaded at
  ``/portal/files/{type}/{id}/{n}``: the page reads the resource (and the Binary) with the person's token and
  sends the bytes as a download (``Content-Disposition: attachment``, a sandboxing CSP, the media type only when
  it is a safe one); images of a safe type are also shown inline. An attachment elsewhere is named, not fetched
  (the portal fetches nothing from other servers).
- **Messages**: Communications about the patient whose topic is a ``kz-recommendation-kind`` (adherence,
  lifestyle; telemed/recommendations.py), newest first, with the care plan they belong to; and the active
  reminders (CommunicationRequest) with their schedule.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.responses import Response

from fhir_server.portal.api import ApiError, entries
from fhir_server.portal.charts import concept_label
from fhir_server.portal.web import HEADERS, NotFound, Page, Portal, fhir_id
from fhir_server.telemed.recommendations import KIND, SCHEDULE
from terminology import TerminologyError, default_service

KZ = "https://fhir.kzfhir.kz"
VIRTUAL = "http://terminology.hl7.org/CodeSystem/v3-ActCode|VR"
#: media types a browser may show inline without running anything (no SVG, no HTML)
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
#: media types sent as themselves in a download; anything else goes as application/octet-stream
SAFE_TYPES = INLINE_IMAGES | {"application/pdf", "text/plain", "application/dicom", "audio/mpeg", "audio/ogg",
                              "video/mp4", "video/webm"}
FILE_HEADERS = {**HEADERS, "Content-Security-Policy": "default-src 'none'; sandbox"}


@lru_cache(maxsize=512)
def _display(system: str, code: str, lang: str) -> str:
    try:
        found = default_service().lookup(system, code, display_language=lang)
    except TerminologyError:
        return code
    return next((str(p.get("valueString")) for p in found.get("parameter") or [] if p.get("name") == "display"),
                code)


def coded(concept: Any, lang: str) -> str:
    """A CodeableConcept or Coding as text: a Kazakhstan code in the page's language, else its own text."""
    if isinstance(concept, dict) and "coding" not in concept and concept.get("code"):
        concept = {"coding": [concept]}
    for coding in (concept or {}).get("coding") or [] if isinstance(concept, dict) else []:
        system, code = str(coding.get("system", "")), str(coding.get("code", ""))
        if system.startswith(f"{KZ}/CodeSystem/") and code:
            return _display(system, code, lang)
    return concept_label(concept)


def _extension(resource: dict[str, Any], name: str) -> Any:
    for extension in resource.get("extension") or []:
        if extension.get("url") == f"{KZ}/StructureDefinition/{name}":
            return next((v for k, v in extension.items() if k.startswith("value")), None)
    return None


def _refers(resource: dict[str, Any], element: str, target: str) -> bool:
    value = resource.get(element)
    items = value if isinstance(value, list) else [value]
    return any(isinstance(i, dict) and i.get("reference") == target for i in items)


async def _search(portal: Portal, page: Page, kind: str, params: dict[str, str], *, optional: bool = False
                  ) -> list[dict[str, Any]]:
    """A search's matches; ``optional``: a refusal is none (the names of doctors, not the person's own data)."""
    try:
        return entries(await portal.call(page, "GET", f"/{kind}", params={"_count": "200", **params}))
    except ApiError:
        if optional:
            return []
        raise


async def remote_services(portal: Portal, page: Page) -> Response:
    patient = f"Patient/{page.me.patient}"
    encounters, conditions, referrals, prescriptions, compositions, practitioners = await asyncio.gather(
        _search(portal, page, "Encounter", {"patient": patient, "class": VIRTUAL}),
        _search(portal, page, "Condition", {"patient": patient}),
        _search(portal, page, "ServiceRequest", {"patient": patient}),
        _search(portal, page, "MedicationRequest", {"patient": patient}),
        _search(portal, page, "Composition", {"patient": patient}),
        _search(portal, page, "Practitioner", {"_count": "100"}, optional=True))
    lang = page.lang
    condition_of = {f"Condition/{c.get('id')}": c for c in conditions}
    people = {f"Practitioner/{p.get('id')}": p for p in practitioners}
    rows = []
    for encounter in sorted(encounters, key=lambda e: str((e.get("period") or {}).get("start", "")), reverse=True):
        ref = f"Encounter/{encounter.get('id')}"
        diagnoses = []
        for d in encounter.get("diagnosis") or []:
            condition = condition_of.get(str((d.get("condition") or {}).get("reference", "")), {})
            diagnoses.append({"text": concept_label(condition.get("code")) or
                              str((d.get("condition") or {}).get("display", "")),
                              "kind": coded(_extension(d, "kz-diagnosis-kind"), lang),
                              "type": coded(_extension(d, "kz-diagnosis-type"), lang)})
        doctors = []
        for p in encounter.get("participant") or []:
            who = p.get("individual") or {}
            person = people.get(str(who.get("reference", "")))
            name = (person or {}).get("name") or [{}]
            doctors.append(who.get("display") or " ".join([*name[0].get("given", []), name[0].get("family", "")]
                                                          ).strip() or who.get("reference", ""))
        sections = [{"title": s.get("title") or concept_label(s.get("code")),
                     "text": re.sub(r"<[^>]+>", " ", str((s.get("text") or {}).get("div", ""))).strip()}
                    for c in compositions if _refers(c, "encounter", ref) for s in c.get("section") or []]
        rows.append({
            "id": encounter.get("id", ""), "status": encounter.get("status", ""),
            "start": str((encounter.get("period") or {}).get("start", ""))[:16].replace("T", " "),
            "form": coded(_extension(encounter, "kz-remote-service-form"), lang),
            "channel": coded(_extension(encounter, "kz-telecom-channel"), lang),
            "service": coded(encounter.get("serviceType"), lang) or coded((encounter.get("type") or [{}])[0], lang),
            "doctors": [d for d in doctors if d], "diagnoses": diagnoses,
            "next_visit": str(_extension(encounter, "kz-next-visit-date") or ""),
            "referrals": [coded(r.get("code"), lang) or r.get("id", "") for r in referrals
                          if _refers(r, "encounter", ref)],
            "prescriptions": [concept_label(m.get("medicationCodeableConcept")) or m.get("id", "")
                              for m in prescriptions if _refers(m, "encounter", ref)],
            "sections": [s for s in sections if s["title"] or s["text"]]})
    records = await _signed_records(portal, page, lang)
    listed = {f"Encounter/{row['id']}" for row in rows}
    for row in rows:
        row["records"] = [r for r in records if r["encounter"] == f"Encounter/{row['id']}"]
    return portal.render(page, "remote.html", services=rows,
                         other_records=[r for r in records if r["encounter"] not in listed])


# -- signed records: the document Bundles (TM-10) ------------------------------------------------------------
def _name(resource: dict[str, Any]) -> str:
    names = resource.get("name")
    if isinstance(names, str):
        return names
    for name in names if isinstance(names, list) else []:
        if isinstance(name, dict):
            text = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")]).strip()
            if text:
                return str(text)
    return ""


def _value(resource: dict[str, Any]) -> str:
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict) and quantity.get("value") is not None:
        return f"{quantity.get('value')} {quantity.get('unit') or ''}".strip()
    for key in ("valueString", "valueBoolean", "valueInteger", "valueDateTime"):
        if resource.get(key) is not None:
            return str(resource[key])
    return concept_label(resource.get("valueCodeableConcept"))


def describe_resource(resource: dict[str, Any], lang: str) -> str:
    """One line for a resource inside a record: its name, title, code or medication, and value."""
    label = (_name(resource) or str(resource.get("title") or "") or coded(resource.get("code"), lang) or
             concept_label(resource.get("medicationCodeableConcept")) or coded(resource.get("type"), lang) or
             str(resource.get("description") or ""))
    value = _value(resource)
    return f"{label}: {value}" if label and value else label or value or str(resource.get("id", ""))


def _plain(div: Any) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", str(div or "")).split())


def _sections(sections: Any, by_url: dict[str, dict[str, Any]], lang: str, depth: int = 0) -> list[dict[str, Any]]:
    """The Composition's sections in order (nested ones after their parent, to a depth of 4), each with its
    text and the resources it names."""
    found: list[dict[str, Any]] = []
    for section in sections if isinstance(sections, list) and depth < 4 else []:
        if not isinstance(section, dict):
            continue
        named = [by_url.get(str(e.get("reference", ""))) for e in section.get("entry") or [] if isinstance(e, dict)]
        found.append({"title": section.get("title") or coded(section.get("code"), lang), "depth": depth,
                      "text": _plain((section.get("text") or {}).get("div")),
                      "entries": [describe_resource(r, lang) for r in named if r]})
        found += _sections(section.get("section"), by_url, lang, depth + 1)
    return found


def _signer(subject: str, iin: str) -> str:
    """The signer as a person reads it: the certificate's common name and the IIN, not the whole subject."""
    name = next((part.split("=", 1)[1].strip() for part in subject.split(",") if part.strip().upper().startswith(
        "CN=")), "")
    if name and iin:
        return f"{name} (IIN {iin})"
    return name or (f"IIN {iin}" if iin else subject)


def _verdict(answer: Any) -> dict[str, Any]:
    """The server's ``$verify-signature`` answer as the page shows it: ``verified``, ``failed`` or
    ``unsigned``, and per signature who signed, when, and the server's reasons when it does not verify."""
    parameters = (answer or {}).get("parameter") or []
    result = next((p.get("valueBoolean") for p in parameters if p.get("name") == "result"), False)
    signatures = []
    for parameter in parameters:
        if parameter.get("name") != "signature":
            continue
        parts: dict[str, Any] = {"finding": []}
        for part in parameter.get("part") or []:
            if part.get("name") == "finding":
                message = next((p.get("valueString") for p in part.get("part") or [] if p.get("name") == "message"),
                               "")
                parts["finding"].append(str(message))
            else:
                parts[str(part.get("name"))] = next((v for k, v in part.items() if k.startswith("value")), None)
        signatures.append({"ok": parts.get("ok") is True, "trusted": parts.get("trusted") is True,
                           "signer": _signer(str(parts.get("signerSubject") or ""), str(parts.get("iin") or "")),
                           "iin": str(parts.get("iin") or ""),
                           "when": str(parts.get("signingTime") or "")[:16].replace("T", " "),
                           "findings": [f for f in parts["finding"] if f]})
    state = "unsigned" if not signatures else "verified" if result is True else "failed"
    return {"state": state, "signatures": signatures}


async def _verify(portal: Portal, page: Page, bundle_id: str) -> dict[str, Any]:
    """The server's verdict on the stored record's signatures, or why it gave none (its refusal's text)."""
    try:
        return _verdict(await portal.call(page, "GET", f"/Bundle/{fhir_id(bundle_id)}/$verify-signature"))
    except ApiError as refused:
        return {"state": "unknown", "signatures": [], "reason": refused.text}


def _about(composition: dict[str, Any], patient: str) -> bool:
    return _refers(composition, "subject", patient)


#: the document Bundles are read along the search's next links, up to RECORD_PAGES pages of RECORD_COUNT
RECORD_PAGES, RECORD_COUNT = 5, 200


def _next_params(bundle: Any, path: str) -> dict[str, str] | None:
    """The query of a searchset's ``next`` link to ``path`` (this server's own search, an opaque ``_cursor``)."""
    link = next((str(li.get("url", "")) for li in (bundle or {}).get("link") or [] if li.get("relation") == "next"),
                "")
    parts = urlsplit(link)
    if not link or not parts.path.endswith(path):
        return None
    return dict(parse_qsl(parts.query, keep_blank_values=True))


async def _document_bundles(portal: Portal, page: Page) -> list[dict[str, Any]]:
    """The document Bundles the person may see (the policy leaves out others' as absent, so a page of the search
    may hold fewer than asked: the next links are followed, up to RECORD_PAGES pages)."""
    found: list[dict[str, Any]] = []
    params: dict[str, str] | None = {"type": "document", "_count": str(RECORD_COUNT)}
    for _ in range(RECORD_PAGES):
        if params is None:
            break
        answer = await portal.call(page, "GET", "/Bundle", params=params)
        found += entries(answer)
        params = _next_params(answer, "/Bundle")
    return found


async def _signed_records(portal: Portal, page: Page, lang: str) -> list[dict[str, Any]]:
    patient = f"Patient/{page.me.patient}"
    bundles = await _document_bundles(portal, page)
    records = []
    for bundle in bundles:
        entries_ = [e for e in bundle.get("entry") or [] if isinstance(e, dict) and isinstance(e.get("resource"),
                                                                                            dict)]
        if not entries_ or entries_[0]["resource"].get("resourceType") != "Composition":
            continue  # a document Bundle starts with its Composition (R4 bdl-11)
        composition = entries_[0]["resource"]
        if not _about(composition, patient):
            continue
        by_url: dict[str, dict[str, Any]] = {}
        for entry in entries_:
            resource = entry["resource"]
            if entry.get("fullUrl"):
                by_url[str(entry["fullUrl"])] = resource
            if resource.get("id"):
                by_url[f"{resource.get('resourceType')}/{resource.get('id')}"] = resource
        authors = [describe_resource(by_url[str(a.get("reference"))], lang) if str(a.get("reference")) in by_url
                   else str(a.get("display") or a.get("reference") or "")
                   for a in composition.get("author") or [] if isinstance(a, dict)]
        records.append({
            "id": bundle.get("id", ""), "title": composition.get("title") or coded(composition.get("type"), lang),
            "type": coded(composition.get("type"), lang), "status": composition.get("status", ""),
            "date": str(composition.get("date") or bundle.get("timestamp") or "")[:16].replace("T", " "),
            "encounter": str((composition.get("encounter") or {}).get("reference", "")),
            "authors": [a for a in authors if a], "sections": _sections(composition.get("section"), by_url, lang),
            "contents": [{"type": e["resource"].get("resourceType", ""), "text": describe_resource(e["resource"], lang)}
                         for e in entries_[1:]]})
    verdicts = await asyncio.gather(*(_verify(portal, page, str(r["id"])) for r in records))
    for record, verdict in zip(records, verdicts, strict=True):
        record["signature"] = verdict
    records.sort(key=lambda r: r["date"], reverse=True)
    return records


# -- documents and images (TM-02) --------------------------------------------------------------------------
def attachments_of(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The attachments of a DocumentReference (``content[].attachment``) or a Media (``content``)."""
    if resource.get("resourceType") == "Media":
        content = resource.get("content")
        return [content] if isinstance(content, dict) else []
    return [c["attachment"] for c in resource.get("content") or [] if isinstance(c, dict)
            and isinstance(c.get("attachment"), dict)]


def _local_binary(url: Any) -> str | None:
    """``Binary/[id]`` (relative, as the server resolves it) or None: the portal fetches nothing elsewhere."""
    if isinstance(url, str) and re.fullmatch(r"Binary/[A-Za-z0-9\-.]{1,64}", url):
        return url
    return None


def _file_row(resource: dict[str, Any], index: int, attachment: dict[str, Any]) -> dict[str, Any]:
    kind = str(attachment.get("contentType", "")).split(";")[0].strip().lower()
    here = attachment.get("data") is not None or _local_binary(attachment.get("url")) is not None
    return {"n": index, "title": attachment.get("title") or kind or "—", "type": kind,
            "size": attachment.get("size"), "downloadable": here,
            "image": here and kind in INLINE_IMAGES, "elsewhere": "" if here else str(attachment.get("url", ""))}


async def documents(portal: Portal, page: Page) -> Response:
    patient = f"Patient/{page.me.patient}"
    docs, media = await asyncio.gather(_search(portal, page, "DocumentReference", {"patient": patient}),
                                       _search(portal, page, "Media", {"patient": patient}))
    rows = []
    for resource in [*docs, *media]:
        rows.append({"type": resource.get("resourceType"), "id": resource.get("id", ""),
                     "title": resource.get("description") or concept_label(resource.get("type")) or
                     concept_label(resource.get("modality")) or resource.get("id", ""),
                     "date": str(resource.get("date") or resource.get("createdDateTime") or
                                 resource.get("issued") or "")[:10],
                     "files": [_file_row(resource, i, a) for i, a in enumerate(attachments_of(resource))]})
    rows.sort(key=lambda r: r["date"], reverse=True)
    return portal.render(page, "documents.html", documents=rows)


def _filename(title: str, kind: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", title).strip("._")[:80] or "file"
    extension = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg",
                 "text/plain": ".txt"}.get(kind, "")
    return stem if stem.lower().endswith(extension) else stem + extension


async def download(portal: Portal, page: Page) -> Response:
    """One attachment's bytes, read through the API (the resource, then its Binary) as the person."""
    params = page.request.path_params
    rtype = params["rtype"]
    if rtype not in ("DocumentReference", "Media"):
        raise NotFound()
    rid = fhir_id(params["rid"])
    try:
        index = int(params["n"])
    except ValueError as bad:
        raise NotFound() from bad
    found = attachments_of(await portal.call(page, "GET", f"/{rtype}/{rid}"))
    if not 0 <= index < len(found):
        raise NotFound()
    attachment = found[index]
    kind = str(attachment.get("contentType", "")).split(";")[0].strip().lower()
    data = attachment.get("data")
    binary = _local_binary(attachment.get("url"))
    if data is None and binary is not None:
        stored = await portal.call(page, "GET", f"/{binary}")
        data = (stored or {}).get("data")
        kind = kind or str((stored or {}).get("contentType", "")).lower()
    if not isinstance(data, str):
        raise NotFound()
    try:
        body = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as bad:
        raise ApiError(422, None) from bad
    inline = page.request.query_params.get("inline") == "1" and kind in INLINE_IMAGES
    name = _filename(str(attachment.get("title") or f"{rtype}-{rid}-{index}"), kind)
    disposition = f'{"inline" if inline else "attachment"}; filename="{name}"'
    return Response(body, media_type=kind if kind in SAFE_TYPES else "application/octet-stream",
                    headers={**FILE_HEADERS, "Content-Disposition": disposition})


# -- messages with recommendations (TM-16) ------------------------------------------------------------------
def _kind(resource: dict[str, Any]) -> str:
    topic = resource.get("topic")
    concepts = topic if isinstance(topic, list) else [topic]
    return next((str(c.get("code")) for concept in concepts if isinstance(concept, dict)
                 for c in concept.get("coding") or [] if c.get("system") == KIND), "")


def _text(resource: dict[str, Any]) -> str:
    return " ".join(str(p["contentString"]) for p in resource.get("payload") or [] if p.get("contentString"))


def _schedule(request: dict[str, Any]) -> dict[str, Any]:
    timing = next((e.get("valueTiming") for e in request.get("extension") or [] if e.get("url") == SCHEDULE), None)
    repeat = (timing or {}).get("repeat") or {}
    return {"every": repeat.get("period"), "unit": repeat.get("periodUnit", ""),
            "from": str((repeat.get("boundsPeriod") or {}).get("start", ""))[:10],
            "until": str((repeat.get("boundsPeriod") or {}).get("end", ""))[:10], "count": repeat.get("count")}


async def messages(portal: Portal, page: Page) -> Response:
    patient = f"Patient/{page.me.patient}"
    sent, reminders, plans = await asyncio.gather(
        _search(portal, page, "Communication", {"subject": patient}),
        _search(portal, page, "CommunicationRequest", {"subject": patient, "status": "active"}),
        _search(portal, page, "CarePlan", {"subject": patient}))
    plan_of = {f"CarePlan/{p.get('id')}": p.get("title") or p.get("description") or p.get("id") for p in plans}

    def plan(resource: dict[str, Any]) -> str:
        return ", ".join(str(plan_of.get(str(b.get("reference")), b.get("reference", "")))
                         for b in resource.get("basedOn") or [] if str(b.get("reference", "")).startswith("CarePlan/"))

    rows = [{"id": c.get("id", ""), "kind": _kind(c), "text": _text(c), "plan": plan(c),
             "from": str((c.get("sender") or {}).get("display") or (c.get("sender") or {}).get("reference", "")),
             "sent": str(c.get("sent", ""))[:16].replace("T", " ")}
            for c in sent if _kind(c) and c.get("status") == "completed"]
    rows.sort(key=lambda r: r["sent"], reverse=True)
    asked = [{"id": r.get("id", ""), "kind": _kind(r), "text": _text(r), "plan": plan(r), **_schedule(r)}
             for r in reminders if _text(r)]
    return portal.render(page, "messages.html", messages=rows, reminders=asked)
