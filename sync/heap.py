"""A long-running sync process's garbage collector, settled once everything is loaded.

Why: a push chunk allocates hundreds of thousands of short-lived objects (rows, dicts, merge
states), and CPython's cyclic collector kept re-scanning the ~400 000 long-lived objects of
the loaded app (forms, SQLAlchemy, FastAPI, the pinyin tables) in its oldest generation:
1.4 s of a 10 k push + 10 k pull + 10 k known push's 7.6 CPU-seconds in the server process.
Frozen, those objects are never scanned again (they are not garbage: they live as long as
the process), and a larger first-generation threshold runs the young collections less often;
the collector then took 0.46-0.57 s of the same run. The device side is alike: in
``gridcollect sync`` the collector took 0.17 of 0.67 client CPU-seconds of a 10 k push, 0.01
settled. Only processes that serve or sync call this (``server-admin server``,
``gridcollect sync``, the benches' server processes): tests that build many apps in one
process must not freeze the garbage of earlier ones.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)
OLDER_THRESHOLDS = (20, 20)


def settle() -> None:
    """Collect what start-up left behind, freeze the rest, and space young collections."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
