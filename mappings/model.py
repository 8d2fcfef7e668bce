"""The intermediate record of one remote medical service: the MD-D minimal data set as typed data.

Adapters (NEHP JSON, FHIR document, payment claim line) read only this record, never FHIR, so a new
national format needs one new adapter and no FHIR code (kz-domain.md §3: the NEHP format is not public).
Every value carries its origin in ``RemoteServiceRecord.trace``: record path (``"patient.iin"``) →
:class:`Source` (input resource + FHIRPath with indices), so nothing in an output is unexplained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fhir_server.validation.issues import Issue
from mappings.codes import MDD_ITEMS

#: Version of the record layout; adapters write it so a receiver can tell layouts apart.
RECORD_VERSION = "1.0"

JsonScalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Source:
    """Where a value came from: an input resource and a FHIRPath with explicit indices.

    ``reference`` is the key of the resource in the input (``"Patient/kz-patient-1"``) or
    ``"terminology"`` for a display looked up by code (``path`` is then ``"<system>|<code>"``).
    ``rule`` is set when the value is derived rather than copied (e.g. Encounter.class VR → remote).
    """

    reference: str
    path: str
    rule: str | None = None

    def __str__(self) -> str:
        text = f"{self.reference}: {self.path}"
        return f"{text} ({self.rule})" if self.rule else text


@dataclass(frozen=True, slots=True)
class Coded:
    system: str
    code: str
    display: str | None = None  # Russian display from the terminology service, else the source display


@dataclass(frozen=True, slots=True)
class Concept:
    """A CodeableConcept reduced to its first coding and its text (either may be absent, not both)."""

    coding: Coded | None
    text: str | None

    @property
    def label(self) -> str:
        if self.text:
            return self.text
        assert self.coding is not None
        return self.coding.display or self.coding.code


@dataclass(frozen=True, slots=True)
class Person:
    reference: str
    iin: str
    family: str
    given: str | None
    patronymic: str | None

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.family, self.given, self.patronymic) if p)


@dataclass(frozen=True, slots=True)
class Practitioner:
    person: Person
    specialty: Concept | None  # PractitionerRole.specialty, else Practitioner.qualification.code
    role: str | None  # the PractitionerRole reference when the Encounter named a role


@dataclass(frozen=True, slots=True)
class Provider:
    reference: str
    bin: str
    name: str | None
    mo_code: str | None


@dataclass(frozen=True, slots=True)
class Diagnosis:
    condition: str
    icd10: Coded
    kind: Coded | None
    type: Coded | None
    character: Coded | None
    rank: int | None


@dataclass(frozen=True, slots=True)
class Indicator:
    """An Observation read for MD-D 7 ("interpretation of health indicators and diagnostic results")."""

    reference: str
    code: Concept
    value: JsonScalar | None
    unit: str | None
    effective: str | None
    interpretation: Concept | None


@dataclass(frozen=True, slots=True)
class DoctorNote:
    text: str | None
    indicators: tuple[Indicator, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    text: str | None
    next_visit: str | None


@dataclass(frozen=True, slots=True)
class Referral:
    reference: str
    identifier: str | None
    kind: Concept | None  # ServiceRequest.category[0]
    service: Concept | None  # ServiceRequest.code
    authored_on: str | None
    reasons: tuple[str, ...]  # ICD-10 codes from reasonCode and reasonReference → Condition


@dataclass(frozen=True, slots=True)
class Prescription:
    reference: str
    medication: Concept
    dosage: str | None
    authored_on: str | None


@dataclass(frozen=True, slots=True)
class DisabilityDocument:
    reference: str
    kind: Coded  # sheet (лист) | certificate (справка)
    action: Coded | None  # open | extend | close | issue
    number: str | None
    start: str | None
    end: str | None


@dataclass(frozen=True, slots=True)
class Charge:
    """Tariff data when a ChargeItem or an earlier Claim gives it (amounts in KZT)."""

    quantity: int | None
    unit_price: Decimal | None
    amount: Decimal | None


@dataclass(frozen=True, slots=True)
class SignatureRef:
    """A Provenance carrying the doctor's EDS over a resource of this record (TM-10)."""

    provenance: str
    target: str
    who: str | None
    when: str | None
    sig_format: str | None


@dataclass(frozen=True)
class RemoteServiceRecord:
    """MD-D items 1..13 (fields named in ``codes.MDD_ITEMS``) plus the context the adapters need."""

    record_id: str  # urn:uuid, derived from the Encounter reference and version (idempotency key)
    encounter: str
    encounter_version: str | None
    status: str | None
    start: str | None
    end: str | None
    class_code: str | None
    # MD-D items 1..13
    form: Coded | None
    channel: Coded | None
    patient: Person | None
    service: Coded | None
    practitioner: Practitioner | None
    diagnoses: tuple[Diagnosis, ...]
    note: DoctorNote | None
    conclusion: str | None
    plan: Plan | None
    referrals: tuple[Referral, ...]
    prescriptions: tuple[Prescription, ...]
    disability: tuple[DisabilityDocument, ...]
    mse_referrals: tuple[Referral, ...]
    # context for the payment system and the NEHP envelope
    provider: Provider | None
    funding: Coded | None
    osms_insured: bool | None
    based_on: str | None  # the referral this service answered (Encounter.basedOn)
    nehp_id: str | None  # id the NEHP assigned earlier (Encounter.identifier with NEHP_RECORD_SYSTEM)
    charge: Charge | None
    signatures: tuple[SignatureRef, ...]
    issues: tuple[Issue, ...]
    trace: Mapping[str, Source]
    sources: Mapping[str, dict[str, Any]] = field(repr=False)  # the input resources the record read

    version: str = RECORD_VERSION

    @property
    def missing_items(self) -> tuple[int, ...]:
        """MD-D item numbers that are mandatory and absent."""
        return tuple(n for n, (name, _, mandatory) in MDD_ITEMS.items() if mandatory and not getattr(self, name))

    @property
    def ok(self) -> bool:
        return not any(issue.is_error for issue in self.issues)

    def item_sources(self, item: int) -> list[Source]:
        """The input locations MD-D ``item`` was read from (empty when the item is absent)."""
        name = MDD_ITEMS[item][0]
        return [src for key, src in self.trace.items() if key == name or key.startswith((f"{name}.", f"{name}["))]
