"""The start-up heap kept out of garbage collection (issue 20: CPU per written resource).

A started server holds about a million long-lived objects — the R4 and KZ definitions, the validators, the
compiled search extractors, terminology — none of which ever becomes garbage. CPython's cyclic collector
traverses all of them in every full collection, and the write path (a thousand resources per ``$import``
unit, Bundles of hundreds of entries) allocates enough to trigger one every few seconds: measured on the
bench's ``$import`` data, three full collections on the SQLite writer thread took longer than the rest of
its work. ``gc.freeze()`` moves what exists after start-up into the permanent generation, which collections
skip; objects created later are collected as before, and reference counting still frees anything frozen
that is dropped. The validation worker processes forked by ``$import`` inherit the frozen heap (their
collections skip it too, and do not touch its pages, so they stay shared with the server).
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_start_up_heap() -> bool:
    """Collect once, then freeze every object alive; only the first call in a process does it (a process
    that starts several applications, as the tests do, does not freeze their later garbage). True when
    this call froze the heap."""
    global _frozen
    if _frozen:
        return False
    _frozen = True
    gc.collect()
    gc.freeze()
    return True
