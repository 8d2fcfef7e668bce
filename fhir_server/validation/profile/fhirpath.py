"""FHIRPath invariant evaluation: natives first, fhirpathpy (compiled once, cached) otherwise.

fhirpathpy 2.x lacks ``hasValue()``, ``htmlChecks()`` and ``resolve()``, all used by R4 core invariants;
they are supplied here as user functions, together with the KZ functions ``kzIinValid()`` and
``kzBinValid()`` (profiles/identifiers.py). ``resolve()`` only knows the *type* of a literal reference
(``Practitioner/1`` → a Practitioner) — enough for ``ctm-1``'s ``member.resolve() is Practitioner``.

Semantics follow the HL7 reference validator: an invariant holds only if it evaluates to exactly
``true``; an empty result is a violation (hence the ``bdl-8`` erratum guard).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from fhir_server.validation.profile.natives import NATIVES, Env, html_checks_ok, html_has_content
from profiles.identifiers import is_valid_bin, is_valid_iin

__all__ = ["EvaluationError", "evaluate_invariant", "evaluate_with_engine", "user_functions"]

_R4_MODEL = models["r4"]
_ADDRESS = re.compile(r" object at 0x[0-9a-fA-F]+>")


class EvaluationError(RuntimeError):
    """The expression could not be evaluated (unsupported function, engine bug)."""


def _has_value(inputs: list[Any]) -> bool:
    return len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], dict | list)


def _resolve(inputs: list[Any]) -> list[Any]:
    out = []
    for item in inputs:
        reference = item.get("reference") if isinstance(item, dict) else item
        if isinstance(reference, str) and "/" in reference and not reference.startswith("#"):
            parts = reference.split("/_history/")[0].split("/")
            if len(parts) >= 2 and parts[-2][:1].isupper():
                out.append(ResourceNode.create_node({"resourceType": parts[-2]}, parts[-2]))
    return out


def _html_checks(inputs: list[Any]) -> bool:
    return len(inputs) == 1 and html_checks_ok(inputs[0]) and html_has_content(inputs[0])


def user_functions(relaxed_iin: bool) -> dict[str, dict[str, Any]]:
    """The fhirpathpy ``userInvocationTable`` with our additions."""

    def iin(inputs: list[Any]) -> list[bool]:
        return [isinstance(v, str) and is_valid_iin(v, relaxed=relaxed_iin) for v in inputs]

    def bin_(inputs: list[Any]) -> list[bool]:
        return [isinstance(v, str) and is_valid_bin(v, relaxed=relaxed_iin) for v in inputs]

    no_args: dict[int, list[str]] = {0: []}
    return {
        "hasValue": {"fn": _has_value, "arity": no_args},
        "htmlChecks": {"fn": _html_checks, "arity": no_args},
        "resolve": {"fn": _resolve, "arity": no_args},
        "kzIinValid": {"fn": iin, "arity": no_args},
        "kzBinValid": {"fn": bin_, "arity": no_args},
    }


def _ignore_trace(label: str, value: Any) -> None:
    return None


@lru_cache(maxsize=4096)
def _compiled(expression: str, relaxed_iin: bool) -> Callable[..., list[Any]]:
    # trace() is used by dom-3 and ref-1; without a callback fhirpathpy prints to stdout.
    options = {"userInvocationTable": user_functions(relaxed_iin), "traceFn": _ignore_trace}
    return fhirpathpy.compile(expression, _R4_MODEL, options)


def evaluate_invariant(key: str, expression: str, focus: Any, type_path: str, env: Env) -> bool:
    """True when the invariant holds for ``focus`` (an element value typed as ``type_path``)."""
    native = NATIVES.get((key, expression))
    if native is not None:
        return native(focus, env)
    return evaluate_with_engine(key, expression, focus, type_path, env)


def evaluate_with_engine(key: str, expression: str, focus: Any, type_path: str, env: Env) -> bool:
    """The invariant through fhirpathpy (compiled once per expression), whether or not a native exists."""
    try:
        function = _compiled(expression, env.relaxed_iin)
        # A resource is passed as is: fhirpathpy types it from resourceType, and only then resolves
        # expressions that start with the type name (``Appointment.status``, app-4).
        is_resource = isinstance(focus, dict) and "resourceType" in focus
        node = focus if is_resource else ResourceNode.create_node(focus, type_path)
        result = function(node, {"resource": env.resource, "rootResource": env.root})
    except Exception as exc:  # fhirpathpy raises bare Exception for unsupported constructs
        # its messages may show the nodes it met as ``<… object at 0x…>``: the same finding reads the same
        raise EvaluationError(f"{key}: {_ADDRESS.sub('>', str(exc))}") from exc
    return result == [True]
