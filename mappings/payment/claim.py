"""Claim line ⇄ FHIR R4 ``Claim``: what the server stores about a line it submitted to the fund (TM-19).

``line_to_claim`` writes a Claim (use = claim, type = professional) whose every element comes from the
line, and ``claim_to_line`` reads it back: ``claim_to_line(line_to_claim(line)) == line`` (property-tested).
Placement (R4 claim.html):

* provider BIN and MO code → contained Organization ``#provider``; patient IIN → ``patient.identifier``;
* funding source → contained Coverage ``#coverage`` (``type``) in ``insurance[0]``;
* OSMS insured, form of care, remote-service form, NEHP id, record id → ``supportingInfo``
  (category in ``kz-claim-information`` [P]);
* ICD-10 codes → ``diagnosis`` with the ``kz-diagnosis-kind`` in ``type`` (main also ex-diagnosistype
  ``principal``); practitioner IIN + specialty → ``careTeam[0]``; the service, dates, quantity and KZT
  amounts → ``item[0]``; the referral → ``referral``; the line id → ``identifier``.
"""

from __future__ import annotations

import re
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
    CS_SERVICE,
    ICD10_SYSTEM,
    IIN_SYSTEM,
    MO_CODE_SYSTEM,
    NEHP_RECORD_SYSTEM,
)
from mappings.payment.claim_line import ClaimLine
from mappings.payment.claim_read import read_claim

_THO = "http://terminology.hl7.org/CodeSystem"
_RECORD_SYSTEM = "urn:ietf:rfc:3986"
_LITERAL = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")
# The fund pays both ГОБМП and ОСМС (kz-domain.md §4); other payors are not known from a claim line.
_FUND = "НАО «Фонд социального медицинского страхования»"


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def _money(value: Decimal) -> dict[str, Any]:
    # A JSON number, as R4 Money.value; ≤ 15 significant digits survive the float (docs/mappings.md).
    return {"value": float(value) if value != value.to_integral_value() else int(value), "currency": "KZT"}


def _iin(value: str, resource_type: str) -> dict[str, Any]:
    return {"type": resource_type, "identifier": {"system": IIN_SYSTEM, "value": value}}


def _contained(line: ClaimLine) -> list[dict[str, Any]]:
    identifiers = [{"system": BIN_SYSTEM, "value": line.provider_bin}]
    if line.mo_code is not None:
        identifiers.append({"system": MO_CODE_SYSTEM, "value": line.mo_code})
    payor = _iin(line.patient_iin, "Patient") if line.funding_source == "paid" else {"display": _FUND}
    if line.funding_source not in ("gobmp", "osms", "paid"):
        payor = {"display": "не указан"}  # VHI insurer or other payor: not part of the claim line
    coverage = {"resourceType": "Coverage", "id": "coverage", "status": "active",
                "type": {"coding": [_coding(CS_FUNDING, line.funding_source)]},
                "beneficiary": _iin(line.patient_iin, "Patient"), "payor": [payor]}
    return [{"resourceType": "Organization", "id": "provider", "identifier": identifiers}, coverage]


def _info(category: str, **value: Any) -> dict[str, Any]:
    return {"category": {"coding": [_coding(CS_CLAIM_INFO, category)]}, **value}


def _supporting_info(line: ClaimLine) -> list[dict[str, Any]]:
    info = [_info("form-of-care", code={"coding": [_coding(CS_FORM_OF_CARE, line.form_of_care)]}),
            _info("kzfhir-record", valueReference={"identifier": {"system": _RECORD_SYSTEM, "value": line.record_id}})]
    if line.osms_insured is not None:
        info.append(_info("osms-insured", valueBoolean=line.osms_insured))
    if line.remote_service_form is not None:
        info.append(_info("remote-service-form", code={"coding": [_coding(CS_FORM, line.remote_service_form)]}))
    if line.nehp_record_id is not None:
        info.append(_info("nehp-record",
                          valueReference={"identifier": {"system": NEHP_RECORD_SYSTEM, "value": line.nehp_record_id}}))
    return [{"sequence": n, **entry} for n, entry in enumerate(info, start=1)]


