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
    _params: dict[str, list[Any]] | None = field(default=None, init=False, repr=False)

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
        ``resource`` or ``part``), each name mapping to every value given; read and checked once per call
        (handlers ask ``one`` for each input)."""
        if self._params is not None:
            return self._params
        out: dict[str, list[Any]] = {}
        for k, v in self.query:
            if k not in ("_format", "_pretty"):
                out.setdefault(k, []).append(v)
        body = self.body
        if isinstance(body, dict) and body.get("resourceType") == "Parameters":
            parameters = body.get("parameter", [])
            if not isinstance(parameters, list):
                raise FhirError("invalid", "Parameters.parameter must be a list", code="structure",
                                expression="Parameters.parameter")
            for i, p in enumerate(parameters):
                if not isinstance(p, dict) or not isinstance(p.get("name"), str):
                    raise FhirError("invalid", "every Parameters.parameter needs a name", code="required",
                                    expression=f"Parameters.parameter[{i}]")
                out.setdefault(p["name"], []).append(_value(p, f"Parameters.parameter[{i}]"))
        self._params = out
        return out

    def one(self, name: str) -> Any:
        values = self.params().get(name)
        if not values:
            return None
        if len(values) > 1:
            raise FhirError("invalid", f"parameter {name!r} may be given once", code="invalid", expression=name)
        return values[0]

    def resource(self, name: str) -> dict[str, Any] | None:
        """A parameter whose type is a resource (``Parameters.parameter.resource``), checked against its
        type's definition first. A resource cannot be given in the URL or as a ``value[x]`` (FHIR R4
        operations §3.1.0.7: GET carries primitive parameters only), so anything else is refused with the
        parameter named."""
        value = self.one(name)
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
            raise FhirError("invalid", f"parameter {name!r} is a resource: POST it as Parameters.parameter.resource",
                            code="invalid", expression=name)
        issues = [i for i in self.services.validator.validate(value) if i.is_error]
        if issues:
            raise FhirError("invalid", f"parameter {name!r} is not a valid {value['resourceType']}",
                            code="invalid", issues=issues)
        return value


#: The JSON kind of each primitive ``value[x]`` (FHIR R4 JSON §2.6.2); any other ``value[x]`` is a
#: complex datatype (Coding, Reference, Period ...), a JSON object.
_PRIMITIVE_KINDS: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("String", "Uri", "Url", "Canonical", "Code", "Id", "Oid", "Uuid", "Markdown", "Base64Binary",
                     "Date", "DateTime", "Instant", "Time"), (str,)),
    "Boolean": (bool,), "Integer": (int,), "UnsignedInt": (int,), "PositiveInt": (int,), "Decimal": (int, float),
}


def _value(p: dict[str, Any], path: str) -> Any:
    """One parameter's value, its JSON kind checked against its type, so that an operation never meets
    an object where a code should be (issue 12: a type-confused Parameters answered 500)."""
    if "resource" in p:
        if not isinstance(p["resource"], dict):
            raise FhirError("invalid", "Parameters.parameter.resource must be a resource (a JSON object)",
                            code="structure", expression=f"{path}.resource")
        return p["resource"]
    if "part" in p:
        if not isinstance(p["part"], list):
            raise FhirError("invalid", "Parameters.parameter.part must be a list", code="structure",
                            expression=f"{path}.part")
        for j, q in enumerate(p["part"]):
            if not isinstance(q, dict) or not isinstance(q.get("name"), str):
                raise FhirError("invalid", "every Parameters.parameter.part needs a name", code="required",
                                expression=f"{path}.part[{j}]")
        return {q["name"]: _value(q, f"{path}.part[{j}]") for j, q in enumerate(p["part"])}
    for k, v in p.items():
        if k.startswith("value") and len(k) > 5:
            kinds = _PRIMITIVE_KINDS.get(k[5:], (dict,))
            if (isinstance(v, bool) and bool not in kinds) or not isinstance(v, kinds):
                raise FhirError("invalid", f"{k} must be {_kind_name(kinds)}", code="structure",
                                expression=f"{path}.{k}")
            return v
    return None


def _kind_name(kinds: tuple[type, ...]) -> str:
    return {str: "a string", bool: "true or false", int: "an integer", dict: "a JSON object"}.get(kinds[0], "a number")


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
