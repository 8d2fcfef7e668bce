"""Snapshot generation (R4 §2.6.1.1) and the committed snapshots of the KZ IG."""

from __future__ import annotations

import json

import pytest

from fhir_server.validation.profile import ProfileRegistry, SnapshotError, generate_snapshot
from profiles.build import fresh_snapshots

CORE = "http://hl7.org/fhir/StructureDefinition/"
BY_SYSTEM = {"type": "value", "path": "system"}


def test_committed_snapshots_equal_freshly_generated_ones() -> None:
    for path, expected in fresh_snapshots().items():
        assert json.loads(path.read_text(encoding="utf-8")) == expected, f"run python -m profiles.build ({path.name})"


def _profile(*elements: dict) -> dict:
    return {"url": "urn:test", "type": "Patient", "baseDefinition": CORE + "Patient",
            "differential": {"element": list(elements)}}


def _ids(snapshot: list[dict]) -> list[str]:
    return [e["id"] for e in snapshot]


def test_slice_is_created_after_the_sliced_element_with_type_children_unrolled(registry: ProfileRegistry) -> None:
    snapshot = generate_snapshot(_profile(
        {"id": "Patient.identifier", "slicing": {"discriminator": [BY_SYSTEM], "rules": "open"}},
        {"id": "Patient.identifier:x", "sliceName": "x", "min": 1},
        {"id": "Patient.identifier:x.system", "fixedUri": "urn:x"},
    ), registry.structure)
    ids = _ids(snapshot)
    start = ids.index("Patient.identifier:x")
    assert ids[start - 1] == "Patient.identifier"
    assert "Patient.identifier:x.period" in ids and "Patient.identifier:x.system" in ids
    system = snapshot[ids.index("Patient.identifier:x.system")]
    assert system["fixedUri"] == "urn:x" and system["path"] == "Patient.identifier.system"
    assert snapshot[start]["min"] == 1 and snapshot[start]["sliceName"] == "x"


def test_profile_constraints_are_appended_with_their_source(registry: ProfileRegistry) -> None:
    snapshot = generate_snapshot(_profile(
        {"id": "Patient", "constraint": [{"key": "t-1", "severity": "error", "human": "h", "expression": "true"}]},
    ), registry.structure)
    keys = [(c["key"], c["source"]) for c in snapshot[0]["constraint"]]
    assert ("t-1", "urn:test") in keys and keys[0][0] == "dom-2"


def test_differential_may_only_narrow_types(registry: ProfileRegistry) -> None:
    with pytest.raises(SnapshotError, match="not in the base"):
        generate_snapshot(_profile({"id": "Patient.deceased[x]", "type": [{"code": "string"}]}), registry.structure)


def test_unknown_base_and_missing_ids_are_refused(registry: ProfileRegistry) -> None:
    with pytest.raises(SnapshotError, match="base definition"):
        generate_snapshot({"url": "urn:t", "baseDefinition": "urn:none", "differential": {"element": []}},
                          registry.structure)
    with pytest.raises(SnapshotError, match="has no id"):
        generate_snapshot(_profile({"path": "Patient.name", "min": 1}), registry.structure)
    with pytest.raises(SnapshotError, match="not a child"):
        generate_snapshot(_profile({"id": "Patient.name.nonsense", "min": 1}), registry.structure)


def test_registry_generates_a_missing_snapshot_once_and_compiles_once(registry: ProfileRegistry) -> None:
    local = ProfileRegistry([_profile({"id": "Patient.name", "min": 1})], include_kz=False)
    assert "snapshot" in (local.structure("urn:test") or {})
    assert local.compiled("urn:test") is local.compiled("urn:test")
    compiled = local.compiled("urn:test")
    assert compiled is not None and compiled.root.children["name"].min == 1
