"""One writing transaction of the platform: what it read and what it wrote.

Why it keeps state: a push applies hundreds of ops in one transaction, and one statement per op
per table (load the record, look up its natural keys, insert the record, its keys, its people
row, find review candidates) was most of the server's time. The transaction reads what a chunk
will need in a few bulk queries (``load_many``, ``prefetch_*``), answers later reads from that
and from its own writes, and writes records and their side tables with one ``executemany`` per
table (``flush``). Code that reads those tables with its own SQL calls ``flush`` first.

The change sequence is the part that must be exactly right. A number taken early in a
transaction would let a slow writer commit *below* a cursor a concurrent pull has already
returned, and that change would never be pulled. So writers only mark what they touched
(``touch``) and ``finish`` numbers it at the very end (numbering.py: on PostgreSQL the numbers
are announced as in flight, and pulls stop below them until this transaction commits).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import Executable
from sqlalchemy.sql.selectable import Select

from sync.server import bulk, db, numbering, sqlin, termrows, terms
from sync.server.rows import Derived, Person, Row, from_db, from_result
from sync.server.sqlin import Among, Built, among, among_rows

IN_CHUNK = 500  # values per IN (...) list

_R, _V, _K, _P, _O = db.records.c, db.record_versions.c, db.record_keys.c, db.people.c, db.ops.c
_LOAD_LOCKED = select(db.records).where(_R.id == bindparam("b_id")).with_for_update()
_SNAPSHOT = select(_V.data, _V.status, _V.deleted).where(
    _V.record_id == bindparam("b_id"), _V.version == bindparam("b_version")
)
_DEVICE_VERSION = select(func.max(_O.version)).where(
    _O.device_id == bindparam("b_device"),
    _O.record_id == bindparam("b_id"),
    _O.version.is_not(None),
)
_INSERT_RECORD = insert(db.records)
_UPDATE_RECORD = (
    update(db.records)
    .where(_R.id == bindparam("b_id"))
    .values(seq=func.coalesce(bindparam("b_seq", type_=BigInteger), _R.seq))
)
_C = db.record_claims.c
_A = db.aliases.c
# The bulk reads of a push, built once (``sqlin.Built``): run with lists of values.
# Not prepared (``db.prepared``), like every look-up of a run-time array: its generic plan,
# made on a fresh platform's empty tables, scanned them while a first push filled them.


def _load_many(among: Among) -> Select[Any]:
    """Records by id, locked in id order on PostgreSQL (two batches then never wait on each
    other in a cycle). SQLite serialises writers and locks no rows: its rows come in the
    list's order, joined to it (``among_rows``), without an ORDER BY, which sorted them in a
    temporary b-tree. The ids come each once (``_chunks``)."""
    stmt = among_rows(among, select(db.records), db.records, _R.id, "ids")
    return stmt if among.dialect == "sqlite" else stmt.order_by(_R.id).with_for_update()


_LOAD_MANY = Built(_load_many)
# Records a chunk's reference fields name, share-locked on PostgreSQL in id order: FOR KEY
# SHARE is the weakest lock that a merge's FOR UPDATE (``load_many``) waits for and waits on.
_LOCK_REFERENCED = Built(
    lambda among: (
        select(_R.id, _R.deleted)
        .where(among(_R.id, "ids"))
        .order_by(_R.id)
        .with_for_update(read=True, key_share=True)
    )
)
_KEYS_AND_CLAIMS = Built(  # who holds each key (0) and who claims it (1): one round trip
    lambda among: union_all(
        select(literal(0).label("claim"), _K.key, _K.record_id).where(
            _K.form == bindparam("form"), among(_K.key, "keys")
        ),
        select(literal(1).label("claim"), _C.key, _C.record_id).where(
            _C.form == bindparam("form"), among(_C.key, "keys")
        ),
    )
)


def _people_alike(among: Among) -> Executable:
    """People of ``form`` born on the i-th of ``births`` with the i-th of ``names`` or of
    ``pinyins``: for each pushed person, one index-only probe of ``ix_people_birth`` whose
    rows are tested against that person's name and pinyin alone. A row alike two pushed
    people comes twice (the caller keys them by id; with DISTINCT SQLite scanned people)."""
    if among.dialect == "sqlite":
        return _SQLITE_PEOPLE
    wanted = sqlin.zipped("births", "names", "pinyins")
    return (
        select(_P.record_id, _P.name, _P.pinyin, _P.birth)
        .select_from(wanted)
        .join(
            db.people,
            and_(
                _P.form == bindparam("form"),
                _P.birth == wanted.c.births,
                or_(_P.name == wanted.c.names, _P.pinyin == wanted.c.pinyins),
            ),
        )
    )


# SQLite: the same, written out for its CROSS JOIN, which keeps the pushed people the outer
# loop (its planner otherwise put people outside, searched by form alone: every person of the
# form read for each push, 22 s of a 10 000-resident push).
_SQLITE_PEOPLE = (
    text(
        "SELECT people.record_id, people.name, people.pinyin, people.birth "
        f"FROM json_each(:{sqlin.rows_key('births', 'names', 'pinyins')}) AS wanted "
        "CROSS JOIN people ON people.form = :form "
        "AND people.birth = json_extract(wanted.value, '$[0]') "
        "AND (people.name = json_extract(wanted.value, '$[1]') "
        "OR people.pinyin = json_extract(wanted.value, '$[2]'))"
    )
    .bindparams(bindparam(sqlin.rows_key("births", "names", "pinyins"), type_=sqlin.JsonList()))
    .columns(_P.record_id, _P.name, _P.pinyin, _P.birth)
)


# Who may be the same person as each pushed one: same birth date and same name or pinyin.
# Before, the look-up read every person born on any pushed birth date and tested each against
# all the push's names and pinyins (a hashed list): on the bench's 2.57 M-person platform
# ~140 people a date, 18 ms of backend CPU a call; now each person's date is probed and its
# rows tested against its own name and pinyin: 4.4 ms. Probing (birth, name) and (birth,
# pinyin) pairs on two indexes answered in 1 ms but wrote a second random index per person:
# 640 kB of WAL per push in a long night instead of ~210 (full-page images). Not prepared
# (``db.prepared``), like every look-up of a run-time array.
_PEOPLE = Built(_people_alike)
_DEVICE_VERSIONS = Built(
    lambda among: (
        select(_O.record_id, func.max(_O.version))
        .where(_O.device_id == bindparam("device"), among(_O.record_id, "ids"))
        .where(_O.version.is_not(None))
        .group_by(_O.record_id)
    )
)
_INCOMING = Built(
    lambda among: select(_A.old_id, _A.canonical_id).where(among(_A.canonical_id, "ids"))
)
Terms = tuple[str, frozenset[str]]  # a record's grid ("" for none) and search keys

KeyRef = tuple[str, str]  # (form, normalised natural key)


@dataclass
class Side:
    """A record's natural keys and people row as this transaction last wrote them."""

    form: str
    keys: tuple[str, ...]
    person: Person | None
    claims: tuple[str, ...] = ()  # keys in its values that another grid's record holds


