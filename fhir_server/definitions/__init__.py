"""R4 core definitions (and later KZ packages) loaded once into lookup structures."""

from fhir_server.definitions._files import CORE_FILES, core_resources, load_core
from fhir_server.definitions.registry import Definitions, get_definitions
from fhir_server.definitions.structure import PRIMITIVE_TYPES, Field, Node
from fhir_server.definitions.valuesets import required_codes

__all__ = [
    "CORE_FILES",
    "PRIMITIVE_TYPES",
    "Definitions",
    "Field",
    "Node",
    "core_resources",
    "get_definitions",
    "load_core",
    "required_codes",
]
