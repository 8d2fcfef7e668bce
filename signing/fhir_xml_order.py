"""Element order of FHIR R4 types, the data the JSON -> XML serialiser needs.

FHIR XML (R4 §2.5 "XML Representation") requires elements in the order of the StructureDefinition, while JSON
objects are unordered. The table maps a type name or backbone path (``Patient``, ``Bundle.entry``) to its
children in definition order, each with the type to descend into. It is generated once from the R4 core
definitions (``python -m signing.fhir_xml_order DEFINITIONS_DIR``) and shipped in ``signing/data`` so the
package never reads the shared definitions folder at run time; a test checks it is still in sync.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

OrderTable = dict[str, list[list[str]]]
RESOURCES_KEY = "@resources"  # rows [[name]] listing the resource types (their ``id`` is an element)

TABLE_PATH = Path(__file__).parent / "data" / "fhir_r4_xml_order.json.gz"
_FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_NESTING_TYPES = {"BackboneElement", "Element"}


@cache
def load_order_table() -> OrderTable:
    """The shipped table, loaded once."""
    with gzip.open(TABLE_PATH, "rt", encoding="utf-8") as fh:
        table: OrderTable = json.load(fh)
    return table


def _type_code(type_entry: dict[str, Any]) -> str:
    code = str(type_entry["code"])
    if code.startswith("http://hl7.org/fhirpath/System."):
        # Element.id / Extension.url / Resource.id carry their FHIR type in an extension (R4 §2.24.0.2).
        for ext in type_entry.get("extension", []):
            if ext.get("url") == _FHIR_TYPE_EXT:
                return str(ext.get("valueUrl") or ext.get("valueUri"))
        return "string"
    return code


def _children_of_definition(sd: dict[str, Any]) -> OrderTable:
    elements = sd["snapshot"]["element"]
    paths = {e["path"] for e in elements}
    table: OrderTable = {}
    for element in elements:
        path: str = element["path"]
        if "." not in path:
            continue
        parent, name = path.rsplit(".", 1)
        rows = table.setdefault(parent, [])
        if "contentReference" in element:
            rows.append([name, element["contentReference"].lstrip("#")])
            continue
        codes = [_type_code(t) for t in element.get("type", [])]
        if name.endswith("[x]"):
            base = name[:-3]
            rows.extend([base + code[0].upper() + code[1:], code] for code in codes)
        elif len(codes) == 1 and codes[0] in _NESTING_TYPES and any(p.startswith(path + ".") for p in paths):
            rows.append([name, path])
        else:
            rows.append([name, codes[0] if codes else "string"])
    return table


def build_order_table(bundles: Iterable[dict[str, Any]]) -> OrderTable:
    """Build the table from R4 definition Bundles (profiles-types.json, profiles-resources.json)."""
    table: OrderTable = {}
    for bundle in bundles:
        for entry in bundle.get("entry", []):
            sd = entry.get("resource", {})
            if sd.get("resourceType") != "StructureDefinition" or sd.get("derivation") == "constraint":
                continue
            if sd.get("kind") not in ("complex-type", "resource"):
                continue
            table.update(_children_of_definition(sd))
            if sd["kind"] == "resource":
                table.setdefault(RESOURCES_KEY, []).append([sd["type"]])
    table[RESOURCES_KEY] = sorted(table.get(RESOURCES_KEY, []))
    return dict(sorted(table.items()))


def main(argv: list[str] | None = None) -> int:
    """Regenerate the shipped table: ``python -m signing.fhir_xml_order /path/to/fhir-r4``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m signing.fhir_xml_order DEFINITIONS_DIR", file=sys.stderr)
        return 2
    source = Path(args[0])
    bundles = [
        json.loads((source / name).read_text("utf-8"))
        for name in ("profiles-types.json", "profiles-resources.json")
    ]
    data = json.dumps(build_order_table(bundles), separators=(",", ":"), sort_keys=True).encode()
    TABLE_PATH.parent.mkdir(parents=True, exist_ok=True)
    TABLE_PATH.write_bytes(gzip.compress(data, mtime=0))
    print(f"wrote {TABLE_PATH} ({len(data)} bytes uncompressed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
