"""The KZ IG examples (profiles/examples) as the kit's test data, and the rewriting that makes them fit
a foreign server: references to ids the server assigned, and IINs unique to this run."""

from __future__ import annotations

import copy
import random
import re
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any, NamedTuple

import orjson

from profiles import examples_dir
from profiles.identifiers import iin_check_digit, is_valid_iin

__all__ = [
    "BIN_SYSTEM",
    "IIN_SYSTEM",
    "MARKER_SYSTEM",
    "Ref",
    "fresh_iin",
    "identifier_value",
    "invalid_example",
    "invalid_rule",
    "parse_ref",
    "references",
    "rewrite",
    "valid_example",
    "valid_refs",
    "walk",
]

IIN_SYSTEM = "https://fhir.kzfhir.kz/sid/iin"
BIN_SYSTEM = "https://fhir.kzfhir.kz/sid/bin"
# The identifier system the kit adds to find its own resources: new for each run of the kit, so a server
# cannot recognise the kit's test data by a fixed value and treat it differently from real records.
MARKER_SYSTEM = f"urn:uuid:{uuid.uuid4()}"
_REF = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9.\-]{1,64})(/_history/[A-Za-z0-9.\-]{1,64})?$")


class Ref(NamedTuple):
    """A relative literal reference ``Type/id[/_history/v]``."""

    type: str
    id: str
    history: str  # "/_history/v" or ""

    @property
    def key(self) -> str:
        return f"{self.type}/{self.id}"


def parse_ref(reference: str) -> Ref | None:
    match = _REF.match(reference)
    return Ref(match[1], match[2], match[3] or "") if match else None


@cache
def _valid() -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for path in sorted((examples_dir() / "valid").glob("*.json")):
        raw = path.read_bytes()
        resource = orjson.loads(raw)
        found[f"{resource['resourceType']}/{resource['id']}"] = raw
    return found


def valid_refs(resource_type: str | None = None) -> list[str]:
    """``Type/id`` of every valid example (of one type), in file order."""
    return [ref for ref in _valid() if resource_type is None or ref.startswith(f"{resource_type}/")]


def valid_example(ref: str) -> dict[str, Any] | None:
    """A fresh copy of the valid example ``Type/id`` (None if there is none)."""
    raw = _valid().get(ref)
    return orjson.loads(raw) if raw is not None else None


@cache
def _invalid_index() -> dict[str, dict[str, str]]:
    index: dict[str, dict[str, str]] = orjson.loads((examples_dir() / "invalid" / "index.json").read_bytes())
    return index


def invalid_rule(filename: str) -> str:
    """The rule the invalid example breaks, as ``profiles/examples/invalid/index.json`` names it."""
    return _invalid_index()[filename]["rule"]


def invalid_example(filename: str) -> dict[str, Any]:
    if filename not in _invalid_index():  # only indexed examples are used: their rule is known
        raise KeyError(filename)
    resource: dict[str, Any] = orjson.loads((examples_dir() / "invalid" / filename).read_bytes())
    return resource


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``node`` (itself included), depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def references(resource: dict[str, Any]) -> list[Ref]:
    """Every relative literal reference in the resource (Reference.reference), in document order."""
    found = (parse_ref(n["reference"]) for n in walk(resource) if isinstance(n.get("reference"), str))
    return [ref for ref in found if ref is not None]


def rewrite(
    resource: dict[str, Any], target: Callable[[Ref], str | None], iins: dict[str, str]
) -> dict[str, Any]:
    """A copy with references re-targeted (``target`` gives the new ``Type/id``, None keeps the reference),
    version suffixes pointing at version 1 (what the kit created), and example IINs replaced by ``iins``."""
    out = copy.deepcopy(resource)
    out.pop("id", None)  # R4 http.html#create: the server assigns the id
    for node in walk(out):
        ref = parse_ref(node["reference"]) if isinstance(node.get("reference"), str) else None
        new = target(ref) if ref is not None else None
        if ref is not None and new is not None:
            node["reference"] = new + ("/_history/1" if ref.history else "")
        if node.get("system") == IIN_SYSTEM and node.get("value") in iins:
            node["value"] = iins[node["value"]]
    return out


def identifier_value(resource: dict[str, Any], system: str) -> str | None:
    for identifier in resource.get("identifier", []):
        if isinstance(identifier, dict) and identifier.get("system") == system:
            value = identifier.get("value")
            return value if isinstance(value, str) else None
    return None


def fresh_iin(original: str, rng: random.Random) -> str:
    """A valid IIN with the same birth date and sex as ``original`` but a random serial, so that a run's
    patients are found by IIN without colliding with earlier runs or real records (kz-domain.md §1.1)."""
    for _ in range(1000):
        first11 = original[:7] + f"{rng.randrange(10_000):04d}"
        digit = iin_check_digit(first11)
        if digit is not None and first11 + str(digit) != original:
            candidate = first11 + str(digit)
            if is_valid_iin(candidate):
                return candidate
    raise ValueError(f"no valid IIN found for birth date digits of {original}")
