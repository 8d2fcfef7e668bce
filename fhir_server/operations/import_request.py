"""The ``$import`` kick-off request (Bulk Data Import proposal, smart-on-fhir/bulk-import ``import.md``)
as an :class:`ImportRequest`.

Two body shapes name the files, and each names them the same way (``input``: a resource type and a url):

* the draft's JSON manifest (``Content-Type: application/json``)::

    {"inputFormat": "application/fhir+ndjson", "inputSource": "https://mis.example.kz",
     "input": [{"type": "Patient", "url": "synthea/Patient.ndjson"}]}

* a FHIR ``Parameters`` resource (``application/fhir+json``), the form HAPI FHIR's ``$import`` reads::

    {"resourceType": "Parameters", "parameter": [
      {"name": "inputFormat", "valueCode": "application/fhir+ndjson"},
      {"name": "inputSource", "valueUri": "https://mis.example.kz"},
      {"name": "input", "part": [{"name": "type", "valueCode": "Patient"},
                                 {"name": "url", "valueUri": "synthea/Patient.ndjson"}]}]}

A third way posts the NDJSON itself (``Content-Type: application/fhir+ndjson``): the body is the one input
(``api/routes/bulk_import.py``). ``url`` names a file or folder inside the operator's import root
(``import_sources.py``); fetching from other servers is not supported (it would let any client make the
server open connections anywhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.errors import FhirError

NDJSON_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
POSTED = "request-body"  # the url of the input a posted NDJSON body becomes
_MAX_INPUTS = 1000
_STORAGE_TYPES = ("file", "https")  # https: the draft's default name; only paths in the import root are read


@dataclass(frozen=True, slots=True)
class ImportInput:
    type: str | None  # the resource type every line must have (None: any type, for a folder or a posted body)
    url: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "url": self.url}


@dataclass(frozen=True, slots=True)
class ImportRequest:
    inputs: tuple[ImportInput, ...]
    input_source: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"input": [i.to_json() for i in self.inputs], "inputSource": self.input_source}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ImportRequest:
        return cls(tuple(ImportInput(i.get("type"), i["url"]) for i in doc["input"]), doc.get("inputSource"))


def _bad(message: str, expression: str, code: str = "invalid") -> FhirError:
    return FhirError("invalid", message, code=code, expression=expression)


def _format(value: Any, where: str) -> None:
    if value is not None and value not in NDJSON_FORMATS:
        raise FhirError("invalid", f"inputFormat {str(value)[:80]!r} is not supported; use application/fhir+ndjson",
                        code="not-supported", expression=where)


def _input(raw: dict[str, Any], where: str, is_type: Any) -> ImportInput:
    rtype, url = raw.get("type"), raw.get("url")
    if rtype is not None and (not isinstance(rtype, str) or not is_type(rtype)):
        raise _bad(f"{where}: unknown resource type {str(rtype)[:80]!r}", f"{where}.type", "not-supported")
    if not isinstance(url, str) or not url:
        raise _bad(f"{where}: url is required", f"{where}.url", "required")
    return ImportInput(rtype, url)


def _parts(parameter: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parameter.get("part") or []:
        if isinstance(part, dict) and isinstance(part.get("name"), str):
            out[part["name"]] = next((v for k, v in part.items() if k.startswith("value")), None)
    return out


def parse_request(body: Any, is_type: Any) -> ImportRequest:
    """The kick-off body (Parameters or the draft's manifest) as a request; 400 with the element for
    anything this server does not do."""
    if not isinstance(body, dict):
        raise _bad("the $import body must be a Parameters resource or a JSON import manifest", "", "structure")
    if body.get("resourceType") == "Parameters":
        return _from_parameters(body, is_type)
    if "resourceType" in body:
        raise _bad(f"the $import body must be Parameters, not {str(body['resourceType'])[:60]}", "resourceType")
    _format(body.get("inputFormat"), "inputFormat")
    storage = body.get("storageDetail")
    if isinstance(storage, dict):
        _storage(storage.get("type"), "storageDetail.type")
    raw_inputs = body.get("input")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise _bad("input: at least one {type, url} is required", "input", "required")
    if len(raw_inputs) > _MAX_INPUTS:
        raise _bad(f"input: at most {_MAX_INPUTS} inputs per job", "input", "too-costly")
    inputs = tuple(_input(raw if isinstance(raw, dict) else {}, f"input[{i}]", is_type)
                   for i, raw in enumerate(raw_inputs))
    return ImportRequest(inputs, _source(body.get("inputSource"), "inputSource"))


def _storage(value: Any, where: str) -> None:
    if value is not None and value not in _STORAGE_TYPES:
        raise FhirError("invalid", f"storageDetail type {str(value)[:60]!r} is not supported: this server reads "
                        "files from its import folder only", code="not-supported", expression=where)


def _source(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 2000:
        raise _bad("inputSource must be a uri", where)
    return value


def _from_parameters(body: dict[str, Any], is_type: Any) -> ImportRequest:
    inputs: list[ImportInput] = []
    source: str | None = None
    for i, p in enumerate(body.get("parameter") or []):
        where = f"Parameters.parameter[{i}]"
        name = p.get("name") if isinstance(p, dict) else None
        if name == "inputFormat":
            _format(p.get("valueCode", p.get("valueString")), where)
        elif name == "inputSource":
            source = _source(p.get("valueUri", p.get("valueString")), where)
        elif name == "storageDetail":
            _storage(_parts(p).get("type"), where)
        elif name == "input":
            if len(inputs) >= _MAX_INPUTS:
                raise _bad(f"at most {_MAX_INPUTS} inputs per job", where, "too-costly")
            inputs.append(_input(_parts(p), where, is_type))
        else:
            raise FhirError("invalid", f"$import has no parameter {str(name)[:60]!r}", code="not-supported",
                            expression=where)
    if not inputs:
        raise _bad("at least one input parameter (type, url) is required", "Parameters.parameter", "required")
    return ImportRequest(tuple(inputs), source)
