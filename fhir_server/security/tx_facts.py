"""Policy facts read inside a write unit, synchronously, through its TxView.

A FHIR transaction is authorised inside its own unit, after its writes: the facts then include the
Consents, care teams and representatives the same Bundle records (a new patient's registration with
their signed consent and first data in one transaction), and nothing can change between the check
and the commit.
"""

from __future__ import annotations

from fhir_server.search.in_unit import find_in_unit
from fhir_server.security.facts_store import FACT_QUERIES, patient_iins
from fhir_server.security.policy import PatientFacts
from fhir_server.security.policy.blocking import is_block
from fhir_server.storage.protocols import TxView


class TxFacts:
    def __init__(self, view: TxView) -> None:
        self.view = view
        self._cache: dict[str, PatientFacts] = {}

    def get(self, patient_id: str) -> PatientFacts:
        if patient_id not in self._cache:
            parts = {kind: tuple(r for rtype, param in queries
                                 for r in find_in_unit(self.view, rtype, [(param, f"Patient/{patient_id}")]))
                     for kind, queries in FACT_QUERIES.items()}
            patient = self.view.current("Patient", patient_id)
            self._cache[patient_id] = PatientFacts(patient_id, parts["consents"], parts["care_relationships"],
                                                   parts["representatives"],
                                                   patient_iins(patient.data if patient and not patient.deleted
                                                                else None),
                                                   tuple(f for f in parts["blocks"] if is_block(f)))
        return self._cache[patient_id]

    def get_many(self, patient_ids: set[str]) -> list[PatientFacts]:
        return [self.get(p) for p in sorted(patient_ids)]
