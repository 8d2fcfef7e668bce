"""The published JSON Schema of the NEHP JSON message and a validator for the subset of it we use.

``jsonschema`` is not a dependency of the project, so this module checks the keywords ``schema-v1.json``
uses (JSON Schema draft 2020-12): ``type``, ``properties``, ``required``, ``additionalProperties`` (bool),
``items``, ``minItems``, ``minProperties``, ``enum``, ``const``, ``minLength``, ``pattern`` and local
``$ref`` (``#/$defs/...``). Any other keyword raises, so the schema cannot silently use one this
validator ignores. A full validator gives the same answers for this schema.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "schema-v1.json"
SCHEMA_ID = "https://fhir.kzfhir.kz/mappings/nehp/schema-v1.json"

_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description"})
_CHECKED = frozenset({"type", "properties", "required", "additionalProperties", "items", "minItems",
                      "minProperties", "enum", "const", "minLength", "pattern", "$ref"})
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "integer": (int,), "number": (int, float), "null": (type(None),),
}


@cache
def load_schema() -> dict[str, Any]:
    text = resources.files("mappings.nehp").joinpath(SCHEMA_FILE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False  # JSON Schema: booleans are not numbers
    return isinstance(value, _TYPES[name])


class _Validator:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.errors: list[str] = []

    def resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"only local $defs references are supported, not {ref}")
        target: dict[str, Any] = self.root["$defs"][ref.removeprefix("#/$defs/")]
        return target

    def check(self, value: Any, schema: dict[str, Any], at: str) -> None:
        unknown = set(schema) - _CHECKED - _ANNOTATIONS
        if unknown:
            raise ValueError(f"schema keyword(s) {sorted(unknown)} at {at or '/'} are not supported here")
        if "$ref" in schema:
            self.check(value, self.resolve(schema["$ref"]), at)
        if not self._scalar(value, schema, at):
            return
        if isinstance(value, dict):
            self._object(value, schema, at)
        elif isinstance(value, list):
            self._array(value, schema, at)

    def _scalar(self, value: Any, schema: dict[str, Any], at: str) -> bool:
        """type/const/enum/string rules; False when the type is wrong (no point going deeper)."""
        types = schema.get("type")
        names = [types] if isinstance(types, str) else types
        if names is not None and not any(_is_type(value, n) for n in names):
            self.errors.append(f"{at or '/'}: expected {' or '.join(names)}, got {type(value).__name__}")
            return False
        if "const" in schema and value != schema["const"]:
            self.errors.append(f"{at or '/'}: must be {schema['const']!r}")
        if "enum" in schema and value not in schema["enum"]:
            self.errors.append(f"{at or '/'}: {value!r} is not one of {schema['enum']}")
        if isinstance(value, str):
            if len(value) < schema.get("minLength", 0):
                self.errors.append(f"{at or '/'}: shorter than {schema['minLength']}")
            if "pattern" in schema and re.search(schema["pattern"], value) is None:
                self.errors.append(f"{at or '/'}: {value!r} does not match {schema['pattern']}")
        return True

    def _object(self, value: dict[str, Any], schema: dict[str, Any], at: str) -> None:
        properties: dict[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                self.errors.append(f"{at}/{name}: required property is missing")
        if len(value) < schema.get("minProperties", 0):
            self.errors.append(f"{at or '/'}: needs at least {schema['minProperties']} properties")
        for name, item in value.items():
            if name in properties:
                self.check(item, properties[name], f"{at}/{name}")
            elif schema.get("additionalProperties", True) is False:
                self.errors.append(f"{at}/{name}: property is not allowed")

    def _array(self, value: list[Any], schema: dict[str, Any], at: str) -> None:
        if len(value) < schema.get("minItems", 0):
            self.errors.append(f"{at or '/'}: needs at least {schema['minItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                self.check(item, schema["items"], f"{at}/{i}")


def validate(instance: Any, schema: dict[str, Any] | None = None) -> list[str]:
    """Violations as ``/json/pointer: message`` strings; empty means valid. Defaults to schema-v1."""
    root = schema if schema is not None else load_schema()
    validator = _Validator(root)
    validator.check(instance, root, "")
    return validator.errors
