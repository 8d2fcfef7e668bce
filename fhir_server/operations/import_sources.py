"""Where ``$import`` reads NDJSON from: files and folders inside the operator's import root, and the
NDJSON a client posted (kept in the job's own folder until the job ends).

The root (setting ``import_root``) is an allow-list of one folder: an input ``url`` is a path relative to it
(``synthea/Patient.ndjson``, or a folder: all its ``*.ndjson``, ``*.ndjson.gz`` and ``*.jsonl`` files, in
name order) or a ``file://`` URL inside it. A ``..`` segment, an absolute path outside the root and a
symbolic link that leads out of it are refused (400) before the job starts, and each file is checked again
when it is opened (``O_NOFOLLOW``), so a link swapped in afterwards is not followed either. Nothing is
fetched from other servers.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from fhir_server.errors import FhirError
from fhir_server.operations.import_request import POSTED, ImportInput

SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
_SKIP = 1 << 20


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file of an input: ``name`` is how reports name it (the path relative to the root)."""

    index: int  # the input it belongs to
    path: Path
    name: str


def _refuse(message: str, where: str, code: str = "security") -> FhirError:
    category = "forbidden" if code == "security" else "invalid"
    return FhirError(category, message, code=code, expression=where)


def _relative(url: str, where: str) -> PurePosixPath:
    """The path an input url names, relative to the root or absolute (``file://``)."""
    if url.startswith("file:"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise _refuse(f"{where}: file URLs on other hosts are not read", where, "not-supported")
        path = PurePosixPath(unquote(parsed.path))
    elif "://" in url:
        raise _refuse(f"{where}: this server imports files from its import folder only, not from "
                      f"{url.split('://', 1)[0]} URLs", where, "not-supported")
    else:
        path = PurePosixPath(unquote(url))
    if ".." in path.parts:
        raise _refuse(f"{where}: '..' is not allowed in an import path", where)
    return path


def _inside(path: Path, root: Path, where: str) -> Path:
    real = path.resolve(strict=False)
    if not real.is_relative_to(root):
        raise _refuse(f"{where}: the path is outside the import folder", where)
    return real


def resolve_input(root: Path | None, item: ImportInput, index: int, max_bytes: int) -> list[SourceFile]:
    """The files of one input, each checked to lie inside the root and to be at most ``max_bytes``."""
    where = f"input[{index}].url"
    if root is None:
        raise _refuse("importing server files is not enabled here (setting import_root); post the NDJSON "
                      "instead (Content-Type: application/fhir+ndjson)", where, "not-supported")
    real_root = root.resolve(strict=True)
    relative = _relative(item.url, where)
    target = _inside(Path(relative) if relative.is_absolute() else real_root / relative, real_root, where)
    if target.is_dir():
        found = sorted(p for p in target.rglob("*") if p.name.endswith(SUFFIXES))
        paths = [_inside(p, real_root, where) for p in found]
        paths = [p for p in paths if p.is_file()]
        if not paths:
            raise FhirError("invalid", f"{where}: the folder holds no .ndjson files", code="not-found",
                            expression=where)
    elif target.is_file():
        paths = [target]
    else:
        raise FhirError("invalid", f"{where}: no such file in the import folder", code="not-found", expression=where)
    for p in paths:
        if p.stat().st_size > max_bytes:
            raise FhirError("too_large", f"{where}: {p.relative_to(real_root)} is larger than "
                            f"{max_bytes} bytes (setting import_max_file_bytes)", code="too-costly",
                            expression=where)
    return [SourceFile(index, p, str(p.relative_to(real_root))) for p in paths]


def posted_file(directory: Path, index: int) -> SourceFile:
    return SourceFile(index, directory / "posted.ndjson", POSTED)


def open_checked(source: SourceFile, root: Path | None) -> BinaryIO:
    """Open for reading, again refusing a path that now leads out of the root (a link swapped in after
    the kick-off): the final component is opened with ``O_NOFOLLOW``."""
    path = source.path
    if source.name != POSTED:
        assert root is not None
        _inside(path, root.resolve(strict=True), f"input[{source.index}].url")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    handle: BinaryIO = os.fdopen(fd, "rb", buffering=1 << 20)
    if path.name.endswith(".gz"):
        return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
    return handle


def lines(handle: BinaryIO, max_line: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, bytes)`` of every non-blank line, counted from 1; ``None`` for a line longer than
    ``max_line`` bytes, which is skipped without being held in memory."""
    number = 0
    while True:
        line = handle.readline(max_line + 1)
        if not line:
            return
        number += 1
        if len(line) > max_line and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = handle.readline(_SKIP)
            yield number, None
            continue
        stripped = line.strip()
        if stripped:
            yield number, stripped
