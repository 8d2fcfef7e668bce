"""MD-D 10 (referrals), 11 (prescriptions), 12 (temporary disability) and 13 (MSE referral)."""

from __future__ import annotations

import re

from fhir_server.validation.issues import Issue
from mappings._build import Build
from mappings._fhir import Cursor, canonical_key
from mappings._links import linked
from mappings.codes import (
    CS_DISABILITY_ACTION,
    CS_DISABILITY_DOCUMENT,
    CS_REFERRAL_KIND,
    DISABILITY_ACTIONS,
    DISABILITY_KINDS,
    ICD10_SYSTEM,
)
from mappings.model import Coded, DisabilityDocument, Prescription, Referral

# No national code marks an MSE referral yet (docs/kz-ig.md "Not done"): the proposed kz-referral-kind#mse
# coding, or the category text naming it in Russian, Kazakh or English.
_MSE_TEXT = re.compile(r"МСЭ|медико-социальн|МӘС|медициналық-әлеуметтік|\bMSE\b|medical-social", re.IGNORECASE)


def is_mse(request: Cursor) -> bool:
    for category in request.children("category"):
        coding = category.coding(CS_REFERRAL_KIND)
        if coding is not None and coding.node.get("code") == "mse":
            return True
        if _MSE_TEXT.search(category.text("text") or ""):
            return True
    return False


def _reasons(b: Build, key: str, request: Cursor) -> tuple[str, ...]:
    codes: list[str] = []
    for concept in request.children("reasonCode"):
        if (coding := concept.coding(ICD10_SYSTEM)) is not None:
            codes.append(str(b.take(f"{key}.reasons[{len(codes)}]", coding.child("code") or coding)))
    for ref in request.children("reasonReference"):
        condition = b.resources.resolve(ref)
        code = condition.child("code") if condition is not None else None
        if code is not None and (coding := code.coding(ICD10_SYSTEM)) is not None:
            codes.append(str(b.take(f"{key}.reasons[{len(codes)}]", coding.child("code") or coding)))
    return tuple(codes)


def _referral(b: Build, key: str, request: Cursor) -> Referral:
    b.use(request)
    return Referral(
        reference=request.reference,
        identifier=b.text(f"{key}.identifier", request.child("identifier", "value")),
        kind=b.concept(f"{key}.kind", request.child("category"), "referral kind"),
        service=b.concept(f"{key}.service", request.child("code"), "referred service"),
        authored_on=b.text(f"{key}.authored_on", request.child("authoredOn")),
        reasons=_reasons(b, key, request),
    )


def referrals(
    b: Build, encounter: Cursor, patient_key: str | None
) -> tuple[tuple[Referral, ...], tuple[Referral, ...]]:
    """(MD-D 10 referrals, MD-D 13 MSE referrals) issued in this service; Encounter.basedOn is incoming."""
    incoming = {canonical_key(str(r.node.get("reference"))) for r in encounter.children("basedOn")}
    outgoing: list[Referral] = []
    mse: list[Referral] = []
    for request in linked(b, "ServiceRequest", encounter, patient_key):
        if canonical_key(request.key) in incoming:
            continue
        if is_mse(request):
            mse.append(_referral(b, f"mse_referrals[{len(mse)}]", request))
        else:
            outgoing.append(_referral(b, f"referrals[{len(outgoing)}]", request))
    return tuple(outgoing), tuple(mse)


def _medication(b: Build, request: Cursor) -> Cursor | None:
    concept = request.child("medicationCodeableConcept")
    if concept is not None:
        return concept
    medication = b.resources.resolve(request.child("medicationReference"))
    return medication.child("code") if medication is not None else None


def prescriptions(b: Build, encounter: Cursor, patient_key: str | None) -> tuple[Prescription, ...]:
    found: list[Prescription] = []
    for request in linked(b, "MedicationRequest", encounter, patient_key):
        key = f"prescriptions[{len(found)}]"
        medication = b.concept(f"{key}.medication", _medication(b, request), "medication")
        if medication is None:
            b.issues.append(Issue("warning", "incomplete", f"{request.reference} names no medication code or text",
                                  "MedicationRequest.medication"))
            continue
        texts = [d for d in request.children("dosageInstruction") if isinstance(d.node.get("text"), str)]
        dosage = b.text(f"{key}.dosage", texts[0].child("text")) if texts else None
        if len(texts) > 1:
            dosage = "; ".join(str(d.node["text"]) for d in texts)
            b.take(f"{key}.dosage", texts[0].child("text") or texts[0], "dosageInstruction[*].text joined by '; '")
        authored = b.text(f"{key}.authored_on", request.child("authoredOn"))
        found.append(Prescription(request.reference, medication, dosage, authored))
    return tuple(found)


def _disability_code(b: Build, key: str, concept: Cursor | None, system: str, allowed: frozenset[str],
                     what: str) -> Coded | None:
    coding = concept.coding(system) if concept is not None else None
    if coding is None:
        return None
    coded = b.coded(key, coding, f"MD-D 12 {what}", check=False)
    if coded.code not in allowed:
        b.issues.append(Issue("error", "code-invalid", f"MD-D 12 {what}: {coded.code!r} is not one of "
                              f"{', '.join(sorted(allowed))}", coding.path))
    return coded


def disability(b: Build, encounter: Cursor, patient_key: str | None) -> tuple[DisabilityDocument, ...]:
    """DocumentReferences typed with kz-disability-document (sheet or certificate) [P]."""
    found: list[DisabilityDocument] = []
    for doc in linked(b, "DocumentReference", encounter, patient_key):
        key = f"disability[{len(found)}]"
        kind = _disability_code(b, f"{key}.kind", doc.child("type"), CS_DISABILITY_DOCUMENT, DISABILITY_KINDS,
                                "document kind")
        if kind is None:
            continue
        action_cc = next((c for c in doc.children("category") if c.coding(CS_DISABILITY_ACTION) is not None), None)
        action = _disability_code(b, f"{key}.action", action_cc, CS_DISABILITY_ACTION, DISABILITY_ACTIONS, "action")
        number = b.text(f"{key}.number", doc.child("masterIdentifier", "value") or doc.child("identifier", "value"))
        start = b.text(f"{key}.start", doc.child("context", "period", "start"))
        end = b.text(f"{key}.end", doc.child("context", "period", "end"))
        found.append(DisabilityDocument(doc.reference, kind, action, number, start, end))
    return tuple(found)
