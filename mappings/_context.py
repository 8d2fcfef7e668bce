"""Context of the service the payment system and the NEHP envelope need: funding, tariff, signatures, ids."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation

from fhir_server.validation.issues import Issue
from mappings._build import Build
from mappings._fhir import Cursor, canonical_key, refers_to
from mappings._links import linked
from mappings.codes import CS_FUNDING, EXT_FUNDING, KZ_BASE, NEHP_RECORD_SYSTEM
from mappings.model import Charge, Coded, SignatureRef, Source

_CURRENCY = "KZT"
_OSMS_POLICY = ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "MANDPOL")  # kz-funding-source → coverage


def record_id(b: Build, encounter: Cursor) -> str:
    """A stable id for one version of the service record: the idempotency key of every delivery."""
    version = encounter.text("meta", "versionId") or "-"
    name = f"{KZ_BASE}/nehp-record/{canonical_key(encounter.key)}/{version}"
    b.trace["record_id"] = Source(encounter.key, "Encounter.id", "uuid5 of the Encounter reference and meta.versionId")
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def _coverages(b: Build, patient_key: str | None) -> list[Cursor]:
    return [c for c in b.resources.of_type("Coverage")
            if patient_key is not None and refers_to(c.child("beneficiary"), patient_key)]


def funding(b: Build, encounter: Cursor, patient_key: str | None) -> Coded | None:
    """The kz-funding-source extension of the Encounter, else the type of the patient's Coverage."""
    value = encounter.ext_coding(EXT_FUNDING)
    if value is None:
        value = next((cc for cov in _coverages(b, patient_key) if (t := cov.child("type")) is not None
                      and (cc := t.coding(CS_FUNDING)) is not None), None)
    return b.coded("funding", value, "funding source") if value is not None else None


def _is_osms(coverage: Cursor) -> bool:
    concept = coverage.child("type")
    if concept is None:
        return False
    codes = {(c.node.get("system"), c.node.get("code")) for c in concept.children("coding")}
    return (CS_FUNDING, "osms") in codes or _OSMS_POLICY in codes


def osms_insured(b: Build, patient_key: str | None, service_date: str | None) -> bool | None:
    """Insured in OSMS on the service date, when an OSMS Coverage of the patient says so; None if unknown."""
    for coverage in _coverages(b, patient_key):
        status = coverage.child("status")
        if not _is_osms(coverage) or status is None:
            continue
        start, end = coverage.text("period", "start"), coverage.text("period", "end")
        day = (service_date or "")[:10]
        within = bool(day) and (start is None or start[:10] <= day) and (end is None or day <= end[:10])
        insured = status.node == "active" and within
        b.take("osms_insured", status, "Coverage.status = active and Coverage.period covers the service date")
        return insured
    return None


def _money(b: Build, key: str, money: Cursor | None) -> Decimal | None:
    if money is None or money.child("value") is None:
        return None
    currency = money.text("currency")
    if currency is not None and currency != _CURRENCY:
        b.issues.append(Issue("error", "business-rule", f"amounts must be in {_CURRENCY}, got {currency}", money.path))
        return None
    try:
        value = Decimal(str(b.take(key, money.child("value") or money)))
    except InvalidOperation:
        return None
    return value


def _quantity(b: Build, node: Cursor | None) -> int | None:
    if node is None or not isinstance(node.node, int | float) or isinstance(node.node, bool):
        return None
    if node.node != int(node.node):
        b.warn(f"a service quantity must be a whole number, got {node.node}", node.path)
        return None
    return int(b.take("charge.quantity", node))


def charge(b: Build, encounter: Cursor, patient_key: str | None) -> Charge | None:
    """Quantity and KZT tariff from a ChargeItem of the service, else from an earlier Claim item."""
    for item in linked(b, "ChargeItem", encounter, patient_key):
        quantity = _quantity(b, item.child("quantity", "value"))
        unit = _money(b, "charge.unit_price", item.child("priceOverride"))
        amount, price = None, item.child("priceOverride", "value")
        if unit is not None and quantity is not None and price is not None:
            amount = unit * quantity
            b.trace["charge.amount"] = Source(item.key, price.path, "priceOverride.value × quantity.value")
        return Charge(quantity, unit, amount)
    for claim in linked(b, "Claim", encounter, patient_key):
        for line in claim.children("item"):
            if any(refers_to(r, encounter.key) for r in line.children("encounter")):
                return Charge(_quantity(b, line.child("quantity", "value")),
                              _money(b, "charge.unit_price", line.child("unitPrice")),
                              _money(b, "charge.amount", line.child("net")))
    return None


def signatures(b: Build) -> tuple[SignatureRef, ...]:
    """Provenance signatures over any resource the record read (TM-10: the doctor's EDS)."""
    found: list[SignatureRef] = []
    used = list(b.used)
    for provenance in b.resources.of_type("Provenance"):
        target = next((t for t in provenance.children("target") if any(refers_to(t, k) for k in used)), None)
        if target is None:
            continue
        for signature in provenance.children("signature"):
            key = f"signatures[{len(found)}]"
            b.take(key, signature, "Provenance.signature: who, when and sigFormat")
            who = signature.child("who")
            who_text = (who.text("reference") or who.text("identifier", "value") or who.text("display")
                        if who is not None else None)
            found.append(SignatureRef(provenance.reference, str(target.node.get("reference")), who_text,
                                      signature.text("when"), signature.text("sigFormat")))
    return tuple(found)


def based_on(b: Build, encounter: Cursor) -> str | None:
    """The referral this service answered: its identifier value, else its reference (Encounter.basedOn)."""
    ref = encounter.child("basedOn")
    if ref is None:
        return None
    request = b.resources.resolve(ref)
    value = request.child("identifier", "value") if request is not None else None
    return b.text("based_on", value) or b.text("based_on", ref.child("reference"))


def nehp_id(b: Build, encounter: Cursor) -> str | None:
    return b.text("nehp_id", encounter.identifier(NEHP_RECORD_SYSTEM))
