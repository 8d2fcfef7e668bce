"""R4 core definitions (and later KZ packages) loaded once into lookup structures."""

from fhir_server.definitions._files import CORE_FILES, core_resources, load_core

__all__ = ["CORE_FILES", "core_resources", "load_core"]
