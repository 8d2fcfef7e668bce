"""FHIRPath Patch (FHIR R4 fhirpatch.html): a ``Parameters`` resource of add/insert/delete/replace/move.

Each ``operation`` parameter names its target with a FHIRPath expression, evaluated by fhirpathpy
(R4 model, so ``Observation.value`` finds ``valueQuantity``). fhirpathpy reports where each result
sits (``Patient.name[0].given[1]``); that location is walked in the JSON and in the R4 definitions,
which give the element's type (the value's ``value[x]`` must match it: "Servers SHALL return an error
if the type is wrong") and whether it repeats. Primitive arrays keep their ``_name`` siblings aligned.
The input resource is never changed; decimals pass through as the exact values the body carried.
Validating the result ("SHALL return an error if the outcome is not a valid resource") is the
caller's, as for JSON Patch (``interactions/patch.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import fhirpathpy
from fhirpathpy.models import models

from fhir_server.definitions import Field, get_definitions
from fhir_server.errors import FhirError

_PARTS = {"add": {"path", "name", "value"}, "insert": {"path", "value", "index"}, "delete": {"path"},
          "replace": {"path", "value"}, "move": {"path", "source", "destination"}}
# Parameters.value[x] has no xhtml type, so a narrative div is given as valueString (the official tests).
_XHTML = ("xhtml", "string")
_STEP = re.compile(r"([^.\[\]]+)(?:\[(\d+)\])?")


@dataclass(slots=True)
class Operation:
    where: str  # Parameters.parameter[i], for every error about this operation
    type: str
    path: str
    name: str | None = None
    value: dict[str, Any] | None = None  # the ``value`` part: one value[x], a resource, or parts
    index: int | None = None
    source: int | None = None
    destination: int | None = None


@dataclass(slots=True)
class Slot:
    """Where one element sits: ``container[key]`` (``[index]`` in an array), with its definition;
    ``node`` is the definitions node of ``container`` and ``chain`` the slots of its ancestors."""

    container: dict[str, Any]
    node: str
    key: str
    index: int | None
    field: Field
    chain: list[Slot]


def _fail(op: Operation, message: str) -> FhirError:
    return FhirError("unprocessable", f"{op.where}: {message}", code="processing", expression=op.where)


def _invalid(where: str, message: str) -> FhirError:
    return FhirError("invalid", f"{where}: {message}", code="invalid", expression=where)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value  # str, int, bool, None and jsonio.Decimal are immutable


# --- reading the Parameters --------------------------------------------------------------------

def _value_part(op: Operation, part: dict[str, Any], where: str) -> None:
    fields = get_definitions().nodes["Parameters.parameter"].fields
    keys = list(dict.fromkeys(k.lstrip("_") for k in part if k.lstrip("_").startswith("value")
                              and k.lstrip("_") in fields))  # a primitive may come as _valueX only
    shapes = len(keys) + ("resource" in part) + isinstance(part.get("part"), list)
    if shapes != 1:
        raise _invalid(where, "the value part needs exactly one value[x], a resource or parts")
    op.value = part


_SIMPLE = {"type": "valueCode", "path": "valueString", "name": "valueString", "index": "valueInteger",
           "source": "valueInteger", "destination": "valueInteger"}


def _simple_part(op: Operation, name: str, part: dict[str, Any], where: str) -> None:
    key = _SIMPLE[name]
    value = part.get(key)
    if key == "valueInteger":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _invalid(where, f"the {name} part needs a valueInteger >= 0")
    elif not isinstance(value, str) or not value:
        raise _invalid(where, f"the {name} part needs a {key}")
    setattr(op, name, value)


def _operation(parameter: Any, where: str) -> Operation:
    if not isinstance(parameter, dict) or parameter.get("name") != "operation" \
            or not isinstance(parameter.get("part"), list):
        raise _invalid(where, "each parameter must be an 'operation' with parts (fhirpatch.html)")
    op = Operation(where, "", "")
    seen: set[str] = set()
    for j, part in enumerate(parameter["part"]):
        part_where = f"{where}.part[{j}]"
        name = part.get("name") if isinstance(part, dict) else None
        if name not in ("type", "path", "name", "value", "index", "source", "destination") or name in seen:
            raise _invalid(part_where, f"unknown or repeated part {name!r}")
        seen.add(name)
        if name == "value":
            _value_part(op, part, part_where)
        else:
            _simple_part(op, name, part, part_where)
    if op.type not in _PARTS:
        raise _invalid(where, f"type must be one of {', '.join(_PARTS)}")
    if seen - {"type"} != _PARTS[op.type]:
        raise _invalid(where, f"{op.type} takes the parts {', '.join(sorted(_PARTS[op.type]))}")
    return op


def operations(parameters: Any) -> list[Operation]:
    """The operations of a FHIRPath Patch document; FhirError (400) when it is not one."""
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise _invalid("Parameters", "a FHIRPath Patch is a Parameters resource")
    params = parameters.get("parameter", [])  # none at all is a patch that changes nothing
    if not isinstance(params, list):
        raise _invalid("Parameters.parameter", "must be a list of operations")
    return [_operation(p, f"Parameters.parameter[{i}]") for i, p in enumerate(params)]


# --- finding elements --------------------------------------------------------------------------

# ``div`` is a FHIRPath operator, so Narrative.div must be written `div` (as R4's own dom-6 does); the
# official patch tests write Patient.text.div, so a member named div is quoted before parsing.
_DIV_MEMBER = re.compile(r"\.div(?![\w`(])")


@cache
def _compiled(expression: str) -> Any:
    return fhirpathpy.compile(_DIV_MEMBER.sub(".`div`", expression), models["r4"], {"returnRawData": True})


def _field(node_key: str, obj: dict[str, Any], name: str) -> tuple[str, Field] | None:
    """The JSON key and definition of property ``name`` (a choice's base name finds its typed key)."""
    node = get_definitions().nodes.get(node_key)
    if node is None:
        return None
    if name in node.fields:
        return name, node.fields[name]
    for key in obj:
        f = node.fields.get(key.lstrip("_"))
        if f is not None and f.choice_group is not None and f.choice_group.endswith(f".{name}[x]"):
            return key.lstrip("_"), f
    return None


def _child_node(field: Field, value: Any) -> str:
    if field.type_code == "Resource" and isinstance(value, dict):
        return str(value.get("resourceType"))
    return str(field.node if not field.primitive else field.type_code)


def _slot(doc: dict[str, Any], location: str, op: Operation) -> Slot:
    steps = [(m.group(1), None if m.group(2) is None else int(m.group(2))) for m in _STEP.finditer(location)][1:]
    obj, node_key, chain = doc, str(doc["resourceType"]), list[Slot]()
    for n, (name, index) in enumerate(steps):
        found = _field(node_key, obj, name)
        if found is None:
            break
        key, f = found
        slot = Slot(obj, node_key, key, index, f, list(chain))
        if n == len(steps) - 1:
            return slot
        value = _get(slot)[1 if f.primitive else 0]  # below a primitive is its _name object
        if not isinstance(value, dict):
            break
        chain.append(slot)
        obj, node_key = value, _child_node(f, value)
    raise _fail(op, f"cannot locate {location} in the resource")


# fhirpathpy drops every result object whose only key is "extension" (it takes them for primitive
# extensions), so an element holding only extensions could not be patched; such objects carry a
# marker key while a path is evaluated.
_MARK = "\x00kzfhir"


def _mark(value: Any, marked: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    marked = [] if marked is None else marked
    if isinstance(value, dict):
        for child in value.values():
            _mark(child, marked)
        if list(value) == ["extension"]:
            value[_MARK] = True
            marked.append(value)
    elif isinstance(value, list):
        for child in value:
            _mark(child, marked)
    return marked


def _find(doc: dict[str, Any], expression: str, op: Operation) -> list[Slot] | None:
    """The elements ``expression`` selects, or None when it selects the resource itself."""
    marked = _mark(doc)
    try:
        nodes = _compiled(expression)(doc, {})
    except Exception as exc:  # fhirpathpy raises many kinds of error for a bad expression
        raise _invalid(op.where, f"the path {expression!r} cannot be evaluated: {exc}") from exc
    finally:
        for obj in marked:
            del obj[_MARK]
    locations: list[str] = []
    for node in nodes:
        location = getattr(node, "propName", None)
        if location is None:
            if getattr(node, "data", None) is doc:
                return None
            raise _fail(op, f"the path {expression!r} selects something that is not an element of the resource")
        if location not in locations:
            # fhirpathpy gives a primitive and its _name sibling (or its null partner in an aligned
            # array) as two nodes with one location: they are one element.
            locations.append(location)
    return [_slot(doc, location, op) for location in locations]


def _one(doc: dict[str, Any], op: Operation, expression: str | None = None) -> Slot:
    slots = _find(doc, expression or op.path, op)
    if slots is None or len(slots) != 1:
        raise _fail(op, f"the path {expression or op.path!r} must select exactly one element, not "
                        f"{'the resource' if slots is None else len(slots)}")
    return slots[0]


def _object_at(doc: dict[str, Any], expression: str | None, op: Operation) -> tuple[dict[str, Any], str]:
    """The JSON object ``expression`` selects (the resource for None) and its definitions node. Below a
    primitive that is its ``_name`` object, made if absent (add an extension to ``birthDate``)."""
    if expression is None or (slots := _find(doc, expression, op)) is None:
        return doc, str(doc["resourceType"])
    if len(slots) != 1:
        raise _fail(op, f"the path {expression!r} must select exactly one element, not {len(slots)}")
    slot = slots[0]
    value, meta = _get(slot)
    if slot.field.primitive:
        if meta is None:
            meta = {}
            _set(slot, value, meta)
        return meta, slot.field.type_code
    if not isinstance(value, dict):
        raise _fail(op, f"the path {expression!r} does not select an object")
    return value, _child_node(slot.field, value)


# --- reading and writing one element, keeping primitive arrays aligned with their _name arrays --

def _items(obj: dict[str, Any], key: str, field: Field) -> list[tuple[Any, Any]]:
    values = obj.get(key)
    metas = obj.get("_" + key) if field.primitive else None
    values = values if isinstance(values, list) else ([] if values is None else [values])
    metas = metas if isinstance(metas, list) else ([] if metas is None else [metas])
    return [(values[i] if i < len(values) else None, metas[i] if i < len(metas) else None)
            for i in range(max(len(values), len(metas)))]


def _set_items(obj: dict[str, Any], key: str, field: Field, items: list[tuple[Any, Any]]) -> None:
    for name, column in ((key, [v for v, _ in items]), ("_" + key, [m for _, m in items])):
        if any(x is not None for x in column):
            obj[name] = column if field.is_array else column[0]
        else:
            obj.pop(name, None)


def _get(slot: Slot) -> tuple[Any, Any]:
    items = _items(slot.container, slot.key, slot.field)
    i = slot.index or 0
    return items[i] if i < len(items) else (None, None)


def _set(slot: Slot, value: Any, meta: Any) -> None:
    items = _items(slot.container, slot.key, slot.field)
    i = slot.index or 0
    items[i:i + 1] = [(value, meta)]  # at the end of the list (or of an absent element), an append
    _set_items(slot.container, slot.key, slot.field, items)


def _remove(slot: Slot) -> None:
    items = _items(slot.container, slot.key, slot.field)
    del items[slot.index or 0]
    _set_items(slot.container, slot.key, slot.field, items)
    _prune(slot)


def _prune(slot: Slot) -> None:
    """Objects a delete left empty go too: an element needs content (FHIR R4 json.html)."""
    obj = slot.container
    for parent in reversed(slot.chain):
        if obj:
            return
        value, _ = _get(parent)
        if parent.field.primitive and value is not None:
            _set(parent, value, None)  # only the primitive's _name object was emptied
            return
        items = _items(parent.container, parent.key, parent.field)
        del items[parent.index or 0]
        _set_items(parent.container, parent.key, parent.field, items)
        obj = parent.container


# --- values ------------------------------------------------------------------------------------

def _candidates(node_key: str, name: str) -> list[Field]:
    node = get_definitions().nodes.get(node_key)
    fields = node.fields if node is not None else {}
    if name in fields:
        return [fields[name]]
    return [f for f in fields.values() if f.choice_group is not None and f.choice_group.endswith(f".{name}[x]")]


def _typed(node_key: str, name: str, part: dict[str, Any], op: Operation) -> tuple[Field, Any, Any]:
    """The element ``name`` of ``node_key`` a value part fits, with the JSON value and ``_name`` object."""
    candidates = _candidates(node_key, name)
    if not candidates:
        raise _fail(op, f"{node_key} has no element {name!r}")
    params = get_definitions().nodes["Parameters.parameter"].fields
    for key in dict.fromkeys(k.lstrip("_") for k in part):
        if key.startswith("value") and key in params:
            type_code = params[key].type_code
            fits = [f for f in candidates if f.type_code == type_code or (f.type_code, type_code) == _XHTML]
            if not fits:
                allowed = ", ".join(sorted({f.type_code for f in candidates}))
                raise _fail(op, f"a {type_code} value does not fit {node_key}.{name} ({allowed})")
            return fits[0], _copy(part.get(key)), _copy(part.get("_" + key))
    complex_ = [f for f in candidates if not f.primitive]
    if "resource" in part:
        if not any(f.type_code == "Resource" for f in candidates) or not isinstance(part["resource"], dict):
            raise _fail(op, f"{node_key}.{name} does not hold a resource")
        return candidates[0], _copy(part["resource"]), None
    if len(complex_) != 1 or complex_[0].type_code == "Resource":
        raise _fail(op, f"{node_key}.{name} cannot be given as parts")
    return complex_[0], _from_parts(str(complex_[0].node), part["part"], op), None


def _from_parts(node_key: str, parts: list[Any], op: Operation) -> dict[str, Any]:
    """A complex value written as nested parts, each named by its element (fhirpatch.html)."""
    out: dict[str, Any] = {}
    for part in parts:
        if not isinstance(part, dict) or not isinstance(part.get("name"), str):
            raise _invalid(op.where, "every nested value part needs a name")
        field, value, meta = _typed(node_key, part["name"], part, op)
        items = _items(out, field.name, field)
        if items and not field.is_array:
            raise _fail(op, f"{node_key}.{field.name} takes one value")
        _set_items(out, field.name, field, [*items, (value, meta)])
    return out


# --- the operations ----------------------------------------------------------------------------

def _add(doc: dict[str, Any], op: Operation) -> None:
    container, node = _object_at(doc, op.path, op)
    assert op.name is not None and op.value is not None
    field, value, meta = _typed(node, op.name, op.value, op)
    items = _items(container, field.name, field)
    if not field.is_array and (items or any(f.name in container or "_" + f.name in container
                                            for f in _candidates(node, op.name))):
        raise _fail(op, f"{node}.{op.name} already has a value; add only adds to lists or absent elements")
    _set_items(container, field.name, field, [*items, (value, meta)])


def _insert(doc: dict[str, Any], op: Operation) -> None:
    container, node, key, field = _collection(doc, op)
    assert op.value is not None and op.index is not None
    fits, value, meta = _typed(node, key, op.value, op)
    items = _items(container, key, field)
    if op.index > len(items):
        raise _fail(op, f"index {op.index} is past the end of {key} ({len(items)} items)")
    items.insert(op.index, (value, meta))
    _set_items(container, key, fits, items)


def _delete(doc: dict[str, Any], op: Operation) -> None:
    slots = _find(doc, op.path, op)
    if slots is None or len(slots) > 1:
        raise _fail(op, f"the path {op.path!r} must select at most one element to delete")
    if slots:  # nothing found: nothing to delete (fhirpatch.html "delete … (if found)")
        _remove(slots[0])


def _replace(doc: dict[str, Any], op: Operation) -> None:
    slot = _one(doc, op)
    assert op.value is not None
    name = slot.field.choice_group.rsplit(".", 1)[1][:-3] if slot.field.choice_group else slot.key
    field, value, meta = _typed(slot.node, name, op.value, op)
    if field.name != slot.key:  # a choice element takes another type: valueQuantity -> valueString
        slot.container.pop(slot.key, None)
        slot.container.pop("_" + slot.key, None)
        slot = Slot(slot.container, slot.node, field.name, None, field, slot.chain)
    _set(slot, value, meta)


def _move(doc: dict[str, Any], op: Operation) -> None:
    container, _, key, field = _collection(doc, op)
    assert op.source is not None and op.destination is not None
    items = _items(container, key, field)
    if op.source >= len(items) or op.destination >= len(items):
        raise _fail(op, f"source {op.source} and destination {op.destination} must be below {len(items)}")
    items.insert(op.destination, items.pop(op.source))
    _set_items(container, key, field, items)


_APPLY = {"add": _add, "insert": _insert, "delete": _delete, "replace": _replace, "move": _move}


def apply_fhirpath_patch(resource: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """``resource`` with the FHIRPath Patch ``parameters`` applied in order, as a new dict.

    FhirError ``invalid`` (400) when ``parameters`` is not a FHIRPath Patch document, ``unprocessable``
    (422) when an operation cannot be applied (no or several targets, wrong value type, index out of
    range); both name ``Parameters.parameter[i]``. ``resource`` itself is never changed."""
    ops = operations(parameters)
    doc = _copy(resource)
    for op in ops:
        _APPLY[op.type](doc, op)
    return doc
def _collection(doc: dict[str, Any], op: Operation) -> tuple[dict[str, Any], str, str, Field]:
    """The list ``op.path`` names, for insert and move: its container, node, key and definition."""
    slots = _find(doc, op.path, op)
    if slots:
        first = slots[0]
        if any(s.container is not first.container or s.key != first.key for s in slots):
            raise _fail(op, f"the path {op.path!r} must select one list")
        container, node, key, field = first.container, first.node, first.key, first.field
    else:  # an empty or absent list: its container is what the path's last step starts from
        parent, _, name = _split(op.path)
        container, node = _object_at(doc, parent, op)
        found = _field(node, container, name)
        if found is None:
            raise _fail(op, f"{node} has no element {name!r}")
        key, field = found
    if not field.is_array:
        raise _fail(op, f"{key} does not repeat; {op.type} works on lists")
    return container, node, key, field


def _split(path: str) -> tuple[str | None, str, str]:
    """``Patient.name[0].given`` → (``Patient.name[0]``, ``.``, ``given``), outside brackets and quotes."""
    depth, quote = 0, ""
    for i in range(len(path) - 1, -1, -1):
        c = path[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'`\"":
            quote = c
        elif c in ")]":
            depth += 1
        elif c in "([":
            depth -= 1
        elif c == "." and depth == 0:
            return path[:i], ".", path[i + 1:]
    return None, "", path
