"""Building FHIRPath Patch documents in tests: operations, and any element's value as a value part."""

from __future__ import annotations

from typing import Any

from fhir_server.definitions import Field, get_definitions

PARAMS = get_definitions().nodes["Parameters.parameter"].fields


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(operations)}


def operation(kind: str, path: str, *, name: str | None = None, value: dict[str, Any] | None = None,
              **integers: int) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    if name is not None:
        parts.append({"name": "name", "valueString": name})
    parts += [{"name": key, "valueInteger": number} for key, number in integers.items()]
    if value is not None:
        parts.append({"name": "value", **value})
    return {"name": "operation", "part": parts}


def _type_key(type_code: str) -> str:
    return "value" + (type_code[0].upper() + type_code[1:] if type_code != "xhtml" else "String")


def value_part(field: Field, value: Any, meta: Any = None) -> dict[str, Any]:
    """The ``value`` part content (without its name) that carries ``value`` for ``field``."""
    if field.type_code == "Resource":
        return {"resource": value}
    key = _type_key(field.type_code)
    if field.primitive or key in PARAMS:
        out: dict[str, Any] = {} if value is None else {key: value}
        if meta is not None:
            out["_" + key] = meta
        return out
    return {"part": parts_of(str(field.node), value)}


def parts_of(node_key: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
    """An object of a backbone (or any complex) type written as nested parts, one per item."""
    fields = get_definitions().nodes[node_key].fields
    out: list[dict[str, Any]] = []
    for key in dict.fromkeys(k.lstrip("_") for k in obj):
        field = fields[key]
        values, metas = obj.get(key), obj.get("_" + key)
        if not field.is_array:
            out.append({"name": key, **value_part(field, values, metas)})
            continue
        values, metas = values or [], metas or []
        for i in range(max(len(values), len(metas))):
            item = values[i] if i < len(values) else None
            item_meta = metas[i] if i < len(metas) else None
            out.append({"name": key, **value_part(field, item, item_meta)})
    return out
