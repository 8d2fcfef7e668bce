"""The FHIRPath subset used by search expressions: parse once, compile to typed JSON paths per
resource type, and fall back to the full engine (fhirpathpy) where the subset is not enough."""

from fhir_server.search.fhirpath.compiler import CompiledPath, CompileError, compile_expression, compile_relative
from fhir_server.search.fhirpath.fallback import compile_fallback
from fhir_server.search.fhirpath.parser import ParseError, parse
from fhir_server.search.fhirpath.walker import walk

__all__ = [
    "CompileError",
    "CompiledPath",
    "ParseError",
    "compile_expression",
    "compile_fallback",
    "compile_relative",
    "parse",
    "walk",
]
