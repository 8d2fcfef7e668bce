"""The topic index (subscriptions/candidates.py) only narrows: every subscription whose filters match an
event is among its candidates, each once — for any mix of filtered and unfiltered subscriptions, list
values, references written ``Patient/p1`` or ``p1``, and filters on another resource type."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_server.subscriptions.matching import _filters_match
from fhir_server.subscriptions.ownership import Owner
from fhir_server.subscriptions.registry import Entry, Registry
from fhir_server.subscriptions.spec import SubscriptionSpec
from fhir_server.subscriptions.topics import APPOINTMENT

pytestmark = pytest.mark.req("TM-09")

PATIENTS = ["p1", "p2", "p3"]
STATUSES = ["booked", "cancelled", "arrived"]
refs = st.sampled_from(PATIENTS).flatmap(lambda p: st.sampled_from([p, f"Patient/{p}"]))
filter_ = st.one_of(
    st.tuples(st.just("Appointment"), st.just("patient"), st.lists(refs, min_size=1, max_size=2).map(tuple)),
    st.tuples(st.just("Appointment"), st.just("status"),
              st.lists(st.sampled_from(STATUSES), min_size=1, max_size=2).map(tuple)),
    st.tuples(st.just("Appointment"), st.just("practitioner"), st.just(("Practitioner/dr1",))),
    st.tuples(st.just("Consent"), st.just("patient"), st.lists(refs, min_size=1, max_size=1).map(tuple)),
)


def _entry(n: int, filters: list[tuple[str, str, tuple[str, ...]]]) -> Entry:
    spec = SubscriptionSpec(APPOINTMENT, tuple(filters), "rest-hook", "http://127.0.0.1:9/", "id-only", (), None, 10)
    return Entry(f"s{n}", spec, "active", Owner(), "http://x/fhir", 0, 1)


def _appointment(patients: list[str], status: str, with_practitioner: bool) -> dict[str, Any]:
    actors = [f"Patient/{p}" for p in patients] + (["Practitioner/dr1"] if with_practitioner else [])
    return {"resourceType": "Appointment", "status": status,
            "participant": [{"actor": {"reference": a}} for a in actors]}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(filter_, max_size=3), max_size=12),
       st.lists(st.sampled_from(PATIENTS), max_size=2, unique=True), st.sampled_from(STATUSES), st.booleans())
def test_every_matching_subscription_is_a_candidate_once(filters, patients, status, with_practitioner):
    registry = Registry()
    entries = [_entry(n, f) for n, f in enumerate(filters)]
    for entry in entries:
        registry.put(entry)
    focus = _appointment(patients, status, with_practitioner)
    candidates = registry.candidates(APPOINTMENT, focus)
    ids = [e.id for e in candidates]
    assert len(ids) == len(set(ids))
    matching = {e.id for e in entries if _filters_match(e, focus)}
    assert matching <= set(ids)
    # and the index does narrow: a subscription filtered on a patient the event lacks is no candidate
    for entry in candidates:
        first = next((f for f in entry.spec.filters if f[0] == "Appointment"), None)
        if first is not None and first[1] == "patient":
            assert any(v.rsplit("/", 1)[-1] in patients for v in first[2])


def test_the_index_follows_status_changes_and_removal():
    registry = Registry()
    registry.put(_entry(1, [("Appointment", "patient", ("Patient/p1",))]))
    focus = _appointment(["p1"], "booked", False)
    assert [e.id for e in registry.candidates(APPOINTMENT, focus)] == ["s1"]
    registry.set_status("s1", "off", 2)
    assert registry.candidates(APPOINTMENT, focus) == []
    registry.set_status("s1", "error", 3)
    assert [e.id for e in registry.candidates(APPOINTMENT, focus)] == ["s1"]
    registry.remove("s1", 4)
    assert registry.candidates(APPOINTMENT, focus) == []
    registry.put(_entry(1, [("Appointment", "patient", ("Patient/p1",))]))  # version 1 < deletion 4: stale
    assert registry.get("s1") is None
