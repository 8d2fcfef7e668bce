"""The one exception of the mappings: an adapter asked to write a record that has errors."""

from __future__ import annotations

from collections.abc import Sequence

from fhir_server.validation.issues import Issue


class IncompleteRecordError(ValueError):
    """The record has error issues (e.g. a missing MD-D item), so no message is written for it.

    ``issues`` are the record's errors; turn them into an OperationOutcome with ``Issue.to_fhir()``.
    """

    def __init__(self, what: str, issues: Sequence[Issue]) -> None:
        self.issues = tuple(issues)
        first = self.issues[0].diagnostics if self.issues else "no details"
        more = f" (and {len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        super().__init__(f"cannot write {what}: {first}{more}")
