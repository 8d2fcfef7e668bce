"""What the policy needs to know about a patient, and the loader seam the store implements.

The engine is pure: it never reads the store. For each patient a resource belongs to, the lead
loads a PatientFacts through a ``FactsLoader`` (implemented over the store) and passes it in.
``FactsCache`` memoises those loads for the duration of ONE request, so a search page of 100
Observations of the same patient costs one load, while a revoked or expired Consent still takes
effect on the very next request (issue 5: "revocation or expiry takes effect on the next request").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol


class FactsLoader(Protocol):
    """Loads a patient's access facts from the store (all statuses; the engine filters)."""

    async def consents(self, patient_id: str) -> list[dict[str, Any]]:
        """Consent resources whose ``Consent.patient`` is ``Patient/{patient_id}``."""
        ...

    async def care_relationships(self, patient_id: str) -> list[dict[str, Any]]:
        """The patient's CareTeam, EpisodeOfCare and ServiceRequest resources (by subject/patient)."""
        ...

    async def representatives(self, patient_id: str) -> list[dict[str, Any]]:
        """RelatedPerson resources whose ``RelatedPerson.patient`` is ``Patient/{patient_id}``."""
        ...

    async def identifiers(self, patient_id: str) -> frozenset[str]:
        """The IINs of ``Patient/{patient_id}`` (empty when it is not stored)."""
        ...

    async def blocks(self, patient_id: str) -> list[dict[str, Any]]:
        """The patient's Flag resources (block records among them, AC-26: policy/blocking.py)."""
        ...


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """Everything the engine consults for one patient (ids are bare: ``"7"``, not ``Patient/7``)."""

    patient_id: str
    consents: tuple[dict[str, Any], ...] = ()
    care_relationships: tuple[dict[str, Any], ...] = ()
    representatives: tuple[dict[str, Any], ...] = ()
    identifiers: frozenset[str] = frozenset()  # the patient's IINs (Patient.identifier): EDS signers (AC-08)
    blocks: tuple[dict[str, Any], ...] = ()  # the patient's Flags: blocks of records (AC-26)


async def load_facts(loader: FactsLoader, patient_id: str) -> PatientFacts:
    """One patient's facts, read through the loader."""
    return PatientFacts(
        patient_id=patient_id,
        consents=tuple(await loader.consents(patient_id)),
        care_relationships=tuple(await loader.care_relationships(patient_id)),
        representatives=tuple(await loader.representatives(patient_id)),
        identifiers=await loader.identifiers(patient_id),
        blocks=tuple(await loader.blocks(patient_id)),
    )


class FactsCache:
    """Per-request memo over a FactsLoader. Create one per request; never share across requests."""

    def __init__(self, loader: FactsLoader) -> None:
        self._loader = loader
        self._facts: dict[str, PatientFacts] = {}

    async def get(self, patient_id: str) -> PatientFacts:
        if patient_id not in self._facts:
            self._facts[patient_id] = await load_facts(self._loader, patient_id)
        return self._facts[patient_id]

    async def get_many(self, patient_ids: Iterable[str]) -> list[PatientFacts]:
        return [await self.get(patient_id) for patient_id in sorted(set(patient_ids))]
