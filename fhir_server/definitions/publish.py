"""Publishes the server's own conformance resources into the store at start-up, so that clients can
read and search them like any other resource: the Kazakhstan IG (StructureDefinitions,
SearchParameters, NamingSystems, the ImplementationGuide), its terminology (CodeSystems, ValueSets,
ConceptMaps) and the OperationDefinitions of this server's own operations.

A resource is written only when it is missing or its content changed (a new release), so restarts
leave versions alone; the R4 core definitions stay in the package (they are not copied).
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources as importlib_resources
from typing import Any

import orjson

from fhir_server.interactions.base import Services
from fhir_server.interactions.write import store_version
from fhir_server.storage.protocols import TxView
from fhir_server.validation.uploaded import install, load_stored

_SKIP = ("meta", "text")


def _json_files(package: str) -> Iterator[dict[str, Any]]:
    root = importlib_resources.files(package)
    stack = [root]
    while stack:
        folder = stack.pop()
        for item in folder.iterdir():
            if item.is_dir():
                stack.append(item)
            elif item.name.endswith(".json") and item.name.split("-")[0][:1].isupper():
                data = orjson.loads(item.read_bytes())
                if isinstance(data, dict) and "resourceType" in data and "id" in data:
                    yield data


def own_resources() -> list[dict[str, Any]]:
    from profiles import load_package

    out = [dict(r) for r in load_package()]
    out += list(_json_files("terminology.data"))
    out += list(_json_files("fhir_server.definitions.operations"))
    return out


def _content(resource: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in resource.items() if k not in _SKIP}, option=orjson.OPT_SORT_KEYS)


async def publish(services: Services) -> int:
    """Write missing or changed conformance resources in one unit; returns how many were written."""
    items = own_resources()

    def unit(view: TxView) -> int:
        written = 0
        for resource in items:
            rtype, rid = resource["resourceType"], resource["id"]
            current = view.current(rtype, rid)
            if current is not None and not current.deleted and current.data is not None \
                    and _content(orjson.loads(current.data)) == _content(resource):
                continue
            version = 1 if current is None else current.version + 1
            store_version(view, services, resource, rtype, rid, version, "PUT")
            written += 1
        load_stored(view, services)  # StructureDefinitions uploaded earlier are profiles again
        return written

    install(services)  # and those uploaded from now on
    count: int = await services.store.transaction(unit)
    return count
