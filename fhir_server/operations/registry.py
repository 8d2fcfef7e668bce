"""Operations by name and level (house style §9): one module per operation registers its handler here,
and three routes (system, type, instance) dispatch to them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse, Services
from fhir_server.interactions.request import FhirRequest
from fhir_server.security.context import RequestContext
from fhir_server.security.policy import Verdict
from fhir_server.security.session import AccessSession


@dataclass(slots=True)
class OperationCall:
    """One invocation: the request it runs in (with the caller's access session: operations reach data
    only through it), where it was called, its inputs (query and/or Parameters body)."""

    req: FhirRequest
    name: str
    resource_type: str | None
    resource_id: str | None
    method: str
    query: list[tuple[str, str]]
    body: Any
    extra: dict[str, Any] = field(default_factory=dict)
    start: Verdict = field(default_factory=Verdict.proceed)  # the gate's verdict (dispatch.py)

    @property
    def services(self) -> Services:
        return self.req.services

    @property
    def access(self) -> AccessSession:
        return self.req.access

    @property
    def ctx(self) -> RequestContext:
        return self.req.ctx

    @property
    def base_url(self) -> str:
        return self.req.base_url

    @property
    def pretty(self) -> bool:
        return self.req.pretty

    def params(self) -> dict[str, list[Any]]:
        """Inputs by name: query parameters, then ``Parameters.parameter`` values (``value[x]``,
        ``resource`` or ``part``), each name mapping to every value given."""
        out: dict[str, list[Any]] = {}
        for k, v in self.query:
            if k not in ("_format", "_pretty"):
                out.setdefault(k, []).append(v)
        body = self.body
        if isinstance(body, dict) and body.get("resourceType") == "Parameters":
            for p in body.get("parameter", []):
                if not isinstance(p, dict) or "name" not in p:
                    raise FhirError("invalid", "every Parameters.parameter needs a name", code="required",
                                    expression="Parameters.parameter")
                out.setdefault(p["name"], []).append(_value(p))
        return out

    def one(self, name: str) -> Any:
        values = self.params().get(name)
        if not values:
            return None
        if len(values) > 1:
            raise FhirError("invalid", f"parameter {name!r} may be given once", code="invalid", expression=name)
        return values[0]


def _value(p: dict[str, Any]) -> Any:
    if "resource" in p:
        return p["resource"]
    if "part" in p:
        return {q.get("name"): _value(q) for q in p["part"] if isinstance(q, dict)}
    for k, v in p.items():
        if k.startswith("value"):
            return v
    return None


Handler = Callable[[OperationCall], Awaitable[FhirResponse]]

# (level, resource type or "*", name) -> handler; level is "system", "type" or "instance"
_OPERATIONS: dict[tuple[str, str, str], Handler] = {}


def operation(name: str, *, levels: tuple[str, ...], types: tuple[str, ...] = ("*",)) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for level in levels:
            for t in types:
                _OPERATIONS[(level, t, name)] = fn
        return fn

    return register


def find(level: str, resource_type: str | None, name: str) -> Handler:
    handler = _OPERATIONS.get((level, resource_type or "*", name)) or _OPERATIONS.get((level, "*", name))
    if handler is None:
        where = f"{resource_type}/" if resource_type else ""
        raise FhirError("not_found", f"operation ${name} is not supported at {level} level {where}".strip(),
                        code="not-supported")
    return handler


def registered() -> list[tuple[str, str, str]]:
    return sorted(_OPERATIONS)