RECORD_COLUMNS = (
    "id", "form", "form_version", "grid", "title", "data", "status", "deleted", "version",
    "conflict", "stamps", "created_at", "created_by", "updated_at", "updated_by", "seq",
)  # fmt: skip
VERSION_COLUMNS = (
    "record_id", "version", "form", "grid", "data", "status", "deleted", "conflict", "kind",
    "op_id", "device_id", "username", "author", "edited_at", "at",
)  # fmt: skip
OP_COLUMNS = ("op_id", "op_hash", "device_id", "username", "record_id", "version", "result", "at")
KEY_COLUMNS = ("form", "key", "record_id")
PEOPLE_COLUMNS = ("record_id", "form", "name", "pinyin", "birth")
PENDING_COLUMNS = ("grid", "record_id")


@dataclass
class Fresh:
    """Rows of records created as columns (``sync.server.fresh``), as tuples in the column
    orders above, each table's written by one ``executemany`` (PostgreSQL: one COPY). A
    record's tuple lacks its ``seq``, added when ``finish`` has numbered it."""

    records: list[tuple[Any, ...]] = field(default_factory=list)
    versions: list[tuple[Any, ...]] = field(default_factory=list)
    ops: list[tuple[Any, ...]] = field(default_factory=list)
    keys: list[tuple[str, str, str]] = field(default_factory=list)
    people: list[tuple[str, ...]] = field(default_factory=list)
    pending: list[tuple[str, str]] = field(default_factory=list)

    def write_sides(self, conn: Connection) -> None:
        """Natural keys, people rows and pending search terms."""
        for table, columns, rows in (
            (db.pending_terms, PENDING_COLUMNS, self.pending),
            (db.record_keys, KEY_COLUMNS, self.keys),
            (db.people, PEOPLE_COLUMNS, self.people),
        ):
            if rows:
                bulk.insert_tuples(conn, table.name, columns, rows)
        self.pending, self.keys, self.people = [], [], []

    def write_log(self, conn: Connection) -> None:
        """Version history and op-log rows."""
        for table, columns, rows in (
            (db.record_versions, VERSION_COLUMNS, self.versions),
            (db.ops, OP_COLUMNS, self.ops),
        ):
            if rows:
                bulk.insert_tuples(conn, table.name, columns, rows)
        self.versions, self.ops = [], []

    def write_records(self, conn: Connection, numbers: Mapping[tuple[str, Any], int]) -> set[str]:
        """The records, with their change numbers when taken; returns the ids so numbered."""
        if not self.records:
            return set()
        rows = [row + (numbers.get(("record", row[0]), 0),) for row in self.records]
        bulk.insert_tuples(conn, db.records.name, RECORD_COLUMNS, rows)
        self.records = []
        return {row[0] for row in rows if row[-1]}


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    ordered = sorted(set(values))
    for i in range(0, len(ordered), IN_CHUNK):
        yield ordered[i : i + IN_CHUNK]


