"""One NDJSON line of an ``$import`` made ready for the write executor, off the event loop.

``prepare_lines`` runs in a validation worker (a thread, or a process of ``import_pool.py``): it parses each
line (decimals kept exact, ``jsonio``), checks it is a resource of the input's type with a valid id, and runs
**the validation every write runs** (``interactions/write.validate``: structure, profiles, invariants as the
settings say). What it returns is either a :class:`Prepared` resource or the :class:`Refused` line with its
FhirError; nothing is written here.

A line with an ``id`` is an update of ``[type]/[id]`` (the import proposal: "client-supplied IDs should be
preserved"), one without is a create. Both then meet the same executor and access policy as ``PUT`` and
``POST`` (docs/bulk-import.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fhir_server import jsonio
from fhir_server.errors import FhirError
from fhir_server.interactions.base import Services, check_id, check_type
from fhir_server.interactions.write import validate


@dataclass(slots=True)
class Prepared:
    number: int  # line number in its file, from 1
    method: Literal["PUT", "POST"]
    resource_type: str
    resource_id: str | None
    resource: dict[str, Any]
    signers: frozenset[str] = field(default_factory=frozenset)


@dataclass(slots=True)
class Refused:
    number: int
    error: FhirError


def prepare_line(services: Services, number: int, data: bytes | None, expected: str | None,
                 input_source: str | None, max_line: int) -> Prepared | Refused:
    try:
        if data is None:
            raise FhirError("too_large", f"the line is longer than {max_line} bytes (setting import_max_line_bytes)",
                            code="too-costly")
        try:
            resource = jsonio.loads(data)
        except FhirError:
            raise
        except ValueError as exc:
            raise FhirError("invalid", f"the line is not JSON: {str(exc)[:200]}", code="structure") from exc
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise FhirError("invalid", "the line is not a FHIR resource (a JSON object with resourceType)",
                            code="structure")
        rtype = resource["resourceType"]
        check_type(services, rtype)
        if expected is not None and rtype != expected:
            raise FhirError("invalid", f"resourceType {rtype[:64]!r} in a file of {expected} resources",
                            code="invalid", expression="resourceType")
        rid = resource.get("id")
        if rid is not None:
            if not isinstance(rid, str):
                raise FhirError("invalid", "id must be a string", code="value", expression="id")
            check_id(rid)
        if input_source is not None:
            _with_source(resource, input_source)
        method: Literal["PUT", "POST"] = "PUT" if rid is not None else "POST"
        validate(services, resource, mode="update" if rid is not None else "create")
        return Prepared(number, method, rtype, rid, resource)
    except FhirError as exc:
        return Refused(number, exc)
    except (RecursionError, TypeError, ValueError) as exc:  # a validator tripping over odd content
        return Refused(number, FhirError("invalid", f"the resource could not be validated: {type(exc).__name__}",
                                         code="processing"))


def _with_source(resource: dict[str, Any], input_source: str) -> None:
    """The proposal's "Preserving Resource provenance": ``meta.source`` is the inputSource when absent."""
    meta = resource.get("meta")
    if meta is None:
        resource["meta"] = {"source": input_source}
    elif isinstance(meta, dict) and "source" not in meta:
        resource["meta"] = {**meta, "source": input_source}


def prepare_lines(services: Services, batch: list[tuple[int, bytes | None]], expected: str | None,
                  input_source: str | None, max_line: int) -> list[Prepared | Refused]:
    return [prepare_line(services, number, data, expected, input_source, max_line) for number, data in batch]
