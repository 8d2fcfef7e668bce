"""Hypothesis: FHIRPath Patch laws on random resources built from the R4 definitions
(tests/formats/strategies.py): replacing an element by itself, moving and moving back, inserting
and deleting again change nothing; deleting removes exactly one item; the input is never changed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fhir_server.definitions import Field, get_definitions
from fhir_server.interactions.fhirpath_patch import apply_fhirpath_patch
from tests.formats import strategies
from tests.formats.exact import exact
from tests.unit.fhirpath_patch_parts import operation, patch, value_part

_SETTINGS = settings(max_examples=50, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@dataclass(frozen=True)
class Element:
    path: str  # FHIRPath to the element, e.g. Patient.name[0].given[1]
    list_path: str | None  # the list it is an item of, e.g. Patient.name[0].given
    size: int  # that list's length
    index: int | None
    field: Field
    value: Any
    meta: Any


def _elements(obj: dict[str, Any], node_key: str, path: str) -> Iterator[Element]:
    fields = get_definitions().nodes[node_key].fields
    for key in dict.fromkeys(k.lstrip("_") for k in obj if k != "resourceType"):
        field = fields[key]
        values, metas = obj.get(key), obj.get("_" + key)
        if not field.is_array:
            yield Element(f"{path}.{key}", None, 1, None, field, values, metas)
            items = [(values, metas, f"{path}.{key}")]
        else:
            values, metas = values or [], metas or []
            size = max(len(values), len(metas))
            items = []
            for i in range(size):
                v, m = (values[i] if i < len(values) else None), (metas[i] if i < len(metas) else None)
                yield Element(f"{path}.{key}[{i}]", f"{path}.{key}", size, i, field, v, m)
                items.append((v, m, f"{path}.{key}[{i}]"))
        for v, m, item_path in items:
            if field.primitive and field.is_array:
                continue  # fhirpathpy cannot step from given[0] into its _given id/extension (docs/formats.md)
            child = v if not field.primitive else m
            if isinstance(child, dict) and field.type_code != "xhtml":
                inner = str(child["resourceType"]) if field.type_code == "Resource" else (
                    field.type_code if field.primitive else str(field.node))
                yield from _elements(child, inner, item_path)


@st.composite
def resource_and_element(draw: st.DrawFn, keep: Callable[[Element], bool] = lambda e: True
                         ) -> tuple[dict[str, Any], Element]:
    resource = draw(strategies.resource(depth=2))
    elements = [e for e in _elements(resource, resource["resourceType"], resource["resourceType"]) if keep(e)]
    assume(elements)
    return resource, draw(st.sampled_from(elements))


def _valued(e: Element) -> bool:
    return e.value is not None


def _in_list(e: Element) -> bool:
    return e.list_path is not None and e.field.type_code != "Resource"


def _in_long_list(e: Element) -> bool:
    return e.list_path is not None and e.size > 1


def _apply(resource: dict[str, Any], *operations: dict[str, Any]) -> dict[str, Any]:
    before = exact(resource)
    out = apply_fhirpath_patch(resource, patch(*operations))
    assert exact(resource) == before
    return out


@_SETTINGS
@given(resource_and_element(_valued))
def test_replacing_an_element_by_its_own_value_changes_nothing(case: tuple[dict[str, Any], Element]):
    resource, element = case
    replaced = _apply(resource, operation("replace", element.path,
                                          value=value_part(element.field, element.value, element.meta)))
    assert exact(replaced) == exact(resource)


@_SETTINGS
@given(resource_and_element(_in_long_list), st.data())
def test_moving_an_item_and_moving_it_back_changes_nothing(case: tuple[dict[str, Any], Element], data: st.DataObject):
    resource, element = case
    assert element.list_path is not None and element.index is not None
    destination = data.draw(st.integers(0, element.size - 1))
    there_and_back = _apply(
        resource, operation("move", element.list_path, source=element.index, destination=destination),
        operation("move", element.list_path, source=destination, destination=element.index))
    assert exact(there_and_back) == exact(resource)


@_SETTINGS
@given(resource_and_element(_in_list), st.data())
def test_inserting_a_copy_and_deleting_it_changes_nothing(case: tuple[dict[str, Any], Element], data: st.DataObject):
    resource, element = case
    assert element.list_path is not None
    at = data.draw(st.integers(0, element.size))
    copy = value_part(element.field, element.value, element.meta)
    inserted = _apply(resource, operation("insert", element.list_path, index=at, value=copy))
    assert exact(_apply(inserted, operation("delete", f"{element.list_path}[{at}]"))) == exact(resource)


@_SETTINGS
@given(resource_and_element(_in_long_list))
def test_deleting_an_item_of_a_list_removes_that_item_only(case: tuple[dict[str, Any], Element]):
    resource, element = case
    assert element.index is not None
    deleted = _apply(resource, operation("delete", element.path))
    container_path = element.path.rsplit(".", 1)[0]
    before = [e for e in _elements(resource, resource["resourceType"], resource["resourceType"])
              if e.list_path == element.list_path]
    after = [e for e in _elements(deleted, deleted["resourceType"], deleted["resourceType"])
             if e.list_path == element.list_path]
    assert [exact((e.value, e.meta)) for e in after] == [
        exact((e.value, e.meta)) for e in before if e.index != element.index], container_path
