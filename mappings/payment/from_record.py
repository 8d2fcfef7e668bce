"""Record → claim line (TM-19), with the FHIR location of every value and issues for missing ones.

The line needs more than the MD-D set: the provider's BIN, the funding source and, when the input has
them, the OSMS insured status (Coverage) and the tariff (ChargeItem or an earlier Claim). Missing
mandatory values are error issues and no line is written; nothing is guessed. The one default is
``quantity = 1`` when no ChargeItem gives it: one remote-service Encounter is one service (kz-domain §4).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir_server.validation.issues import Issue
from mappings.codes import FORM_OF_CARE_BY_CLASS
from mappings.model import Diagnosis, RemoteServiceRecord, Source
from mappings.payment.claim_line import ClaimLine

# Claim-line field → record trace key (docs/mappings.md "Claim line columns").
_FROM_TRACE = {
    "provider_bin": "provider.bin", "mo_code": "provider.mo_code", "patient_iin": "patient.iin",
    "funding_source": "funding.code", "osms_insured": "osms_insured", "service_code": "service.code",
    "service_name": "service.display", "service_start": "start", "service_end": "end",
    "remote_service_form": "form.code", "practitioner_iin": "practitioner.person.iin",
    "practitioner_specialty_code": "practitioner.specialty.coding.code", "quantity": "charge.quantity",
    "unit_tariff_kzt": "charge.unit_price", "amount_kzt": "charge.amount", "referral_id": "based_on",
    "nehp_record_id": "nehp_id", "record_id": "record_id",
}
_BLOCKING = frozenset({"value", "code-invalid", "business-rule"})
_REQUIRED = ("provider_bin", "patient_iin", "funding_source", "service_code", "icd10_main", "service_start",
             "form_of_care", "practitioner_iin")


@dataclass(frozen=True)
class ClaimLineResult:
    line: ClaimLine | None  # None when a mandatory value is missing (see issues)
    sources: Mapping[str, Source]  # claim-line field (``icd10_concomitant[0]`` for list items) → origin
    issues: tuple[Issue, ...]


def _by_kind(diagnoses: tuple[Diagnosis, ...], kind: str) -> list[tuple[int, Diagnosis]]:
    found = [(i, d) for i, d in enumerate(diagnoses) if d.kind is not None and d.kind.code == kind]
    return sorted(found, key=lambda item: (item[1].rank is None, item[1].rank or 0, item[0]))


def _diagnoses(record: RemoteServiceRecord, sources: dict[str, Source], issues: list[Issue]) -> dict[str, Any]:
    """ICD-10 main + concomitant + complication codes by diagnosis kind (MD-D 6)."""
    out: dict[str, Any] = {"icd10_main": None}
    mains = _by_kind(record.diagnoses, "main")
    if len(mains) > 1:
        issues.append(Issue("error", "business-rule", "more than one diagnosis has kind 'main'; a claim line "
                            "has exactly one main diagnosis", "Encounter.diagnosis"))
    elif mains:
        i, main = mains[0]
        out["icd10_main"] = main.icd10.code
        sources["icd10_main"] = record.trace[f"diagnoses[{i}].icd10.code"]
    for kind in ("concomitant", "complication"):
        pairs = _by_kind(record.diagnoses, kind)
        out[f"icd10_{kind}"] = tuple(d.icd10.code for _, d in pairs)
        for n, (i, _) in enumerate(pairs):
            sources[f"icd10_{kind}[{n}]"] = record.trace[f"diagnoses[{i}].icd10.code"]
    return out


def _practitioner(record: RemoteServiceRecord, sources: dict[str, Source]) -> dict[str, Any]:
    practitioner = record.practitioner
    specialty = practitioner.specialty if practitioner is not None else None
    name, code = None, None
    if specialty is not None:
        code = specialty.coding.code if specialty.coding is not None else None
        name = specialty.text or (specialty.coding.display if specialty.coding is not None else None)
        key = "practitioner.specialty.text" if specialty.text else "practitioner.specialty.coding.display"
        if name is not None:
            sources["practitioner_specialty"] = record.trace[key]
    return {"practitioner_iin": practitioner.person.iin if practitioner else None,
            "practitioner_specialty_code": code, "practitioner_specialty": name}


def _values(record: RemoteServiceRecord, sources: dict[str, Source], issues: list[Issue]) -> dict[str, Any]:
    charge = record.charge
    form_of_care = FORM_OF_CARE_BY_CLASS.get(record.class_code or "")
    if form_of_care is not None:
        origin = record.trace["class_code"]
        sources["form_of_care"] = Source(origin.reference, origin.path, "Encounter.class (v3-ActCode) → form of care")
    quantity = charge.quantity if charge is not None else None
    if quantity is None:
        sources["quantity"] = Source(record.encounter, "Encounter", "one remote-service Encounter is one service")
    return {
        "record_id": record.record_id, "encounter": record.encounter,
        "provider_bin": record.provider.bin if record.provider else None,
        "mo_code": record.provider.mo_code if record.provider else None,
        "patient_iin": record.patient.iin if record.patient else None,
        "funding_source": record.funding.code if record.funding else None, "osms_insured": record.osms_insured,
        "service_code": record.service.code if record.service else None,
        "service_name": record.service.display if record.service else None,
        "service_start": record.start, "service_end": record.end, "form_of_care": form_of_care,
        "remote_service_form": record.form.code if record.form else None,
        "quantity": quantity if quantity is not None else 1,
        "unit_tariff_kzt": charge.unit_price if charge else None, "amount_kzt": charge.amount if charge else None,
        "referral_id": record.based_on, "nehp_record_id": record.nehp_id,
        **_practitioner(record, sources), **_diagnoses(record, sources, issues),
    }


def claim_line_from_record(record: RemoteServiceRecord) -> ClaimLineResult:
    """One claim line for the service of ``record``; the NEHP record should be delivered first (TM-11)."""
    sources: dict[str, Source] = {}
    # Invalid IIN/BIN and codes make the line invalid too; a missing note or plan (MD-D 7-9) does not.
    issues = [i for i in record.issues if i.is_error and i.code in _BLOCKING]
    values = _values(record, sources, issues)
    values["line_id"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, record.record_id + '#claim-line')}"
    sources["line_id"] = Source(record.encounter, "Encounter.id", "uuid5 of the record id")
    sources["encounter"] = Source(record.encounter, "Encounter", "key of the Encounter in the input")
    for field, key in _FROM_TRACE.items():
        if values.get(field) is not None and key in record.trace:
            sources[field] = record.trace[key]
    for name in _REQUIRED:
        if values.get(name) is None:
            issues.append(Issue("error", "required", f"claim line: {name} is missing (TM-19)", _WHERE[name]))
    line = ClaimLine(**values) if not any(i.is_error for i in issues) else None
    return ClaimLineResult(line, sources, tuple(issues))


_WHERE = {
    "provider_bin": "Encounter.serviceProvider.resolve().identifier (BIN)",
    "patient_iin": "Encounter.subject.resolve().identifier (IIN)",
    "funding_source": "Encounter.extension(kz-funding-source) | Coverage.type",
    "service_code": "Encounter.serviceType.coding",
    "icd10_main": "Encounter.diagnosis.where(extension(kz-diagnosis-kind) = 'main')",
    "service_start": "Encounter.period.start",
    "form_of_care": "Encounter.class",
    "practitioner_iin": "Encounter.participant.individual.resolve().identifier (IIN)",
}
