"""Execute compiled paths over a resource's JSON (the hot path of index extraction)."""

from __future__ import annotations

from typing import Any

from fhir_server.search.fhirpath.compiler import BOOL, GET, INDEX, REFTYPE, ROOT, WHERE, Op, reference_type


def walk(ops: tuple[Op, ...], start: Any, root: dict[str, Any]) -> list[Any]:
    """The values one compiled path selects from ``start`` (arrays are flattened, as in FHIRPath)."""
    items: list[Any] = [start]
    for kind, arg in ops:
        if kind == GET:
            nxt: list[Any] = []
            for item in items:
                if type(item) is dict:
                    value = item.get(arg)
                    if value is None:
                        continue
                    if type(value) is list:
                        nxt.extend(v for v in value if v is not None)
                    else:
                        nxt.append(value)
            items = nxt
        elif kind == WHERE:
            items = [item for item in items if arg(item, root)]
        elif kind == REFTYPE:
            items = [item for item in items if reference_type(item, root) in arg]
        elif kind == INDEX:
            items = items[arg : arg + 1]
        elif kind == ROOT:
            items = [root]
        elif kind == BOOL:
            items = [bool(arg(start, root))]
        if not items:
            break
    return items
