"""Validation: base R4 structure (this package) extended by profile validation (``validation.profile``)."""

from fhir_server.validation.issues import Issue, has_errors
from fhir_server.validation.structure import StructureValidator, get_structure_validator

__all__ = ["Issue", "StructureValidator", "get_structure_validator", "has_errors"]
