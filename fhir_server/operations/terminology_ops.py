"""Terminology operations (issue 4 §3): ``ValueSet/$expand``, ``CodeSystem/$lookup``,
``ValueSet/$validate-code``, ``CodeSystem/$validate-code`` and ``ConceptMap/$translate``."""

from __future__ import annotations

from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse
from fhir_server.jsonio import dumps, reload
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.security.policy import Action
from terminology import TerminologyError

_CATEGORY = {"not-found": "not_found", "invalid": "invalid", "not-supported": "unprocessable",
             "too-costly": "unprocessable"}


def _service(call: OperationCall) -> Any:
    return call.services.terminology


def _int(call: OperationCall, name: str, default: int | None) -> int | None:
    value = call.one(name)
    if value is None:
        return default
    if isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit()):
        return int(value)
    raise FhirError("invalid", f"{name} must be a non-negative integer", code="value", expression=name)


async def _instance(call: OperationCall) -> dict[str, Any] | None:
    if call.resource_id is None or call.resource_type is None:
        return None
    stored = await call.access.read(call.resource_type, call.resource_id, action=Action.OPERATION,
                                    interaction="operation")
    resource: dict[str, Any] = reload(stored.data or b"{}")
    return resource


def _coding(call: OperationCall) -> tuple[str | None, str | None, str | None]:
    coding = call.one("coding")
    concept = call.one("codeableConcept")
    if coding is None and isinstance(concept, dict) and isinstance(concept.get("coding"), list) \
            and concept["coding"]:
        coding = concept["coding"][0]
    if isinstance(coding, dict):
        return coding.get("system"), coding.get("code"), coding.get("display")
    return call.one("system"), call.one("code"), call.one("display")


def _answer(call: OperationCall, result: dict[str, Any]) -> FhirResponse:
    return FhirResponse(200, dumps(result, pretty=call.pretty))


def _run(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = fn(*args, **kwargs)
    except TerminologyError as exc:
        raise FhirError(_CATEGORY.get(exc.code, "invalid"), str(exc), code=exc.code) from exc
    return result


@operation("expand", levels=("type", "instance"), types=("ValueSet",))
async def expand(call: OperationCall) -> FhirResponse:
    inline = await _instance(call) or call.resource("valueSet")
    url = call.one("url")
    if inline is None and url is None:
        raise FhirError("invalid", "$expand needs url, a valueSet parameter or a ValueSet instance", code="required")
    result = _run(_service(call).expand, None if inline else url, filter=call.one("filter"),
                  offset=_int(call, "offset", 0) or 0, count=_int(call, "count", None),
                  display_language=call.one("displayLanguage"), valueset=inline)
    return _answer(call, result)


@operation("lookup", levels=("type",), types=("CodeSystem",))
async def lookup(call: OperationCall) -> FhirResponse:
    system, code, _ = _coding(call)
    if not system or not code:
        raise FhirError("invalid", "$lookup needs system and code (or coding)", code="required")
    return _answer(call, _run(_service(call).lookup, system, code, version=call.one("version"),
                              display_language=call.one("displayLanguage")))


@operation("validate-code", levels=("type", "instance"), types=("ValueSet", "CodeSystem"))
async def validate_code(call: OperationCall) -> FhirResponse:
    system, code, display = _coding(call)
    if not code:
        raise FhirError("invalid", "$validate-code needs code (or coding/codeableConcept)", code="required")
    inline = await _instance(call)
    url = call.one("url")
    if call.resource_type == "CodeSystem":
        system = system or (inline or {}).get("url") or url
        inline, url = None, None
    result = _run(_service(call).validate_code, url, system=system, code=code, display=display,
                  valueset=inline or call.resource("valueSet"))
    return _answer(call, result)


@operation("translate", levels=("type", "instance"), types=("ConceptMap",))
async def translate(call: OperationCall) -> FhirResponse:
    system, code, _ = _coding(call)
    if not system or not code:
        raise FhirError("invalid", "$translate needs system and code (or coding)", code="required")
    instance = await _instance(call)
    url = (instance or {}).get("url") or call.one("url")
    return _answer(call, _run(_service(call).translate, url=url, system=system, code=code,
                              source=call.one("source"), target=call.one("target"),
                              target_system=call.one("targetsystem")))