@dataclass
class Tx:
    """A write transaction's reads, buffered writes and changes waiting for a number.

    Version-history and op-log rows are only appended and never read by other writers before
    commit, so they are buffered too; the buffers double as an overlay for reads inside the
    transaction (``snapshot``, ``device_versions``, replays within one batch).
    """

    conn: Connection
    pending: list[tuple[str, Any]] = field(default_factory=list)
    versions: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    op_rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    quarantine_rows: list[dict[str, Any]] = field(default_factory=list)
    alias_rows: list[dict[str, Any]] = field(default_factory=list)  # new aliases, not yet written
    rows: dict[str, Row | None] = field(default_factory=dict)  # None: no such record
    _absent: set[str] = field(default_factory=set)  # ids a load found no record under
    sides: dict[str, Side] = field(default_factory=dict)  # written since the last flush
    terms: dict[str, tuple[Terms | None, Terms]] = field(default_factory=dict)  # stored, new
    _new: dict[str, dict[str, Any]] = field(default_factory=dict)
    _changed: dict[str, dict[str, Any]] = field(default_factory=dict)
    _key_db: dict[KeyRef, str | None] = field(default_factory=dict)  # as of the last flush
    _claims_db: dict[KeyRef, list[str]] = field(default_factory=dict)  # as of the last flush
    _claims_tx: dict[KeyRef, set[str]] = field(default_factory=dict)  # since the last flush
    _key_tx: dict[KeyRef, str] = field(default_factory=dict)  # claimed since the last flush
    _people_db: dict[tuple[str, Person], list[tuple[str, Person]]] = field(default_factory=dict)
    _people_tx: dict[tuple[str, str], dict[str, Person]] = field(default_factory=dict)
    _snapshots: dict[tuple[str, int], Any] = field(default_factory=dict)
    _device_versions: dict[tuple[str, str], int | None] = field(default_factory=dict)
    _device_wanted: dict[str, set[str]] = field(default_factory=dict)  # read at the first ask
    _op_versions: dict[tuple[str, str], int] = field(default_factory=dict)  # of op_rows
    _incoming: dict[str, list[str]] = field(default_factory=dict)  # canonical -> alias olds
    # records saved by applied ops: id -> (data, deleted, version), for tasks' automatic done
    saved: dict[str, tuple[dict[str, Any], bool, int]] = field(default_factory=dict)
    derived: Derived = field(default_factory=Derived)  # natural keys and people of values
    review_pairs: set[tuple[str, str]] = field(default_factory=set)  # written here, id order
    fresh: Fresh = field(default_factory=Fresh)  # records created as columns, not yet written

    # -- records ----------------------------------------------------------------------------

    def load(self, record_id: str) -> Row | None:
        """The record as this transaction sees it (PostgreSQL: locked FOR UPDATE)."""
        if record_id not in self.rows:
            r = self.conn.execute(_LOAD_LOCKED, {"b_id": record_id}).first()
            self.rows[record_id] = from_db(r) if r is not None else None
            if r is None:
                self._absent.add(record_id)
        return self.rows[record_id]

    def load_many(self, ids: Iterable[str]) -> None:
        """Load and lock records in id order, so two batches never wait on each other in a
        cycle (PostgreSQL row locks; SQLite serialises writers)."""
        stmt = _LOAD_MANY.on(self.conn)
        for part in _chunks(i for i in ids if i not in self.rows):
            result = self.conn.execute(stmt, {"ids": part})
            found = {row.id: row for row in from_result(result.all(), result.keys())}
            self.rows.update({i: found.get(i) for i in part})
            self._absent.update(i for i in part if i not in found)

    def lock_referenced(self, ids: Iterable[str]) -> list[str]:
        """Lock the records these ids name against a merge until this transaction ends, and
        return those of them that are deleted (PostgreSQL; SQLite has one writer: none).

        Why: a push that stores a reference to a house while a supervisor merges that house
        away. Without the lock the push, having read no alias, wrote a reference to the
        tombstone after the merge had searched for references (or before it committed): it
        kept naming the merged-away record. With it, either the merge waits for the push and
        then finds its record, or the push waits for the merge and then sees the tombstone
        (the caller runs the chunk again, which reads the alias)."""
        if self.conn.dialect.name != "postgresql":
            return []
        stmt = _LOCK_REFERENCED.on(self.conn)
        deleted: list[str] = []
        for part in _chunks(ids):
            deleted += [r.id for r in self.conn.execute(stmt, {"ids": part}) if r.deleted]
        return deleted

    def new_here(self, record_id: str) -> bool:
        """The record did not exist when this transaction first looked for it (a create of
        this transaction, or none at all): nothing stored before refers to it by id."""
        return record_id in self._absent

    def review_written(self, a: str, b: str) -> None:
        """A review row pairing records ``a`` and ``b`` was written here (``pair_known``)."""
        self.review_pairs.add((a, b) if a <= b else (b, a))

    def pair_known(self, a: str, b: str) -> bool | None:
        """Whether a review row pairs records ``a`` and ``b``, when known without a query:
        one of them is new here (records are never deleted and review rows name records), so
        only this transaction's rows can name it; None: ask the database. A concurrent writer
        of the same new id makes this transaction's insert fail, and the chunk runs again."""
        if a in self._absent or b in self._absent:
            return ((a, b) if a <= b else (b, a)) in self.review_pairs
        return None

    def known_absent(self, device_id: str, ids: Iterable[str]) -> None:
        """Records ``load_many`` found missing from the database: no alias points at them and
        no op gave them a version (aliases point at records that exist, ops that made a
        version wrote its record, and records are never deleted), so their incoming aliases
        and this device's versions are known without a query. A concurrent writer that
        creates one of them makes this transaction's insert fail, and the chunk runs again."""
        for record_id in ids:
            if record_id in self.rows and self.rows[record_id] is None:
                unwritten = [r["old_id"] for r in self.alias_rows if r["canonical_id"] == record_id]
                self._incoming.setdefault(record_id, unwritten)
                self._device_versions.setdefault((device_id, record_id), None)

    def put(self, row: Row, values: dict[str, Any], side: Side | None, *, new: bool) -> None:
        """Buffer a record write (``values``: its ``records`` columns) and its side tables
        (None: the record is not live, it holds no keys and no people row)."""
        self.rows[row.id] = row
        if new:
            self._new[row.id] = values
        elif row.id in self._new:
            self._new[row.id] = {**self._new[row.id], **values}
        else:
            self._changed[row.id] = {"b_id": row.id, **values}
        self._index_side(row.id, side)

    def _index_side(self, record_id: str, side: Side | None) -> None:
        old = self.sides.get(record_id)
        if old is not None:
            for key in old.keys:
                if self._key_tx.get((old.form, key)) == record_id:
                    del self._key_tx[(old.form, key)]
            if old.person is not None:
                self._people_tx.get((old.form, old.person.birth), {}).pop(record_id, None)
            for key in old.claims:
                self._claims_tx.get((old.form, key), set()).discard(record_id)
        side = side or Side(old.form if old else "", (), None)
        self.sides[record_id] = side
        for key in side.keys:
            self._key_tx[(side.form, key)] = record_id
        for key in side.claims:
            self._claims_tx.setdefault((side.form, key), set()).add(record_id)
        if side.person is not None:
            self._people_tx.setdefault((side.form, side.person.birth), {})[record_id] = side.person

    def put_new_terms(self, record_id: str, grid: str) -> None:
        """A new record's search keys: only its grid is noted here (``_write_terms`` gives it
        a ``pending_terms`` row; its keys are made from the stored record later), so the push
        does not work them out for nothing (issue 17: ~4 % of a push of new residents)."""
        self.put_terms(record_id, None, (grid, frozenset()))

    def put_terms(self, record_id: str, old: Terms | None, new: Terms) -> None:
        """Buffer a record's new search keys (``sync.server.terms``); ``old``: what the
        database holds for it now (None: nothing), kept from the first write since a flush."""
        if record_id in self.terms:
            old = self.terms[record_id][0]
        self.terms[record_id] = (old, new)

    # -- natural keys -----------------------------------------------------------------------

    def prefetch_keys(self, refs: Iterable[KeyRef]) -> None:
        """Who holds these keys in the database, in one query per form and chunk."""
        by_form: dict[str, set[str]] = {}
        for form, key in refs:
            if (form, key) not in self._key_db:
                by_form.setdefault(form, set()).add(key)
        stmt = _KEYS_AND_CLAIMS.on(self.conn)
        for form, keys in by_form.items():
            for part in _chunks(keys):
                held: dict[str, str] = {}
                claimed: dict[str, list[str]] = {k: [] for k in part}
                for claim, key, record_id in self.conn.execute(stmt, {"form": form, "keys": part}):
                    if claim:
                        claimed[key].append(record_id)
                    else:
                        held[key] = record_id
                self._key_db.update({(form, k): held.get(k) for k in part})
                self._claims_db.update({(form, k): v for k, v in claimed.items()})

    def key_owner(self, form: str, keys: Iterable[str], exclude: str | None = None) -> str | None:
        """The live record holding any of ``keys`` (other than ``exclude``), own writes included."""
        keys, key_db = list(keys), self._key_db
        for key in keys:  # most were prefetched per chunk
            if (form, key) not in key_db:
                self.prefetch_keys((form, k) for k in keys)
                break
        for key in keys:
            owner = self._holder((form, key))
            if owner is not None and owner != exclude:
                return owner
        return None

    def _holder(self, ref: KeyRef) -> str | None:
        """The live record holding a prefetched key, this transaction's writes first."""
        owner = self._key_tx.get(ref)
        if owner is None:
            held = self._key_db[ref]
            # A record rewritten here that still held the key would be in _key_tx.
            owner = None if held in self.sides else held
        return owner

    def key_owners(self, form: str, keys: Sequence[str]) -> list[str | None]:
        """``key_owner(form, [key])`` of each of ``keys``, as one column. Why: a push of
        residents the platform knows asks the holder of every create's key, and again of its
        held record's keys (``echoes``), a call and a list per key (issue 17)."""
        refs = [(form, key) for key in keys]
        if not all(map(self._key_db.__contains__, refs)):
            self.prefetch_keys(refs)
        return list(map(self._holder, refs))

    def key_free(self, form: str, key: str) -> bool:
        """Nobody holds or claims ``key``, known without a look-up: the chunk's prefetch found
        neither in the database and this transaction gave it to no record since. Why: a push
        of new records asks ``claims.key_parties`` twice per key (owner, then its claims), each
        a ``key_owner`` and a ``claimants``; with the key free both answer nothing. False:
        the plain look-ups decide (tests/sync/test_push_lean.py checks both agree)."""
        return not self.keys_taken(((form, key),))

    def keys_taken(self, refs: Iterable[KeyRef]) -> set[KeyRef]:
        """Those of ``refs`` that are not ``key_free``, as one column. Why: a push of new
        records asked ``key_free`` key by key twice (``Service._prefetch``, ``fresh``), a
        call and a generator per record, to learn that nothing is taken (issue 17)."""
        key_db, claims_db, key_tx, claims_tx = (
            self._key_db,
            self._claims_db,
            self._key_tx,
            self._claims_tx,
        )
        return {
            ref
            for ref in refs
            if key_db.get(ref, "") is not None
            or claims_db.get(ref, True)
            or ref in key_tx
            or claims_tx.get(ref)
        }

    def claimants(self, form: str, key: str) -> list[str]:
        """Live records that have ``key`` in their values without holding it (transfer
        claims), this transaction's writes included, in id order."""
        if (form, key) not in self._claims_db:  # most were prefetched per chunk
            self.prefetch_keys([(form, key)])
        found = {r for r in self._claims_db[(form, key)] if r not in self.sides}
        return sorted(found | self._claims_tx.get((form, key), set()))

    # -- people (fuzzy duplicate candidates) ------------------------------------------------

    def prefetch_people(self, form: str, people: Iterable[Person]) -> None:
        """Live people of ``form`` who may be the same as these: one query per chunk."""
        wanted = {p for p in people if (form, p) not in self._people_db}
        stmt = _PEOPLE.on(self.conn)
        for part in _chunks(wanted):
            params = {
                "form": form,
                **sqlin.zipped_params(
                    births=[p.birth for p in part],
                    names=[p.name for p in part],
                    pinyins=[p.pinyin for p in part],
                ),
            }
            born: dict[str, dict[str, Person]] = {}
            for r in self.conn.execute(stmt, params):
                born.setdefault(r.birth, {})[r.record_id] = Person(r.name, r.pinyin, r.birth)
            for p in part:
                self._people_db[(form, p)] = [
                    (rid, q) for rid, q in born.get(p.birth, {}).items() if p.alike(q)
                ]

    def alike(self, people: Iterable[tuple[str, Person]]) -> set[tuple[str, Person]]:
        """Those of ``people`` (form, person) for whom ``same_person`` finds someone, asked
        only of those the prefetch found someone for, or this transaction wrote someone born
        that day, or not prefetched. Why: a push of new residents asked ``same_person`` for
        each (a call, a dict and a sort) to learn that nobody is alike (issue 17)."""
        found, written = self._people_db, self._people_tx
        return {
            (form, person)
            for form, person in people
            if (
                found.get((form, person), True)  # someone, or not prefetched
                or (form, person.birth) in written
            )
            and self.same_person(form, person)
        }

    def same_person(self, form: str, person: Person) -> list[tuple[str, Person]]:
        """Live records of ``form`` with the same birth date and the same name or pinyin,
        this transaction's writes included, in record id order."""
        if (form, person) not in self._people_db:  # most were prefetched per chunk
            self.prefetch_people(form, [person])
        found = {rid: q for rid, q in self._people_db[(form, person)] if rid not in self.sides}
        for rid, q in self._people_tx.get((form, person.birth), {}).items():
            if person.alike(q):
                found[rid] = q
        return sorted(found.items())

    # -- history overlays ----------------------------------------------------------------

    def prefetch_snapshots(self, pairs: Iterable[tuple[str, int]]) -> None:
        """Stored versions ops will merge against (their ``base_version``)."""
        wanted = [p for p in set(pairs) if p not in self._snapshots and p not in self.versions]
        for i in range(0, len(wanted), IN_CHUNK):
            part = sorted(wanted[i : i + IN_CHUNK])
            stmt = select(_V.record_id, _V.version, _V.data, _V.status, _V.deleted).where(
                tuple_(_V.record_id, _V.version).in_(part)
            )
            found = {(r.record_id, r.version): r._mapping for r in self.conn.execute(stmt)}
            self._snapshots.update({p: found.get(p) for p in part})

    def version_row(self, record_id: str, version: int) -> Mapping[str, Any] | None:
        """A stored (or buffered) version's data, status and deleted flag."""
        key = (record_id, version)
        if key in self.versions:
            return self.versions[key]
        if key not in self._snapshots:
            found = self.conn.execute(_SNAPSHOT, {"b_id": record_id, "b_version": version})
            row = found.mappings().first()
            self._snapshots[key] = row
        return self._snapshots[key]

    def prefetch_device_versions(self, device_id: str, ids: Iterable[str]) -> None:
        """The newest version each record got from this device's earlier ops."""
        wanted = {i for i in ids if (device_id, i) not in self._device_versions}
        stmt = _DEVICE_VERSIONS.on(self.conn)
        for part in _chunks(wanted):
            found = dict(self.conn.execute(stmt, {"device": device_id, "ids": part}).all())
            self._device_versions.update({(device_id, i): found.get(i) for i in part})

    def want_device_versions(self, device_id: str, ids: Iterable[str]) -> None:
        """``prefetch_device_versions`` of ``ids``, put off until an op asks one of them
        (``device_version``): then all are read at once, as the prefetch would have read
        them (only this transaction writes this device's ops here, and it writes them at
        ``finish``). Why: a push of residents the platform knows asked it of every held
        record, and a create echoing a held record reads none (issue 17)."""
        self._device_wanted.setdefault(device_id, set()).update(ids)

    def log_op(self, row: dict[str, Any]) -> None:
        """Buffer an op-log row (and remember the version it gave its record)."""
        self.op_rows[row["op_id"]] = row
        if row["version"]:
            key = (row["device_id"], row["record_id"])
            self._op_versions[key] = max(int(row["version"]), self._op_versions.get(key, 0))

    def device_version(self, device_id: str, record_id: str) -> int | None:
        """The newest version this device produced on the record, buffered ops included."""
        key = (device_id, record_id)
        found = [self._op_versions[key]] if key in self._op_versions else []
        wanted = self._device_wanted.get(device_id)
        if wanted and record_id in wanted and key not in self._device_versions:
            self.prefetch_device_versions(device_id, self._device_wanted.pop(device_id))
        if key not in self._device_versions:
            params = {"b_device": device_id, "b_id": record_id}
            self._device_versions[key] = self.conn.execute(_DEVICE_VERSION, params).scalar()
        stored = self._device_versions[key]
        if stored is not None:
            found.append(int(stored))
        return max(found) if found else None

    # -- aliases ----------------------------------------------------------------------------

    def prefetch_incoming(self, ids: Iterable[str]) -> None:
        """Which aliases point at each of these records, in one query per chunk."""
        stmt = _INCOMING.on(self.conn)
        for part in _chunks(i for i in ids if i not in self._incoming):
            found: dict[str, list[str]] = {i: [] for i in part}
            for old, canonical in self.conn.execute(stmt, {"ids": part}):
                found[canonical].append(old)
            for row in self.alias_rows:  # this transaction's, not written yet
                if row["canonical_id"] in found:
                    found[row["canonical_id"]].append(row["old_id"])
            self._incoming.update(found)

    def incoming(self, record_id: str) -> list[str]:
        """Alias old ids that point at ``record_id`` now, this transaction's included."""
        if record_id not in self._incoming:  # most are known (``known_absent``): no chunking
            self.prefetch_incoming([record_id])
        return list(self._incoming[record_id])

    def repoint_aliases(self, old_id: str, canonical_id: str) -> None:
        """This transaction's unwritten aliases to ``old_id`` now point at ``canonical_id``."""
        for row in self.alias_rows:
            if row["canonical_id"] == old_id:
                row["canonical_id"] = canonical_id

    def aliased(self, old_id: str, canonical_id: str, moved: Iterable[str]) -> None:
        """``old_id`` (and the aliases that pointed at it) now point at ``canonical_id``."""
        self._incoming[old_id] = []
        if canonical_id in self._incoming:
            self._incoming[canonical_id] += [old_id, *moved]

    # -- writing ----------------------------------------------------------------------------

    def touch(self, kind: str, key: Any) -> None:
        self.pending.append((kind, key))

    def flush(self) -> None:
        """Write buffered records and their side tables; afterwards the database is the truth.
        (Records written here get their change number at ``finish``, like any other.)"""
        self._write_sides()
        self._write_records({})

    def _write_sides(self) -> None:
        """Natural keys and people rows of the records written since the last flush."""
        c = self.conn
        for part in _chunks(i for i in self.sides if i not in self._new):
            c.execute(delete(db.record_keys).where(among(c, _K.record_id, part)))
            c.execute(delete(db.people).where(among(c, _P.record_id, part)))
            c.execute(delete(db.record_claims).where(among(c, _C.record_id, part)))
        self._write_terms()
        self.fresh.write_sides(c)
        claims = [
            {"form": s.form, "key": k, "record_id": rid}
            for rid, s in self.sides.items()
            for k in s.claims
        ]
        bulk.insert_rows(c, db.record_claims, claims)
        keys = [
            {"form": s.form, "key": k, "record_id": rid}
            for rid, s in self.sides.items()
            for k in s.keys
        ]
        people = [
            {"record_id": rid, "form": s.form, **s.person.columns()}
            for rid, s in self.sides.items()
            if s.person is not None
        ]
        bulk.insert_rows(c, db.record_keys, keys)
        bulk.insert_rows(c, db.people, people)
        self.sides = {}
        self._key_db, self._key_tx, self._people_db, self._people_tx = {}, {}, {}, {}
        self._claims_db, self._claims_tx = {}, {}

    def _write_terms(self) -> None:
        """Search keys that changed since the last flush, and a note of the words they hold
        (``sync.server.termrows``: the next search expands them). The rows to delete are
        known exactly (keys follow from the stored values), so the table needs no index by
        record. A new record (most of a push) is only noted as pending: the next search of
        its grid gives it its terms (``termrows.index_pending``)."""
        gone: list[tuple[str, str, str]] = []
        added: list[tuple[str, str, str]] = []
        pending: list[dict[str, str]] = []
        for rid, (old, new) in self.terms.items():
            if old is None:  # nothing stored for it: its terms are made from the record later
                pending.append({"grid": new[0], "record_id": rid})
                continue
            was = {(k, old[0]) for k in old[1]}
            now = {(k, new[0]) for k in new[1]}
            gone.extend((k, g, rid) for k, g in was - now)
            added.extend((k, g, rid) for k, g in now - was)
        self.terms = {}
        bulk.insert_rows(self.conn, db.pending_terms, pending)
        if gone:
            termrows.delete_terms(self.conn, gone)
        if added:
            added.sort()  # index order: fewer pages touched, and one lock order on PostgreSQL
            termrows.insert_terms(self.conn, added)
            termrows.note_words(self.conn, ((g, k) for k, g, _rid in added if terms.is_word(k)))

    def _write_records(self, numbers: Mapping[tuple[str, Any], int]) -> set[str]:
        """Insert and update the buffered ``records`` rows, with their change numbers when
        already taken; returns the ids written with a number."""
        numbered = {
            rid for rid in itertools.chain(self._new, self._changed) if ("record", rid) in numbers
        }
        numbered |= self.fresh.write_records(self.conn, numbers)
        for rid, values in self._new.items():
            values["seq"] = numbers.get(("record", rid), 0)
        bulk.insert_rows(self.conn, db.records, list(self._new.values()))
        if self._changed:
            # One statement shape for every row: rows without a number keep theirs.
            rows = [
                {**v, "b_seq": numbers.get(("record", v["b_id"]))} for v in self._changed.values()
            ]
            self.conn.execute(_UPDATE_RECORD, rows)
        self._new, self._changed = {}, {}
        return numbered

    def finish(self) -> None:
        """Write everything buffered and number the changes; call last, just before commit.

        The numbers are taken after every other write, so a pull waits for this transaction
        (numbering.py) only from here to its commit; records and new aliases are then written
        once, with their numbers."""
        self._write_sides()
        self.fresh.write_log(self.conn)
        for table, rows in (
            (db.record_versions, list(self.versions.values())),
            (db.ops, list(self.op_rows.values())),
            (db.quarantine, self.quarantine_rows),
        ):
            bulk.insert_rows(self.conn, table, rows)
        self.versions, self.op_rows, self.quarantine_rows = {}, {}, []
        self._op_versions = {}
        numbers = self.take_numbers()
        numbered = {("record", rid) for rid in self._write_records(numbers)}
        numbered |= self._write_aliases(numbers)
        self._set_numbers({k: n for k, n in numbers.items() if k not in numbered})

    def _write_aliases(self, numbers: Mapping[tuple[str, Any], int]) -> set[tuple[str, Any]]:
        """Insert the new aliases with their change numbers; returns the changes written.

        Why after the numbers: a push of residents the platform already knows makes an alias
        per op, and inserting them unnumbered cost a second statement per alias to number it
        (``_set_numbers``), the like of which records never needed."""
        written = set()
        for row in self.alias_rows:
            change = ("alias", row["old_id"])
            if change in numbers:
                row["seq"] = numbers[change]
                written.add(change)
        bulk.insert_rows(self.conn, db.aliases, self.alias_rows)
        self.alias_rows = []
        return written

    def take_numbers(self) -> dict[tuple[str, Any], int]:
        """Number every change of this transaction (numbering.py: no lock is held after)."""
        targets = list(dict.fromkeys(self.pending))
        self.pending.clear()
        if not targets:
            return {}
        start = numbering.take(self.conn, len(targets))
        return {target: n for n, target in enumerate(targets, start=start)}

    def _set_numbers(self, numbers: Mapping[tuple[str, Any], int]) -> None:
        """Store numbers of changes whose rows are already written (aliases, scope exits,
        records flushed before the end)."""
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for (kind, key), number in numbers.items():
            by_kind.setdefault(kind, []).append({"k": key, "s": number})
        tables = {
            "record": (db.records, db.records.c.id),
            "alias": (db.aliases, db.aliases.c.old_id),
            "exit": (db.scope_exits, db.scope_exits.c.id),
            "task": (db.tasks, db.tasks.c.id),
            "item": (db.task_items, db.task_items.c.id),
            "review": (db.reviews, db.reviews.c.id),
        }
        for kind, params in by_kind.items():
            table, key_col = tables[kind]
            self.conn.execute(
                update(table).where(key_col == bindparam("k")).values(seq=bindparam("s")), params
            )
