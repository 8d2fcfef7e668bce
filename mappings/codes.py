"""URLs and code tables the mappings read and write (docs/kz-ig.md, kz-domain.md §2.1).

Everything under ``KZ_BASE`` that the KZ IG or ``terminology/data/kz`` already publishes is reused as is.
The few systems marked [P] below are proposals of this package (no national list exists, kz-domain.md §8);
docs/mappings.md lists them so the terminology package can publish them.
"""

from __future__ import annotations

from typing import Final

KZ_BASE: Final = "https://fhir.kzfhir.kz"
_SD = f"{KZ_BASE}/StructureDefinition"
_CS = f"{KZ_BASE}/CodeSystem"
_VS = f"{KZ_BASE}/ValueSet"

# Identifier systems (docs/kz-ig.md "IIN and BIN"; kz-domain.md §2.1 for mo-code and nehp-record).
IIN_SYSTEM: Final = f"{KZ_BASE}/sid/iin"
BIN_SYSTEM: Final = f"{KZ_BASE}/sid/bin"
MO_CODE_SYSTEM: Final = f"{KZ_BASE}/sid/mo-code"
NEHP_RECORD_SYSTEM: Final = f"{KZ_BASE}/sid/nehp-record"
CLAIM_LINE_SYSTEM: Final = f"{KZ_BASE}/sid/fsms-claim"
ICD10_SYSTEM: Final = "http://hl7.org/fhir/sid/icd-10"
ICD10_VALUESET: Final = f"{_VS}/icd-10"

# Extensions of the KZ IG (docs/kz-ig.md "Extensions").
EXT_FORM: Final = f"{_SD}/kz-remote-service-form"
EXT_CHANNEL: Final = f"{_SD}/kz-telecom-channel"
EXT_NEXT_VISIT: Final = f"{_SD}/kz-next-visit-date"
EXT_FUNDING: Final = f"{_SD}/kz-funding-source"
EXT_PATRONYMIC: Final = f"{_SD}/kz-patronymic"
EXT_DIAGNOSIS_KIND: Final = f"{_SD}/kz-diagnosis-kind"
EXT_DIAGNOSIS_TYPE: Final = f"{_SD}/kz-diagnosis-type"
EXT_DISEASE_CHARACTER: Final = f"{_SD}/kz-disease-character"

# KZ code systems shipped by terminology/data/kz (ValueSet url = CodeSystem url with /ValueSet/).
CS_FORM: Final = f"{_CS}/kz-remote-service-form"
CS_CHANNEL: Final = f"{_CS}/kz-telecom-channel"
CS_FUNDING: Final = f"{_CS}/kz-funding-source"
CS_SERVICE: Final = f"{_CS}/kz-service"
CS_DIAGNOSIS_KIND: Final = f"{_CS}/kz-diagnosis-kind"
CS_DIAGNOSIS_TYPE: Final = f"{_CS}/kz-diagnosis-type"
CS_DISEASE_CHARACTER: Final = f"{_CS}/kz-disease-character"

# [P] code systems of this package, not yet in terminology/data (docs/mappings.md "Proposed codes").
CS_MDD_ITEM: Final = f"{_CS}/kz-md-d-item"  # Composition.section.code: "1".."13"
CS_DISABILITY_DOCUMENT: Final = f"{_CS}/kz-disability-document"  # sheet | certificate (MD-D 12)
CS_DISABILITY_ACTION: Final = f"{_CS}/kz-disability-action"  # open | extend | close | issue (MD-D 12)
CS_REFERRAL_KIND: Final = f"{_CS}/kz-referral-kind"  # mse marks an MSE referral (MD-D 13)
CS_CLAIM_INFO: Final = f"{_CS}/kz-claim-information"  # Claim.supportingInfo.category
CS_FORM_OF_CARE: Final = f"{_CS}/kz-form-of-care"  # ambulatory | inpatient | day-care | remote

DISABILITY_KINDS: Final = frozenset({"sheet", "certificate"})
DISABILITY_ACTIONS: Final = frozenset({"open", "extend", "close", "issue"})

# Encounter.class (v3-ActCode) → form of care of the claim line (kz-domain.md §4 "form of care").
FORM_OF_CARE_BY_CLASS: Final = {
    "VR": "remote",
    "AMB": "ambulatory",
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "SS": "day-care",
}


def valueset_of(code_system: str) -> str:
    """The all-codes ValueSet the terminology package publishes beside a KZ code system."""
    return code_system.replace("/CodeSystem/", "/ValueSet/", 1)


# MD-D (requirements.md §A "At delivery of a remote service"): item → (record field, label, mandatory).
# Items 10-13 are "where needed", so their absence is not an error.
MDD_ITEMS: Final[dict[int, tuple[str, str, bool]]] = {
    1: ("form", "form of the remote service", True),
    2: ("channel", "telecommunication means used", True),
    3: ("patient", "patient IIN and full name", True),
    4: ("service", "service code and name", True),
    5: ("practitioner", "IIN and full name of the doctor", True),
    6: ("diagnoses", "diagnosis data set (diagnosis, kind, type, character)", True),
    7: ("note", "doctor's note (objective status, interpretation of indicators and results)", True),
    8: ("conclusion", "conclusion (result of the service)", True),
    9: ("plan", "management plan with the date of the next examination", True),
    10: ("referrals", "referrals (laboratory, consultation, hospitalisation, transfer)", False),
    11: ("prescriptions", "prescription of medicines", False),
    12: ("disability", "temporary disability sheet or certificate", False),
    13: ("mse_referrals", "referral to medical-social expertise (MSE)", False),
}

# Where each MD-D item is read from (the expression named in "missing item" issues).
MDD_PATHS: Final[dict[int, str]] = {
    1: f"Encounter.extension('{EXT_FORM}')",
    2: f"Encounter.extension('{EXT_CHANNEL}')",
    3: "Encounter.subject.resolve()",
    4: f"Encounter.serviceType.coding.where(system='{CS_SERVICE}')",
    5: "Encounter.participant.individual.resolve()",
    6: "Encounter.diagnosis",
    7: "Composition.section.where(code.coding.code='7').text | ClinicalImpression.description | Encounter.text",
    8: "Composition.section.where(code.coding.code='8').text | ClinicalImpression.summary",
    9: f"Composition.section.where(code.coding.code='9').text | CarePlan | Encounter.extension('{EXT_NEXT_VISIT}')",
    10: "ServiceRequest.where(encounter = %encounter)",
    11: "MedicationRequest.where(encounter = %encounter)",
    12: f"DocumentReference.where(type.coding.system = '{CS_DISABILITY_DOCUMENT}')",
    13: "ServiceRequest.where(category.coding.code = 'mse' or category.text contains 'МСЭ')",
}
