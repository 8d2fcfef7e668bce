"""FHIR → national formats: the NEHP record (TM-11) and the payment-system claim line (TM-19).

``build_record`` gathers the MD-D minimal data set of a remote service into a :class:`RemoteServiceRecord`;
NEHP adapters (``mappings.nehp``) and the claim line (``mappings.payment``) are written from that record.
See docs/mappings.md.
"""

from mappings.model import (
    RECORD_VERSION,
    Charge,
    Coded,
    Concept,
    Diagnosis,
    DisabilityDocument,
    DoctorNote,
    Indicator,
    Person,
    Plan,
    Practitioner,
    Prescription,
    Provider,
    Referral,
    RemoteServiceRecord,
    SignatureRef,
    Source,
)
from mappings.record import build_record

__all__ = [
    "RECORD_VERSION",
    "Charge",
    "Coded",
    "Concept",
    "Diagnosis",
    "DisabilityDocument",
    "DoctorNote",
    "Indicator",
    "Person",
    "Plan",
    "Practitioner",
    "Prescription",
    "Provider",
    "Referral",
    "RemoteServiceRecord",
    "SignatureRef",
    "Source",
    "build_record",
]
