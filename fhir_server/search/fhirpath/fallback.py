"""The full FHIRPath engine (fhirpathpy) for expressions outside the compiled subset.

Slower than the compiled paths, so it is only used where ``compiler.CompileError`` says it must be;
``Indexer`` reports which parameters use it (see docs/search.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhirpathpy import compile as fp_compile
from fhirpathpy.models import models


def compile_fallback(expression: str) -> Callable[[dict[str, Any]], list[Any]]:
    """A function evaluating ``expression`` on a resource with the R4 model (choice types resolved)."""
    compiled = fp_compile(expression, models["r4"])

    def evaluate(resource: dict[str, Any]) -> list[Any]:
        result = compiled(resource, {})
        return [v for v in result if v is not None]

    return evaluate
