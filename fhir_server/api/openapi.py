"""``GET [base]/openapi.json``: an OpenAPI 3.0 description of the REST API, derived from the
CapabilityStatement (``operations/capabilities.py``) so that the two can never disagree.

Each ``rest.resource`` interaction becomes the HTTP operation FHIR R4 http.html §3.1.0 gives it,
each ``searchParam`` a query parameter, each ``operation`` a ``$name`` path; every answer other than
success is documented as an OperationOutcome (issue 12: the suite runs schemathesis against it).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server import __version__
from fhir_server.api.common import base_url, services
from fhir_server.jsonio import dumps, reload
from fhir_server.operations.capabilities import capability_statement

FHIR_JSON = "application/fhir+json"
_ID = {"type": "string", "pattern": "^[A-Za-z0-9\\-\\.]{1,64}$"}
_RESULT_PARAMS = ("_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total")
_HISTORY_PARAMS = ("_count", "_since", "_at")
_OUTCOME = {"$ref": "#/components/schemas/OperationOutcome"}


def _resource_schema(resource_type: str | None) -> dict[str, Any]:
    kind: dict[str, Any] = {"type": "string"} if resource_type is None else {"type": "string",
                                                                             "enum": [resource_type]}
    return {"type": "object", "required": ["resourceType"], "properties": {"resourceType": kind},
            "additionalProperties": True}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {FHIR_JSON: {"schema": schema}}}


def _op(op_id: str, summary: str, ok: str, *, params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None, media: str = FHIR_JSON) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op_id, "summary": summary,
        "responses": {ok: {"description": "success", **_json(_resource_schema(None))},
                      "default": {"description": "an OperationOutcome saying what was wrong", **_json(_OUTCOME)}},
    }
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = {"required": True, "content": {media: {"schema": body}}}
    return out


def _query(names: list[str]) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}} for n in names]


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _ID}


def _type_paths(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    t = entry["type"]
    codes = {i["code"] for i in entry.get("interaction", [])}
    search = _query([p["name"] for p in entry.get("searchParam", [])] + list(_RESULT_PARAMS))
    rid, vid = _path_param("id"), _path_param("vid")
    patch_body = {"type": "array", "items": {"type": "object", "required": ["op", "path"]}}
    table = [  # (interaction, path, method, operation)
        ("search-type", f"/{t}", "get", lambda: _op(f"search-{t}", f"search {t}", "200", params=search)),
        ("search-type", f"/{t}/_search", "post", lambda: _op(
            f"search-post-{t}", f"search {t} (form)", "200",
            body={"type": "object", "properties": {p["name"]: {"type": "string"} for p in search}},
            media="application/x-www-form-urlencoded")),
        ("create", f"/{t}", "post", lambda: _op(f"create-{t}", f"create a {t}", "201", body=_resource_schema(t))),
        ("read", f"/{t}/{{id}}", "get", lambda: _op(f"read-{t}", f"read a {t}", "200", params=[rid])),
        ("update", f"/{t}/{{id}}", "put", lambda: _op(f"update-{t}", f"update a {t}", "200", params=[rid],
                                                       body=_resource_schema(t))),
        ("patch", f"/{t}/{{id}}", "patch", lambda: _op(f"patch-{t}", f"patch a {t}", "200", params=[rid],
                                                        body=patch_body, media="application/json-patch+json")),
        ("delete", f"/{t}/{{id}}", "delete", lambda: _op(f"delete-{t}", f"delete a {t}", "200", params=[rid])),
        ("history-instance", f"/{t}/{{id}}/_history", "get", lambda: _op(
            f"history-{t}", f"history of a {t}", "200", params=[rid, *_query(list(_HISTORY_PARAMS))])),
        ("vread", f"/{t}/{{id}}/_history/{{vid}}", "get", lambda: _op(f"vread-{t}", f"a version of a {t}", "200",
                                                                       params=[rid, vid])),
        ("history-type", f"/{t}/_history", "get", lambda: _op(f"history-type-{t}", f"history of every {t}", "200",
                                                               params=_query(list(_HISTORY_PARAMS)))),
    ]
    paths: dict[str, dict[str, Any]] = {}
    for code, path, method, build in table:
        if code in codes:
            paths.setdefault(path, {})[method] = build()
    for op in entry.get("operation", []):
        paths[f"/{t}/${op['name']}"] = {"post": _op(f"op-{op['name']}-{t}", op["definition"], "200",
                                                    body=_resource_schema(None))}
    return paths


def _system_paths(rest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    codes = {i["code"] for i in rest.get("interaction", [])}
    paths: dict[str, dict[str, Any]] = {"/metadata": {"get": _op("capabilities", "the CapabilityStatement", "200")}}
    if codes & {"transaction", "batch"}:
        paths["/"] = {"post": _op("transaction", "a batch or transaction Bundle", "200",
                                  body=_resource_schema("Bundle"))}
    if "search-system" in codes:
        paths.setdefault("/", {})["get"] = _op("search-system", "search every type", "200",
                                               params=_query(["_type", "_id", "_lastUpdated", *_RESULT_PARAMS]))
    if "history-system" in codes:
        paths["/_history"] = {"get": _op("history-system", "history of everything", "200",
                                         params=_query(list(_HISTORY_PARAMS)))}
    for op in rest.get("operation", []):
        paths[f"/${op['name']}"] = {"post": _op(f"op-{op['name']}", op["definition"], "200",
                                                body=_resource_schema(None))}
    return paths


def openapi_document(capability: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of a CapabilityStatement's first ``rest`` entry (mode server)."""
    rest = capability["rest"][0]
    paths = _system_paths(rest)
    for entry in rest.get("resource", []):
        paths.update(_type_paths(entry))
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "kzfhir FHIR R4 API", "version": capability.get("software", {}).get("version", __version__),
                 "description": "Generated from the CapabilityStatement at /metadata (FHIR "
                                f"{capability.get('fhirVersion', '4.0.1')})."},
        "paths": paths,
        "components": {"schemas": {"OperationOutcome": {
            "type": "object", "required": ["resourceType", "issue"],
            "properties": {"resourceType": {"type": "string", "enum": ["OperationOutcome"]},
                           "issue": {"type": "array", "minItems": 1, "items": {
                               "type": "object", "required": ["severity", "code"],
                               "properties": {"severity": {"type": "string"}, "code": {"type": "string"}}}}}}}},
    }
    services = rest.get("security", {}).get("service", [])
    if any(c.get("code") == "SMART-on-FHIR" for s in services for c in s.get("coding", [])):
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
        doc["security"] = [{"bearer": []}]
    return doc


router = APIRouter()
_cache: dict[tuple[int, str], bytes] = {}


@router.get("/openapi.json", include_in_schema=False)
async def openapi_route(request: Request) -> Response:
    svc, base = services(request), base_url(request)
    key = (id(svc), base)
    if key not in _cache:  # the statement changes only with the code or configuration
        _cache[key] = dumps(openapi_document(reload(capability_statement(svc, base))))
    return Response(_cache[key], media_type="application/json")
