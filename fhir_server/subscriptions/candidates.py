"""Which subscriptions of a topic can match an event, found by index instead of by trying every one
(issue 15 "Proof": the TM-26 ingest rate with subscriptions active; docs/subscriptions.md, Bench).

Matching runs inside the write unit, on the store's writer (matching.py), so its cost is paid by every
write waiting behind it. With one subscription per patient (the remote-monitoring case) trying each
subscription's filters costs O(subscriptions) per event. The registry therefore keeps, per topic, the
subscriptions' filter criteria precompiled into lookup tables: for the focus type of the event, the
subscriptions with no filter on that type, and those with one, keyed by (parameter, value) of their
first filter on it. An event looks up the values its focus has for each keyed parameter (the same
``FILTER_VALUES`` the filters use, topics.py) and gets the few candidates whose first filter holds;
``matching.py`` still applies every filter to them (``filter_matches``): the index only narrows, the
rule stays in one place. A reference value is indexed as written (``Patient/p1`` or ``p1``) and looked up
both ways, exactly as ``filter_matches`` compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fhir_server.subscriptions.topics import FILTER_VALUES, no_values

if TYPE_CHECKING:
    from fhir_server.subscriptions.registry import Entry


@dataclass(frozen=True, slots=True)
class TopicIndex:
    entries: tuple[Entry, ...]  # every served subscription of the topic
    filtered_types: frozenset[str]  # focus types some subscription filters on
    unfiltered: dict[str, tuple[Entry, ...]]  # focus type -> subscriptions without a filter on it
    keyed: dict[tuple[str, str], dict[str, tuple[Entry, ...]]]  # (type, parameter) -> value -> subscriptions

    @classmethod
    def build(cls, entries: tuple[Entry, ...]) -> TopicIndex:
        types = frozenset(ftype for e in entries for ftype, _, _ in e.spec.filters)
        unfiltered: dict[str, list[Entry]] = {t: [] for t in types}
        keyed: dict[tuple[str, str], dict[str, list[Entry]]] = {}
        for entry in entries:
            for rtype in types:
                first = next(((name, values) for ftype, name, values in entry.spec.filters if ftype == rtype), None)
                if first is None:
                    unfiltered[rtype].append(entry)
                    continue
                table = keyed.setdefault((rtype, first[0]), {})
                for value in dict.fromkeys(first[1]):
                    table.setdefault(value, []).append(entry)
        return cls(entries, types, {t: tuple(v) for t, v in unfiltered.items()},
                   {k: {value: tuple(es) for value, es in table.items()} for k, table in keyed.items()})

    def candidates(self, resource: dict[str, Any]) -> list[Entry]:
        """The subscriptions that may match an event whose focus is ``resource`` (each once, in order)."""
        rtype = str(resource.get("resourceType"))
        if rtype not in self.filtered_types:
            return list(self.entries)
        found: dict[str, Entry] = {e.id: e for e in self.unfiltered.get(rtype, ())}
        for (ftype, name), table in self.keyed.items():
            if ftype != rtype:
                continue
            for have in FILTER_VALUES.get((ftype, name), no_values)(resource):
                for key in {have, have.rsplit("/", 1)[-1]}:
                    for entry in table.get(key, ()):
                        found.setdefault(entry.id, entry)
        return list(found.values())
