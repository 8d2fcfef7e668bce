"""What every check receives: the client, the server's CapabilityStatement and the shared fixtures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.fixtures import Fixtures
from conformance.http import FhirClient
from conformance.identities import Cast, Minter

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
    # The access-rights checks: identities given by the vendor or minted (identities.py), the scenario
    # built from them on first need (access/scenario.py), and the vendor-data samples (sampling.py).
    cast: Cast | None = None
    minter: Minter | None = None
    scenario: Any = None
    sample_count: int = 20
    record_wait: float = 15.0  # seconds to wait for audit records, access-log lines, notices
    samples: dict[str, Any] = field(default_factory=dict)

    @property
    def authenticated(self) -> bool:
        return self.client.authenticated
