"""The test identities the access-rights checks act as (AC-01, AC-02, AC-12, AC-14, AC-24).

A regulator cannot judge consent enforcement with one token: it needs callers of different standing
towards one test patient. The kit gets them in one of two ways:

* an **identities file** the vendor supplies (``--identities FILE``): existing test accounts and their
  tokens (the patient, a practitioner the kit will grant consent to, one without consent, optionally an
  emergency identity, an auditor and a second patient), see ``load_cast`` and docs/conformance-kit.md;
* a **token minter** (``--dev-key PATH`` for a kzfhir development deployment): the kit creates the
  patients and practitioners through the FHIR API and mints a token for each (``Minter``).

Tokens never reach a report: only :meth:`Identity.label` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ROLES", "Cast", "Identity", "Minter", "dev_minter", "load_cast"]

# role -> what the role is for (docs and report)
ROLES: dict[str, str] = {
    "patient": "the test patient themself (owner of the data, AC-01)",
    "consented": "a practitioner the patient grants consent to during the run (AC-01, AC-10)",
    "unconsented": "a practitioner without the patient's consent (AC-12)",
    "emergency": "a practitioner in an emergency (break-glass, AC-02)",
    "auditor": "a reader of the audit log (AC-14)",
    "other-patient": "a second patient who consents to the unconsented practitioner (conditional writes)",
}

# Minter(kind, reference) -> token; kind is "patient", "practitioner" or "auditor".
Minter = Callable[[str, str | None], str]


@dataclass(frozen=True, slots=True)
class Identity:
    role: str
    token: str
    reference: str | None = None  # the identity's fhirUser (Patient/.., Practitioner/..)
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. X-Break-Glass-Reason for "emergency"

    @property
    def label(self) -> str:
        return f"{self.role} {self.reference}" if self.reference else self.role

    def request_headers(self) -> dict[str, str]:
        return {**self.headers, "Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True, slots=True)
class Cast:
    """Identities given by the vendor. ``patient``, ``consented`` and ``unconsented`` are required for
    the access checks; the others enable more checks (each check says when one is missing)."""

    patient: Identity | None = None
    consented: Identity | None = None
    unconsented: Identity | None = None
    emergency: Identity | None = None
    auditor: Identity | None = None
    other_patient: Identity | None = None
    endpoints: Mapping[str, str] = field(default_factory=dict)  # accessLog, notifications path templates

    def identities(self) -> list[Identity]:
        found = (self.patient, self.consented, self.unconsented, self.emergency, self.auditor, self.other_patient)
        return [i for i in found if i is not None]

    def labels(self) -> list[str]:
        return [i.label for i in self.identities()]


_FILE_KEYS = {"patient": "patient", "consented": "consented", "unconsented": "unconsented",
              "emergency": "emergency", "auditor": "auditor", "otherPatient": "other-patient"}


def _token(entry: Mapping[str, Any], base: Path, key: str) -> str:
    if isinstance(entry.get("token"), str) and entry["token"].strip():
        return str(entry["token"]).strip()
    if isinstance(entry.get("tokenFile"), str):
        return (base / entry["tokenFile"]).read_text(encoding="utf-8").strip()
    raise ValueError(f"identities file: {key} needs 'token' or 'tokenFile'")


def _identity(key: str, entry: Any, base: Path) -> Identity:
    if not isinstance(entry, dict):
        raise ValueError(f"identities file: {key} must be an object")
    reference = entry.get("reference")
    if reference is not None and (not isinstance(reference, str) or "/" not in reference):
        raise ValueError(f"identities file: {key}.reference must be 'Type/id', got {reference!r}")
    headers = entry.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ValueError(f"identities file: {key}.headers must map names to strings")
    return Identity(_FILE_KEYS[key], _token(entry, base, key), reference, dict(headers))


def load_cast(path: Path) -> Cast:
    """Read an identities file (JSON, docs/conformance-kit.md "Test identities"). ``tokenFile`` paths are
    relative to the file. Raises ValueError (or OSError) with a message fit for the command line."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("identities file: expected a JSON object")
    unknown = set(data) - set(_FILE_KEYS) - {"endpoints", "comment"}
    if unknown:
        raise ValueError(f"identities file: unknown keys {sorted(unknown)}")
    found = {_FILE_KEYS[k]: _identity(k, v, path.parent) for k, v in data.items() if k in _FILE_KEYS}
    for role in ("patient", "other-patient"):
        if role in found and not (found[role].reference or "").startswith("Patient/"):
            raise ValueError(f"identities file: {role}.reference must be a Patient reference")
    endpoints = data.get("endpoints") or {}
    return Cast(found.get("patient"), found.get("consented"), found.get("unconsented"), found.get("emergency"),
                found.get("auditor"), found.get("other-patient"), dict(endpoints))


def dev_minter(key_path: Path) -> Minter:
    """Tokens of a kzfhir development deployment, signed with its dev key (``kzfhir token`` does the same).
    Practitioner tokens carry no organisation BIN, so the access Consent the kit records for its own
    (writer) organisation does not cover them."""
    from fhir_server.security.auth import issue_dev_token  # the one public function the kit needs

    def mint(kind: str, reference: str | None) -> str:
        return issue_dev_token(kind, reference, key_path=key_path)

    return mint
