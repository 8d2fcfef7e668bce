"""What every check receives: the client, the server's CapabilityStatement and the shared fixtures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.fixtures import Fixtures
from conformance.http import FhirClient

__all__ = ["RunContext"]


@dataclass
class RunContext:
    client: FhirClient
    fixtures: Fixtures
    capability: dict[str, Any] | None = None  # the statement fetched before the checks run
    notes: list[str] = field(default_factory=list)  # run-level remarks for the report
    # The REST group's resource: its id and the versionIds seen so far (create, then update).
    rest_id: str | None = None
    rest_versions: list[str] = field(default_factory=list)

    @property
    def authenticated(self) -> bool:
        return self.client.authenticated
