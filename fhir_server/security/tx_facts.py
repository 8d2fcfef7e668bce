"""Policy facts read inside a write unit, synchronously, through its TxView.

A FHIR transaction is authorised inside its own unit, after its writes: the facts then include the
Consents, care teams and representatives the same Bundle records (a new patient's registration with
their signed consent and first data in one transaction), and nothing can change between the check
and the commit.
"""

from __future__ import annotations

from typing import Any

import orjson

from fhir_server.security.policy import PatientFacts
from fhir_server.storage.protocols import TxView

_QUERIES = {
    "consents": (("Consent", "patient"),),
    "care_relationships": (("CareTeam", "patient"), ("EpisodeOfCare", "patient"), ("ServiceRequest", "subject")),
    "representatives": (("RelatedPerson", "patient"),),
}


class TxFacts:
    def __init__(self, view: TxView) -> None:
        self.view = view
        self._cache: dict[str, PatientFacts] = {}

    def _find(self, resource_type: str, param: str, patient_id: str) -> list[dict[str, Any]]:
        from fhir_server.search import parse_search

        query = parse_search(resource_type, [(param, f"Patient/{patient_id}")], strict=True)
        out = []
        for rtype, rid in self.view.search_ids(query, 1000):
            stored = self.view.current(rtype, rid)
            if stored is not None and stored.data is not None:
                out.append(orjson.loads(stored.data))
        return out

    def get(self, patient_id: str) -> PatientFacts:
        if patient_id not in self._cache:
            parts = {name: tuple(r for t, p in queries for r in self._find(t, p, patient_id))
                     for name, queries in _QUERIES.items()}
            self._cache[patient_id] = PatientFacts(patient_id, parts["consents"], parts["care_relationships"],
                                                   parts["representatives"])
        return self._cache[patient_id]

    def get_many(self, patient_ids: set[str]) -> list[PatientFacts]:
        return [self.get(p) for p in sorted(patient_ids)]
