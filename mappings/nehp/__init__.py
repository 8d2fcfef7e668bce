"""NEHP (National Electronic Health Passport) message formats, as pluggable adapters (TM-11).

The NEHP format is not public (kz-domain.md §3), so delivery is written against the :class:`NehpAdapter`
protocol. Two adapters ship: ``json`` (our proposed schema, ``schema-v1.json``) and ``fhir-document``
(a FHIR document Bundle for the doctor's EDS). An operator adds the official format by registering an
adapter::

    from mappings.nehp import register_adapter
    register_adapter("cda", lambda **options: MyCdaAdapter(**options))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mappings.nehp.fhir_document import FhirDocumentAdapter
from mappings.nehp.ids import document_id
from mappings.nehp.json_message import JsonMessageAdapter, to_json
from mappings.nehp.protocols import NehpAdapter
from mappings.nehp.schema import SCHEMA_ID, load_schema, validate

__all__ = [
    "SCHEMA_ID",
    "FhirDocumentAdapter",
    "JsonMessageAdapter",
    "NehpAdapter",
    "adapter_names",
    "document_id",
    "get_adapter",
    "load_schema",
    "register_adapter",
    "to_json",
    "validate",
]

AdapterFactory = Callable[..., NehpAdapter]

_FACTORIES: dict[str, AdapterFactory] = {
    JsonMessageAdapter.name: JsonMessageAdapter,
    FhirDocumentAdapter.name: FhirDocumentAdapter,
}


def register_adapter(name: str, factory: AdapterFactory, *, replace: bool = False) -> None:
    """Make ``get_adapter(name, **options)`` build adapters with ``factory(**options)``."""
    if name in _FACTORIES and not replace:
        raise ValueError(f"an NEHP adapter named {name!r} is already registered (pass replace=True)")
    _FACTORIES[name] = factory


def get_adapter(name: str, **options: Any) -> NehpAdapter:
    """A new adapter, e.g. ``get_adapter("fhir-document", base_url="https://mis.example.kz/fhir")``."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise KeyError(f"no NEHP adapter {name!r}; registered: {', '.join(adapter_names())}")
    return factory(**options)


def adapter_names() -> list[str]:
    return sorted(_FACTORIES)
