"""Read a claim line back from the FHIR Claim that ``mappings.payment.claim.line_to_claim`` wrote."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mappings.codes import (
    BIN_SYSTEM,
    CLAIM_LINE_SYSTEM,
    CS_CLAIM_INFO,
    CS_DIAGNOSIS_KIND,
    CS_FORM,
    CS_FORM_OF_CARE,
    CS_FUNDING,
    ICD10_SYSTEM,
    IIN_SYSTEM,
    MO_CODE_SYSTEM,
)
from mappings.payment.claim_line import ClaimLine


def _code(concept: dict[str, Any] | None, system: str) -> str | None:
    for coding in (concept or {}).get("coding", []):
        if coding.get("system") == system and isinstance(coding.get("code"), str):
            return str(coding["code"])
    return None


def _identifier(identifiers: list[dict[str, Any]] | dict[str, Any] | None, system: str) -> str | None:
    items = identifiers if isinstance(identifiers, list) else [identifiers or {}]
    return next((str(i["value"]) for i in items if i.get("system") == system and "value" in i), None)


def _contained(claim: dict[str, Any], reference: dict[str, Any] | None) -> dict[str, Any]:
    local = str((reference or {}).get("reference", "")).removeprefix("#")
    return next((c for c in claim.get("contained", []) if c.get("id") == local), {})


def _money(money: dict[str, Any] | None) -> Decimal | None:
    if not money or "value" not in money:
        return None
    if money.get("currency", "KZT") != "KZT":
        raise ValueError(f"amounts must be in KZT, got {money.get('currency')}")
    return Decimal(str(money["value"]))


def _info(claim: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entry in claim.get("supportingInfo", []):
        category = _code(entry.get("category"), CS_CLAIM_INFO)
        if category is not None:
            out[category] = entry
    return out


def _diagnoses(claim: dict[str, Any]) -> dict[str, list[str]]:
    by_kind: dict[str, list[str]] = {"main": [], "concomitant": [], "complication": []}
    for diagnosis in sorted(claim.get("diagnosis", []), key=lambda d: d.get("sequence", 0)):
        code = _code(diagnosis.get("diagnosisCodeableConcept"), ICD10_SYSTEM)
        kind = next((k for t in diagnosis.get("type", []) if (k := _code(t, CS_DIAGNOSIS_KIND))), None)
        if code is not None and kind in by_kind:
            by_kind[kind].append(code)
    return by_kind


def _specialty(member: dict[str, Any]) -> tuple[str | None, str | None]:
    qualification = member.get("qualification") or {}
    coding = (qualification.get("coding") or [{}])[0]
    return coding.get("code"), coding.get("display") or qualification.get("text")


def _referral(claim: dict[str, Any]) -> str | None:
    referral = claim.get("referral") or {}
    return referral.get("reference") or (referral.get("identifier") or {}).get("value")


def _required(value: Any, what: str) -> Any:
    if value is None:
        raise ValueError(f"the Claim has no {what}")
    return value


def read_claim(claim: dict[str, Any]) -> ClaimLine:
    if claim.get("resourceType") != "Claim":
        raise ValueError("not a Claim")
    item = _required((claim.get("item") or [None])[0], "item")
    info = _info(claim)
    diagnoses = _diagnoses(claim)
    if len(diagnoses["main"]) != 1:
        raise ValueError("the Claim must have exactly one main diagnosis")
    provider = _contained(claim, claim.get("provider"))
    coverage = _contained(claim, (claim.get("insurance") or [{}])[0].get("coverage"))
    member = (claim.get("careTeam") or [{}])[0]
    code, name = _specialty(member)
    service = (item.get("productOrService", {}).get("coding") or [{}])[0]
    period = item.get("servicedPeriod", {})
    return ClaimLine(
        line_id=_required(_identifier(claim.get("identifier"), CLAIM_LINE_SYSTEM), "line identifier"),
        record_id=_required(info.get("kzfhir-record", {}).get("valueReference", {}).get("identifier", {})
                            .get("value"), "kzfhir-record supportingInfo"),
        encounter=_required((item.get("encounter") or [{}])[0].get("reference"), "item.encounter"),
        provider_bin=_required(_identifier(provider.get("identifier"), BIN_SYSTEM), "provider BIN"),
        mo_code=_identifier(provider.get("identifier"), MO_CODE_SYSTEM),
        patient_iin=_required(_identifier((claim.get("patient") or {}).get("identifier"), IIN_SYSTEM), "patient IIN"),
        funding_source=_required(_code(coverage.get("type"), CS_FUNDING), "funding source (Coverage.type)"),
        osms_insured=info.get("osms-insured", {}).get("valueBoolean"),
        service_code=_required(service.get("code"), "item.productOrService"), service_name=service.get("display"),
        icd10_main=diagnoses["main"][0], icd10_concomitant=tuple(diagnoses["concomitant"]),
        icd10_complication=tuple(diagnoses["complication"]),
        service_start=_required(period.get("start"), "item.servicedPeriod.start"), service_end=period.get("end"),
        form_of_care=_required(_code(info.get("form-of-care", {}).get("code"), CS_FORM_OF_CARE), "form of care"),
        remote_service_form=_code(info.get("remote-service-form", {}).get("code"), CS_FORM),
        practitioner_iin=_required(_identifier(member.get("provider", {}).get("identifier"), IIN_SYSTEM),
                                   "careTeam practitioner IIN"),
        practitioner_specialty_code=code, practitioner_specialty=name,
        quantity=int(_required(item.get("quantity", {}).get("value"), "item.quantity")),
        unit_tariff_kzt=_money(item.get("unitPrice")), amount_kzt=_money(item.get("net")),
        referral_id=_referral(claim),
        nehp_record_id=info.get("nehp-record", {}).get("valueReference", {}).get("identifier", {}).get("value"),
    )
