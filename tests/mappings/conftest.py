"""A consistent input set for one remote service: the KZ IG examples plus the fixtures beside this file.

The IG examples do not hold Conditions, a note or a tariff, so ``fixtures/`` adds the Conditions the
example Encounter names, a Composition with MD-D sections 7-9, a sick-leave DocumentReference, an OSMS
Coverage, a ChargeItem and the referral the service answered.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from profiles import examples_dir

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = (
    "Encounter-kz-encounter-1", "Patient-kz-patient-1", "Practitioner-kz-practitioner-1",
    "Organization-kz-organization-1", "Observation-kz-observation-1", "ServiceRequest-kz-servicerequest-1",
    "ServiceRequest-kz-servicerequest-2", "ServiceRequest-kz-servicerequest-3",
    "MedicationRequest-kz-medicationrequest-1",
)

Resources = dict[str, dict[str, Any]]


def _key(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def example(name: str) -> dict[str, Any]:
    return json.loads((examples_dir() / "valid" / f"{name}.json").read_text("utf-8"))


def load_set() -> Resources:
    resources = [example(name) for name in EXAMPLES]
    resources += [json.loads(p.read_text("utf-8")) for p in sorted(FIXTURES.glob("*.json"))]
    return {_key(r): r for r in resources}


def enrich(resources: Resources) -> Resources:
    """The example Encounter as a full service: provider, incoming referral, a concomitant diagnosis."""
    out = copy.deepcopy(resources)
    encounter = out["Encounter/kz-encounter-1"]
    encounter["meta"]["versionId"] = "3"
    encounter["serviceProvider"] = {"reference": "Organization/kz-organization-1"}
    encounter["basedOn"] = [{"reference": "ServiceRequest/kz-referral-in-1"}]
    second = copy.deepcopy(example("Encounter-kz-encounter-2")["diagnosis"][1])
    encounter["diagnosis"].append(second)
    return out


@pytest.fixture
def example_set() -> Resources:
    """The IG examples and fixtures as they are (the example Encounter names no serviceProvider)."""
    return load_set()


@pytest.fixture
def service_set() -> Resources:
    return enrich(load_set())


@pytest.fixture
def without() -> Callable[[Resources, str], Resources]:
    def drop(resources: Resources, key: str) -> Resources:
        return {k: v for k, v in resources.items() if k != key}

    return drop
