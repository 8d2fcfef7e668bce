"""Terminology: CodeSystems, ValueSets and ConceptMaps as data (R4 core, ICD-10, Kazakhstan code systems).

``default_service()`` holds the R4 core sets plus ``terminology/data``; see docs/terminology.md.
"""

from __future__ import annotations

from functools import cache

from terminology._registry import ICD10_URL, Registry
from terminology._service import TerminologyService
from terminology.errors import TerminologyError
from terminology.protocols import MembershipChecker

KZ_BASE = "https://fhir.kzfhir.kz"

__all__ = [
    "ICD10_URL",
    "KZ_BASE",
    "MembershipChecker",
    "Registry",
    "TerminologyError",
    "TerminologyService",
    "default_service",
]


@cache
def default_service() -> TerminologyService:
    """The process-wide service over the R4 core package and the shipped data (built on first use)."""
    return TerminologyService()
