"""The NDJSON files of a bulk export ("Flat FHIR": one resource per line, one or more files per type,
Bulk Data Access IG v2 "Bulk Data Output File Request").

Files are named ``<Type>.<n>.ndjson`` (a new file after ``max_lines`` resources) and the error file
``OperationOutcome.error.ndjson``. They hold patients' data, so the folder is private to the server's
user (0700, files 0600): only the owner-checked ``$export-file`` endpoint hands them out.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fhir_server.operations.export_jobs import OutputFile

ERROR_FILE = "OperationOutcome.error.ndjson"
FILE_NAME = re.compile(r"^[A-Z][A-Za-z]{1,63}\.(?:[1-9][0-9]{0,6}|error)\.ndjson$")
_BUFFER = 1 << 20


def _open_private(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "wb", buffering=_BUFFER)


@dataclass(slots=True)
class _Current:
    handle: BinaryIO
    name: str
    count: int = 0


class NdjsonFiles:
    """Appends lines to the current file of each type and rotates after ``max_lines`` lines."""

    def __init__(self, directory: Path, max_lines: int) -> None:
        directory.mkdir(parents=True, mode=0o700, exist_ok=True)
        self.directory = directory
        self.max_lines = max(1, max_lines)
        self._open: dict[str, _Current] = {}
        self._done: list[OutputFile] = []

    def write(self, resource_type: str, line: bytes) -> None:
        current = self._open.get(resource_type)
        if current is None or current.count >= self.max_lines:
            if current is not None:
                self._finish(resource_type)
            part = 1 + sum(1 for f in self._done if f.type == resource_type)
            name = f"{resource_type}.{part}.ndjson"
            current = self._open[resource_type] = _Current(_open_private(self.directory / name), name)
        current.handle.write(line)
        current.handle.write(b"\n")
        current.count += 1

    def _finish(self, resource_type: str) -> None:
        current = self._open.pop(resource_type)
        current.handle.close()
        self._done.append(OutputFile(resource_type, current.name, current.count))

    def close(self) -> list[OutputFile]:
        """Close every file; the output files in type order, then part order."""
        for resource_type in list(self._open):
            self._finish(resource_type)
        return sorted(self._done, key=lambda f: (f.type, int(f.name.split(".")[1])))

    def write_errors(self, lines: list[bytes]) -> list[OutputFile]:
        """The manifest's ``error`` file of OperationOutcomes (none when nothing went wrong)."""
        if not lines:
            return []
        with _open_private(self.directory / ERROR_FILE) as handle:
            handle.write(b"\n".join(lines) + b"\n")
        return [OutputFile("OperationOutcome", ERROR_FILE, len(lines))]


def file_path(directory: Path, name: str) -> Path | None:
    """The path of a listed file; None for a name that is not one of ours (no path tricks)."""
    if not FILE_NAME.fullmatch(name):
        return None
    path = directory / name
    return path if path.is_file() else None


def remove_files(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