def _diagnoses(line: ClaimLine) -> list[dict[str, Any]]:
    kinds = [("main", line.icd10_main)] + [("concomitant", c) for c in line.icd10_concomitant]
    kinds += [("complication", c) for c in line.icd10_complication]
    out = []
    for n, (kind, code) in enumerate(kinds, start=1):
        codings = [_coding(CS_DIAGNOSIS_KIND, kind)]
        if kind == "main":
            codings.append(_coding(f"{_THO}/ex-diagnosistype", "principal"))
        out.append({"sequence": n, "diagnosisCodeableConcept": {"coding": [_coding(ICD10_SYSTEM, code)]},
                    "type": [{"coding": codings}]})
    return out


def _care_team(line: ClaimLine) -> dict[str, Any]:
    member: dict[str, Any] = {"sequence": 1, "provider": _iin(line.practitioner_iin, "Practitioner"),
                              "role": {"coding": [_coding(f"{_THO}/claimcareteamrole", "primary")]}}
    if line.practitioner_specialty_code is not None:
        coding = {"code": line.practitioner_specialty_code}
        if line.practitioner_specialty is not None:
            coding["display"] = line.practitioner_specialty
        member["qualification"] = {"coding": [coding]}
    elif line.practitioner_specialty is not None:
        member["qualification"] = {"text": line.practitioner_specialty}
    return member


def _period(line: ClaimLine) -> dict[str, str]:
    return {"start": line.service_start, **({"end": line.service_end} if line.service_end else {})}


def _item(line: ClaimLine, diagnoses: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "sequence": 1, "careTeamSequence": [1], "diagnosisSequence": list(range(1, diagnoses + 1)),
        "productOrService": {"coding": [_coding(CS_SERVICE, line.service_code, line.service_name)]},
        "servicedPeriod": _period(line), "quantity": {"value": line.quantity},
        "encounter": [{"reference": line.encounter}],
    }
    if line.unit_tariff_kzt is not None:
        item["unitPrice"] = _money(line.unit_tariff_kzt)
    if line.amount_kzt is not None:
        item["net"] = _money(line.amount_kzt)
    return item


def line_to_claim(line: ClaimLine, *, created: str | None = None) -> dict[str, Any]:
    """The R4 Claim of a line; ``created`` defaults to the end (else start) of the service."""
    diagnoses = _diagnoses(line)
    claim: dict[str, Any] = {
        "resourceType": "Claim", "contained": _contained(line),
        "identifier": [{"system": CLAIM_LINE_SYSTEM, "value": line.line_id}], "status": "active",
        "type": {"coding": [_coding(f"{_THO}/claim-type", "professional")]}, "use": "claim",
        "patient": _iin(line.patient_iin, "Patient"), "billablePeriod": _period(line),
        "created": created or line.service_end or line.service_start, "provider": {"reference": "#provider"},
        "priority": {"coding": [_coding(f"{_THO}/processpriority", "normal")]},
        "careTeam": [_care_team(line)], "supportingInfo": _supporting_info(line), "diagnosis": diagnoses,
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "#coverage"}}],
        "item": [_item(line, len(diagnoses))],
    }
    if line.referral_id is not None:
        claim["referral"] = ({"reference": line.referral_id} if _LITERAL.match(line.referral_id)
                             else {"identifier": {"value": line.referral_id}})
    if line.amount_kzt is not None:
        claim["total"] = _money(line.amount_kzt)
    return claim


def claim_to_line(claim: dict[str, Any]) -> ClaimLine:
    """Read back a Claim written by :func:`line_to_claim`; ValueError when a mandatory part is missing."""
    return read_claim(claim)
