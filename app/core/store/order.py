"""The list order's stored key (``records.sort_key``) and the indexes lists page through.

Why stored and indexed: a list pages by keyset over an index (``browse.lists.page``), so the
order must be a column SQLite can walk; sorting a page in Python would only order that page.
The key (``app.core.sortkey``: names by pinyin, numbers by value) is written with every title;
an older store gets it in one bulk UPDATE on its first open (``backfill``), and only then are
the list indexes rebuilt on it (building them before the UPDATE would write them twice).

Part of ``app.core.store``: SQL stays in this package.
"""

from __future__ import annotations

import sqlite3

from app.core.sortkey import sort_key
from app.core.store.once import flag_step, run_once
from app.core.surnames import COMPOUND, SINGLE

PENDING = "sort_key_pending"  # meta key: the column exists, keys and indexes still to come
_FUNCTION = "gc_sort_key"  # registered on the connection for the backfill's one UPDATE

MIGRATION = [
    "ALTER TABLE records ADD COLUMN sort_key TEXT NOT NULL DEFAULT ''",
    *flag_step(PENDING),
]

# the title indexes the lists used before, replaced by the ones below (same shape, on the key)
OLD_INDEXES = ("records_form_grid", "records_live_title", "records_conflicted", "records_suspected")
INDEXES = {
    "records_grid_sort": "CREATE INDEX records_grid_sort ON records (form, grid, sort_key)",
    "records_live_sort": "CREATE INDEX records_live_sort ON records (form, sort_key) "
    "WHERE deleted = 0",
    "records_conflicted": "CREATE INDEX records_conflicted ON records (form, sort_key) "
    "WHERE conflict IS NOT NULL AND deleted = 0",
    "records_suspected": "CREATE INDEX records_suspected ON records (form, sort_key) "
    "WHERE dup_state = 'suspected' AND deleted = 0",
}


def backfill(conn: sqlite3.Connection) -> int:
    """Key every record of a store the migration gave the column, then build the list
    indexes on it; returns how many records were keyed. Runs once (the meta flag goes in
    the same transaction)."""

    def work() -> int:
        cur = conn.execute(f"UPDATE records SET sort_key = {_FUNCTION}(title) WHERE title != ''")
        for name in OLD_INDEXES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        for statement in INDEXES.values():
            conn.execute(statement)
        return cur.rowcount

    return run_once(conn, PENDING, work, (_FUNCTION, sort_key))


# People's names keyed with their surname's reading (``app.core.surnames``): stores keyed
# before that filed 曾 under "ceng"; the first open after the step re-keys the few affected.
SURNAMES_PENDING = "sort_key_surnames_pending"
SURNAMES_MIGRATION = flag_step(SURNAMES_PENDING)
_PERSON_FUNCTION = "gc_person_sort_key"


def _person_key(title: str) -> str:
    return sort_key(title, surname=True)


def rekey_surnames(conn: sqlite3.Connection, person_forms: list[str]) -> int:
    """Re-key the names of people (records of ``person_forms``) that start with a surname
    read otherwise than its character; returns how many. Runs once, like ``backfill``."""
    firsts = sorted({*SINGLE, *(name[0] for name in COMPOUND)})
    forms, chars = ", ".join("?" * len(person_forms)), ", ".join("?" * len(firsts))

    def work() -> int:
        cur = conn.execute(
            f"UPDATE records SET sort_key = {_PERSON_FUNCTION}(title) WHERE form IN ({forms}) "
            f"AND substr(ltrim(title), 1, 1) IN ({chars})",
            [*person_forms, *firsts],
        )
        return cur.rowcount

    return run_once(conn, SURNAMES_PENDING, work, (_PERSON_FUNCTION, _person_key))
