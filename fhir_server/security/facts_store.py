"""The policy's facts (Consents, care relationships, representatives) loaded from the store.

A process-wide cache keeps each patient's facts between requests; it is invalidated by a generation
counter that every committed write of a fact-bearing type bumps (``bump`` runs after COMMIT, from
the writer). A load tagged with an older generation is never served, so a revocation or expiry
takes effect on the next request (issue 5 §2) without reloading facts on every read.
"""

from __future__ import annotations

import threading
from typing import Any

from fhir_server.jsonio import reload
from fhir_server.security.policy import FactsLoader, PatientFacts, load_facts
from fhir_server.security.policy.blocking import is_block
from fhir_server.storage.protocols import Store

# What the policy needs of a patient, and the search (type, reference parameter) that finds each kind.
FACT_QUERIES: dict[str, tuple[tuple[str, str], ...]] = {
    "consents": (("Consent", "patient"),),
    "care_relationships": (("CareTeam", "patient"), ("EpisodeOfCare", "patient"), ("ServiceRequest", "subject")),
    "representatives": (("RelatedPerson", "patient"),),
    "blocks": (("Flag", "patient"),),  # block records (AC-26, policy/blocking.py)
}
#: a write of any of these changes some patient's facts (the Patient: its IINs, AC-08 signers)
FACT_TYPES = frozenset({rtype for queries in FACT_QUERIES.values() for rtype, _ in queries} | {"Patient"})
_MAX_MATCHES = 1000


def patient_iins(data: bytes | None) -> frozenset[str]:
    """The IINs of a stored Patient's JSON (Patient.identifier with the IIN system)."""
    if data is None:
        return frozenset()
    from fhir_server.security.policy.grants import iins_of

    return frozenset(iins_of(reload(data)))
MAX_CACHED_PATIENTS = 50_000


class StoreFactsLoader:
    """FactsLoader over the Store's search (the engine itself never reads the store)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _find(self, resource_type: str, param: str, patient_id: str) -> list[dict[str, Any]]:
        from fhir_server.search import parse_search

        query = parse_search(resource_type, [(param, f"Patient/{patient_id}"), ("_count", str(_MAX_MATCHES))],
                             strict=True)
        result = await self.store.search(query)
        return [reload(m.data) for m in result.matches if m.mode == "match"]

    async def _kind(self, kind: str, patient_id: str) -> list[dict[str, Any]]:
        return [r for rtype, param in FACT_QUERIES[kind] for r in await self._find(rtype, param, patient_id)]

    async def consents(self, patient_id: str) -> list[dict[str, Any]]:
        return await self._kind("consents", patient_id)

    async def care_relationships(self, patient_id: str) -> list[dict[str, Any]]:
        return await self._kind("care_relationships", patient_id)

    async def representatives(self, patient_id: str) -> list[dict[str, Any]]:
        return await self._kind("representatives", patient_id)

    async def blocks(self, patient_id: str) -> list[dict[str, Any]]:
        return [f for f in await self._kind("blocks", patient_id) if is_block(f)]

    async def identifiers(self, patient_id: str) -> frozenset[str]:
        stored = await self.store.read("Patient", patient_id)
        return patient_iins(stored.data if stored is not None and not stored.deleted else None)


class SharedFacts:
    """Facts per patient shared by all requests, valid while no fact-bearing write has committed."""

    def __init__(self, loader: FactsLoader) -> None:
        self.loader = loader
        self._generation = 0
        self._lock = threading.Lock()
        self._facts: dict[str, tuple[int, PatientFacts]] = {}

    @property
    def generation(self) -> int:
        """Bumped by every committed write of a fact-bearing type: decisions older than it are stale."""
        return self._generation

    def bump(self) -> None:
        with self._lock:
            self._generation += 1
            self._facts.clear()

    async def get(self, patient_id: str) -> PatientFacts:
        cached = self._facts.get(patient_id)
        generation = self._generation
        if cached is not None and cached[0] == generation:
            return cached[1]
        facts = await load_facts(self.loader, patient_id)
        with self._lock:
            if generation == self._generation:  # nothing committed meanwhile: safe to keep
                if len(self._facts) >= MAX_CACHED_PATIENTS:
                    self._facts.clear()  # bounded memory; the next reads simply reload
                self._facts[patient_id] = (generation, facts)
        return facts


class RequestFacts:
    """The FactsCache a request uses: the shared cache, plus facts a transaction is about to write."""

    def __init__(self, shared: SharedFacts, pending: dict[str, PatientFacts] | None = None) -> None:
        self.shared = shared
        self.pending = pending or {}
        self._seen: dict[str, PatientFacts] = {}

    async def get(self, patient_id: str) -> PatientFacts:
        if patient_id not in self._seen:
            facts = await self.shared.get(patient_id)
            extra = self.pending.get(patient_id)
            if extra is not None:
                facts = PatientFacts(patient_id, facts.consents + extra.consents,
                                     facts.care_relationships + extra.care_relationships,
                                     facts.representatives + extra.representatives,
                                     facts.identifiers | extra.identifiers, facts.blocks + extra.blocks)
            self._seen[patient_id] = facts
        return self._seen[patient_id]

    async def get_many(self, patient_ids: set[str] | list[str]) -> list[PatientFacts]:
        return [await self.get(p) for p in sorted(set(patient_ids))]
