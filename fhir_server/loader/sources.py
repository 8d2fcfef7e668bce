"""What ``kzfhir load`` sends, read from files: transaction/batch Bundles as they are, and every other
resource (a single resource file, the entries of a collection Bundle, each line of an NDJSON file) as
one resource each. ``.gz`` files are read decompressed; folders are walked recursively.

Each item carries ``weight``, the bytes of its file on disk it stands for, so progress and ETA are known
from the file sizes alone without reading everything twice (a bulk export can be many gigabytes).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

SUFFIXES = (".json", ".ndjson", ".jsonl")
# Synthea writes the organisations and practitioners its patient bundles reference by conditional
# reference into these two files: they must be in before any patient bundle (as `blazectl upload`).
FIRST = ("hospitalInformation", "practitionerInformation")


class SourceError(Exception):
    """A path that cannot be loaded (missing, unreadable, not FHIR JSON): a one-line CLI error."""


@dataclass(frozen=True, slots=True)
class Item:
    """One request's worth of data: a Bundle posted to the base, or one resource."""

    source: str  # file, and ``:line`` / ``#entry`` within it
    body: bytes
    resources: int
    weight: int
    bundle_type: str | None = None  # transaction | batch for Bundles posted as they are
    resource_type: str | None = None
    resource_id: str | None = None
    parts: tuple[str, ...] = ()  # the sources of a batch built from single resources, by entry

    @property
    def idempotent(self) -> bool:
        """Safe to send again after a lost response: a PUT, never a POST that may have created."""
        return self.bundle_type is None and self.resource_id is not None


def _kind(path: Path) -> str | None:
    name = path.name.lower().removesuffix(".gz")
    return next((s for s in SUFFIXES if name.endswith(s)), None)


def discover(paths: list[Path]) -> list[Path]:
    """The files to load, in order: Synthea's directory files first, then by name."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and _kind(p))
        elif path.is_file():
            if not _kind(path):
                raise SourceError(f"{path}: not a .json, .ndjson or .jsonl file (optionally .gz)")
            files.append(path)
        else:
            raise SourceError(f"{path}: no such file or folder")
    if not files:
        raise SourceError("no .json, .ndjson or .jsonl files in " + ", ".join(map(str, paths)))
    return sorted(files, key=lambda p: (not p.name.startswith(FIRST), str(p)))


def phases(files: list[Path]) -> list[list[Path]]:
    """Files that later files depend on form a first phase, loaded completely before the rest starts."""
    first = [p for p in files if p.name.startswith(FIRST)]
    rest = [p for p in files if not p.name.startswith(FIRST)]
    return [group for group in (first, rest) if group]


def _open(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile is a binary file object
    return path.open("rb")


def _resource_item(source: str, resource: Any, body: bytes | None, weight: int) -> Item:
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise SourceError(f"{source}: not a FHIR resource (no resourceType)")
    rid = resource.get("id")
    return Item(source, body if body is not None else orjson.dumps(resource), 1, weight,
                resource_type=resource["resourceType"], resource_id=rid if isinstance(rid, str) and rid else None)


def _json_items(path: Path, size: int) -> Iterator[Item]:
    try:
        with _open(path) as fh:
            data = fh.read()
        parsed = orjson.loads(data)
    except (OSError, EOFError, gzip.BadGzipFile, orjson.JSONDecodeError) as exc:
        raise SourceError(f"{path}: cannot read JSON: {exc}") from None
    if isinstance(parsed, dict) and parsed.get("resourceType") == "Bundle":
        kind = parsed.get("type")
        entries = parsed.get("entry") or []
        if kind in ("transaction", "batch"):
            yield Item(str(path), data, len(entries), size, bundle_type=kind)
            return
        # a collection, searchset or document's entries are loaded one by one
        resources = [e.get("resource") for e in entries if isinstance(e, dict) and e.get("resource")]
        for n, resource in enumerate(resources):
            yield _resource_item(f"{path}#{n}", resource, None, size // len(resources) if n else
                                 size - (size // len(resources)) * (len(resources) - 1))
        return
    yield _resource_item(str(path), parsed, data, size)


def _ndjson_items(path: Path) -> Iterator[Item]:
    try:
        with path.open("rb") as raw, (gzip.GzipFile(fileobj=raw) if path.name.lower().endswith(".gz")
                                      else nullcontext(raw)) as stream:
            done = 0
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    resource = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise SourceError(f"{path}:{number}: not JSON: {exc}") from None
                position = raw.tell()  # compressed bytes consumed: the honest share of the file on disk
                yield _resource_item(f"{path}:{number}", resource, line.strip(), position - done)
                done = position
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SourceError(f"{path}: cannot read: {exc}") from None


def read_items(path: Path) -> Iterator[Item]:
    """The items of one file, in file order."""
    if _kind(path) == ".json":
        return _json_items(path, path.stat().st_size)
    return _ndjson_items(path)


def batch_of(items: list[Item]) -> Item:
    """Single resources sent together as one batch Bundle (``--batch N``): PUT with an id, else POST."""
    entries = []
    for item in items:
        url = f"{item.resource_type}/{item.resource_id}" if item.resource_id else item.resource_type
        entries.append(b'{"resource":' + item.body + b',"request":' +
                       orjson.dumps({"method": "PUT" if item.resource_id else "POST", "url": url}) + b"}")
    body = b'{"resourceType":"Bundle","type":"batch","entry":[' + b",".join(entries) + b"]}"
    return Item(f"{items[0].source} .. {items[-1].source}" if len(items) > 1 else items[0].source, body,
                len(items), sum(i.weight for i in items), bundle_type="batch", parts=tuple(i.source for i in items))
