"""Identifiers shared by the NEHP formats, derived from the record id so every format names the same record."""

from __future__ import annotations

import uuid

from mappings.model import RemoteServiceRecord


def document_id(record: RemoteServiceRecord) -> str:
    """``Bundle.identifier.value`` of the FHIR document of ``record`` (also sent in the JSON message)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, record.record_id + '#document')}"


def composition_id(record: RemoteServiceRecord) -> str:
    """The logical id of the generated Composition (a FHIR id: 64 characters at most)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, record.record_id + "#composition"))
