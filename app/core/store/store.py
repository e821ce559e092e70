"""The local store: one SQLite file per data dir (WAL, encrypted with SQLCipher once a key
file sits beside it: ``app.core.vault``), records + history + outbox.

``Store`` is the face callers hold; it composes its parts and delegates to them: ``Database``
(connection, transactions, meta, clocks), ``Reads`` (the queries), ``Writes`` (saves with
history and outbox), ``Autosaves``, ``Grids``, and ``Outbox`` with ``ReplicaIO`` (the narrow
interface the sync replica uses instead of SQL). What values imply for the side tables is in
``derive``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.core import paths
from app.core.forms import Form, FormSet, load_formset
from app.core.records import HistoryEntry, Record, Summary
from app.core.store import derive as derivation
from app.core.store import order, places, rekeys
from app.core.store.autosave import Autosave, Autosaves
from app.core.store.db import Database
from app.core.store.derive import Derived
from app.core.store.grids import Grid, Grids
from app.core.store.outbox import Outbox
from app.core.store.reads import Reads
from app.core.store.replica_io import ReplicaIO
from app.core.store.tasks import Tasks
from app.core.store.writes import Writes
from app.core.vault import access

Person = tuple[str, str, str, str | None, str | None]  # (id, name, pinyin, birth, house)


class Store:
    """The device's records. Thread-safe enough for one writer: use one Store per thread."""

    def __init__(
        self, path: str | Path, formset: FormSet | None = None, key: bytes | None = None
    ) -> None:
        """Open ``path``; encrypted stores need ``key``, or a key this process already
        unlocked, or a passphrase source that needs no person (``vault.access``)."""
        self.path = Path(path)
        self.formset = formset or load_formset()
        self._db = Database(self.path, key or access.key_for_store(self.path))
        if self._db.meta(places.PENDING) is not None:  # first open after the index's migration
            places.backfill(self._db.conn, self.formset)
        if self._db.meta(order.PENDING) is not None:  # first open after the sort key's migration
            order.backfill(self._db.conn)
        if self._db.meta(order.SURNAMES_PENDING) is not None:  # after the surnames' step
            people = [f.id for f in self.formset.forms.values() if f.roles.birth_date]
            order.rekey_surnames(self._db.conn, people)
        if self._db.meta(rekeys.PENDING) is not None:  # after the 15-digit ID numbers' step
            rekeys.rekey_fifteen(self._db.conn, self.formset)
        self.reads = Reads(self._db.conn, self.formset)
        self.writes = Writes(self._db, self.reads, self.formset, self._derive_now)
        self.autosave = Autosaves(self._db)
        self.grid_table = Grids(self._db)
        self.outbox = Outbox(self._db)
        self.replica = ReplicaIO(self._db, self.reads, self.formset)
        self.tasks = Tasks(self._db, self.formset)

    @classmethod
    def open(
        cls,
        data_dir: str | Path | None = None,
        formset: FormSet | None = None,
        *,
        passphrase_file: str | Path | None = None,
        demo_notice: Callable[[Path], None] | None = None,
    ) -> Store:
        """Open (creating if needed) the encrypted store in a data dir: the way the app and
        the CLI open it. A plaintext store is encrypted first; ``vault.access.open_key`` says
        where the passphrase comes from (``PassphraseError`` if from nowhere)."""
        db_path = paths.db_path(data_dir)
        key = access.open_key(db_path, passphrase_file, demo_notice=demo_notice)
        return cls(db_path, formset, key)

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection, for the store package's parts and tests' assertions only: code
        outside ``app.core.store`` asks the Store's methods (SQL stays in this package)."""
        return self._db.conn

    @property
    def db(self) -> Any:
        """The same connection as a ``sqlite_utils.Database`` (loaded on first use: it costs
        ~0.15 s of start-up the app does not need)."""
        import sqlite_utils

        return sqlite_utils.Database(self._db.conn)

    @property
    def device_id(self) -> str:
        """This data dir's device id (``Database.device_id``: read each time)."""
        return self._db.device_id

    def close(self) -> None:
        """Checkpoint and close the file."""
        self._db.close()

    def interrupt(self) -> None:
        """Stop the query running on this store (called from another thread to cancel it)."""
        self._db.interrupt()

    # -- transactions, meta, clocks --------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; nested calls join the outer one (all or nothing)."""
        with self._db.transaction():
            yield

    def meta(self, key: str, default: str | None = None) -> str | None:
        """A value from the meta table (device id, cursors, worker settings)."""
        return self._db.meta(key, default)

    def set_meta(self, key: str, value: str) -> None:
        """Set a meta value (joins the current transaction if any)."""
        self._db.set_meta(key, value)

    def hlc(self) -> str:
        """A hybrid-logical-clock stamp: wall time, but never behind the last one issued."""
        return self._db.hlc()

    # -- derived data ----------------------------------------------------------------------

    def derive(self, form: Form, data: Mapping[str, Any]) -> Derived:
        """Keys, references, search terms and person-index row implied by the values.

        A method (not just the function) so a test or caller can swap it per store.
        """
        return derivation.derive(form, data)

    def derive_page(self, form: Form, page: Sequence[Mapping[str, Any]]) -> list[Derived]:
        """``derive`` of each of many records of one form (a pulled page), the form's
        declarations read once; a ``derive`` swapped on this store is called per record."""
        if "derive" in vars(self):
            return [self.derive(form, data) for data in page]
        return derivation.derive_page(form, page)

    def _derive_now(self, form: Form, data: Mapping[str, Any]) -> Derived:
        """``derive`` looked up at each call, so a swapped one reaches the parts too."""
        return self.derive(form, data)

    natural_key = staticmethod(derivation.natural_key)

    # -- writes (``Writes``) ---------------------------------------------------------------

    def save(
        self,
        form_id: str,
        data: Mapping[str, Any],
        *,
        record_id: str | None = None,
        status: str = "draft",
        author: str = "",
    ) -> Record:
        """Create or update a record; no validation (drafts always save).

        Writes history and outbox only when something changed. Returns the stored record.
        In the same transaction, the record's open task items whose fields are now all filled
        become done (``Tasks.after_save``): a save confirming unchanged values counts too.
        """
        with self.transaction():
            record = self.writes.save(
                form_id, data, record_id=record_id, status=status, author=author
            )
            if not record.deleted:
                self.tasks.after_save(record.id, record.data, author)
        return record

    def delete(self, record_id: str, author: str = "", reason: str | None = None) -> Record:
        """Tombstone a record: it leaves lists, keys and search; history and outbox keep it.
        ``reason``: why it was voided (作废), kept in its history."""
        return self.writes.delete(record_id, author, reason)

    def insert_many(
        self,
        form_id: str,
        rows: Sequence[tuple[str | None, Mapping[str, Any], str]],
        author: str = "",
        *,
        local_change: bool = True,
        derived: Sequence[Derived] | None = None,
    ) -> list[str]:
        """Bulk create of new records (import, demo): the effects of ``save``, batched
        (``Writes.insert_many``; ``derived``: each clean row's ``derive``, when known)."""
        return self.writes.insert_many(
            form_id, rows, author, local_change=local_change, derived=derived
        )

    def decide_duplicate(
        self, record_id: str, other_id: str, decision: str, author: str = ""
    ) -> None:
        """Record a person's answer to "possibly the same" (audit trail for the guard)."""
        self.writes.decide_duplicate(record_id, other_id, decision, author)

    # -- reads (``Reads``) -----------------------------------------------------------------

    def get(self, record_id: str) -> Record | None:
        """A record by id, tombstoned ones included."""
        return self.reads.get(record_id)

    def merged_into(self, record_id: str) -> str | None:
        """The id a record gone from the store was merged into by the platform (a sync), when
        that record is here; None otherwise (``Reads.merged_into``)."""
        return self.reads.merged_into(record_id)

    def iter_records(self, form: str, batch: int = 1000) -> Iterator[Record]:
        """Every live record of a form in id order, read in batches (exports, printing)."""
        return self.reads.iter_records(form, batch)

    def records_by_keys(self, form_id: str, keys: Iterable[str]) -> dict[str, list[str]]:
        """Natural key -> live records holding it (ascending ids), for a batch of keys."""
        return self.reads.records_by_keys(form_id, keys)

    def find_by_key(self, form_id: str, data: Mapping[str, Any]) -> list[str]:
        """Live records of ``form_id`` sharing any natural key with ``data``."""
        return self.reads.find_by_key(form_id, data)

    def summaries(
        self,
        form: str | None = None,
        *,
        grid: str | None = None,
        status: str | None = None,
        dirty: bool | None = None,
        conflict: bool | None = None,
        dup: bool | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[Summary]:
        """Live records for lists, ordered by title; filters combine with AND."""
        return self.reads.summaries(
            form,
            grid=grid,
            status=status,
            dirty=dirty,
            conflict=conflict,
            dup=dup,
            offset=offset,
            limit=limit,
        )

    def count(self, form: str | None = None, **filters: Any) -> int:
        """How many live records match the same filters as ``summaries``."""
        return self.reads.count(form, **filters)

    def search(self, text: str, form: str | None = None, limit: int = 50) -> list[Summary]:
        """Search-as-you-type over names, pinyin, initials, ID/phone tails and address pieces."""
        return self.reads.search(text, form, limit)

    def referrers(self, record_id: str, field: str | None = None) -> list[str]:
        """Ids of live records whose reference fields point at ``record_id``."""
        return self.reads.referrers(record_id, field)

    def history(self, record_id: str) -> list[HistoryEntry]:
        """Every save of a record, oldest first."""
        return self.reads.history(record_id)

    def pending_ops(self, limit: int = 500) -> list[dict[str, Any]]:
        """Outbox ops not yet acknowledged by the platform, oldest first."""
        return self.reads.pending_ops(limit)

    def stats(self) -> list[tuple[str, str, str | None, int]]:
        """(form, status, grid, count) over live records."""
        return self.reads.stats()

    def people_by_birth(self, form: str, birth: str) -> list[Person]:
        """(id, name, pinyin, birth, house) of live people born on a date (duplicate guard)."""
        return self.reads.people_by_birth(form, birth)

    def people_in_house(self, form: str, house: str) -> list[Person]:
        """(id, name, pinyin, birth, house) of live people linked to a house (duplicate guard)."""
        return self.reads.people_in_house(form, house)

    def live_rows(self) -> list[tuple[str, str, str, str]]:
        """(id, form, data as stored JSON, status) of every live record in insertion order."""
        return self.reads.live_rows()

    def decisions(self, record_id: str) -> list[tuple[str, str, str, str]]:
        """(other_id, decision, author, at) for a record, oldest first."""
        return self.reads.decisions(record_id)

    def pair_decisions(self, record_id: str) -> list[tuple[str, str]]:
        """(other record, decision) of every answer about a pair holding ``record_id``,
        either side asked, oldest first."""
        return self.reads.pair_decisions(record_id)

    # -- grids (``Grids``) -----------------------------------------------------------------

    def put_grid(self, grid: Grid) -> None:
        """Create or replace a grid definition."""
        self.grid_table.put(grid)

    def merge_grid(self, grid: Grid) -> None:
        """Take a grid from the platform, keeping this device's own worker (``Grids.merge``)."""
        self.grid_table.merge(grid)

    def grid_boundary(self, code: str) -> list[tuple[float, float]]:
        """One grid's boundary, [] when unknown or without one (``Grids.boundary``)."""
        return self.grid_table.boundary(code)

    def grids(self, boundaries: bool = True) -> list[Grid]:
        """All grids, by community then code (``boundaries`` False: polygons left empty)."""
        return self.grid_table.all(boundaries)

    # -- autosave (``Autosaves``: the open form's unsaved state) ---------------------------

    def autosave_put(
        self, slot: str, form_id: str, record_id: str | None, data: Mapping[str, Any]
    ) -> None:
        """Keep what is typed in an open form, without history or outbox (it is not a save)."""
        self.autosave.put(slot, form_id, record_id, data)

    def autosaves(self) -> list[Autosave]:
        """Every unsaved open form (slot, form, record_id, data, saved_at), oldest first."""
        return self.autosave.all()

    def autosave_clear(self, slot: str) -> None:
        """Forget an open form's unsaved state (after a save or an explicit discard)."""
        self.autosave.clear(slot)
