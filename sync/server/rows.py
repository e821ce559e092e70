"""The platform's record shapes and what a record's values imply: its grid, its natural keys
and its row in the people index. Pure functions of (form, values), shared by the writers
(``records``) and the transaction overlay (``tx``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from hashlib import sha256
from operator import itemgetter, methodcaller
from typing import Any, NamedTuple

from app.core.forms import Form
from app.core.naturalkeys import key_of, part_rule, parts_of
from app.core.records import is_empty
from app.core.search import name_term_run
from app.core.textcheck import TEXT_ONLY
from sync.merge import DELETED, STATUS, Stamp
from sync.server import db

MAX_KEY = 250  # db.record_keys.key holds 300
MAX_NAME = 100  # db.people.name holds 200 (pinyin: 300)


class Person(NamedTuple):
    """A live person's row in the fuzzy-duplicate index."""

    name: str
    pinyin: str
    birth: str

    def alike(self, other: Person) -> bool:
        """Same birth date and the same name or the same pinyin (张三/章三)."""
        return self.birth == other.birth and (
            self.name == other.name or self.pinyin == other.pinyin
        )

    def columns(self) -> dict[str, str]:
        return {"name": self.name, "pinyin": self.pinyin, "birth": self.birth}


@dataclass
class Row:
    """A record's current state on the server."""

    id: str
    form: str
    form_version: int
    grid: str | None
    title: str
    data: dict[str, Any]
    status: str
    deleted: bool
    version: int
    conflict: list[dict[str, Any]] | None
    stamps: Mapping[str, Stamp]
    created_at: str
    created_by: str
    updated_at: str = ""
    updated_by: str = ""

    def state(self) -> dict[str, Any]:
        """Fields plus the pseudo-fields the merge works on."""
        return {**self.data, STATUS: self.status, DELETED: self.deleted}

    def wire(self) -> dict[str, Any]:
        """The pull shape (PROTOCOL.md §8)."""
        return {
            "id": self.id,
            "form": self.form,
            "form_version": self.form_version,
            "version": self.version,
            "data": self.data,
            "status": self.status,
            "deleted": self.deleted,
            "conflict": self.conflict or None,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }


@dataclass
class Meta:
    """Who and what caused a write, for the version history."""

    kind: str
    username: str
    at: str
    op_id: str | None = None
    device_id: str | None = None
    author: str = ""
    edited_at: str | None = None


def stamps_text(stamps: Mapping[str, Stamp]) -> str:
    """``records.stamps``: each distinct stamp once, with the fields it stamps
    (``[[at, device, [field, ...]], ...]``, fields sorted, stamps in order of their first field).

    Why: every field of a new record carries the one stamp of the op that made it. Written
    once per field (``{field: [at, device]}``) they were 915 bytes of a resident's ~1.5 kB
    row, twice its data, in every row, its WAL and the cache. ``stamps_of`` reads both.

    A record whose fields all carry one ``Stamp`` object (every create: ``merge_new`` stamps
    each field with the op's one stamp) is one group, written without grouping field by field
    (issue 19: ~3 % of a city's push CPU); equal to ``grouped_stamps_text`` by a property
    test (tests/sync/test_push_lean.py)."""
    if stamps and len(set(map(id, stamps.values()))) == 1:
        return one_stamp_text(next(iter(stamps.values())), stamps)
    return grouped_stamps_text(stamps)


def one_stamp_text(stamp: Stamp, names: Iterable[str]) -> str:
    """``stamps_text`` of fields ``names`` all stamped ``stamp`` (a create's: ``fresh``)."""
    return db.dumps(one_stamp(stamp, names))


def one_stamp(stamp: Stamp, names: Iterable[str]) -> list[list[Any]]:
    """The value ``one_stamp_text`` writes (``fresh`` writes a chunk's as one column)."""
    return one_stamp_at(stamp.at, stamp.device, names)


def one_stamp_at(at: str, device: str, names: Iterable[str]) -> list[list[Any]]:
    """``one_stamp`` of a stamp given as its clock and device (no ``Stamp`` made)."""
    return [[at, device, sorted(names)]]


def grouped_stamps_text(stamps: Mapping[str, Stamp]) -> str:
    """``stamps_text`` field by field: the plain way, for any stamps."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name in sorted(stamps):
        stamp = stamps[name]
        groups.setdefault((stamp.at, stamp.device), []).append(name)
    return db.dumps([[at, device, names] for (at, device), names in groups.items()])


def stamps_of(text: str | None) -> dict[str, Stamp]:
    """A record's stamps from ``records.stamps``, in either form ``stamps_text`` explains."""
    stored = db.loads(text) or {}
    if isinstance(stored, dict):  # one [at, device] per field: rows written before the groups
        return {k: Stamp(v[0], v[1]) for k, v in stored.items()}
    out: dict[str, Stamp] = {}
    for at, device, names in stored:  # one Stamp per group, as written: they are immutable
        out.update(dict.fromkeys(names, Stamp(at, device)))
    return out


class StoredStamps(Mapping[str, Stamp]):
    """A record's stamps as ``records.stamps`` holds them, read at first use.

    Why: a push of residents the platform already knows loads every held record, and a create
    that echoes its values changes nothing (``merge.unchanged``): reading the stamps (JSON and
    a ``Stamp`` per group) was about a tenth of such a push's server CPU, for nothing."""

    __slots__ = ("_read", "_text")

    def __init__(self, text: str | None) -> None:
        self._text = text
        self._read: dict[str, Stamp] | None = None

    def _stamps(self) -> dict[str, Stamp]:
        if self._read is None:
            self._read = stamps_of(self._text)
        return self._read

    def __getitem__(self, name: str) -> Stamp:
        return self._stamps()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._stamps())

    def __len__(self) -> int:
        return len(self._stamps())

    def __repr__(self) -> str:
        return repr(self._stamps())


def from_db(r: Any) -> Row:
    """A ``records`` table row as a ``Row`` (its stamps read when first used)."""
    return _row(*(getattr(r, name) for name in _ROW_COLUMNS))


_ROW_COLUMNS = (
    "id", "form", "form_version", "grid", "title", "data", "status", "deleted", "version",
    "conflict", "stamps", "created_at", "created_by", "updated_at", "updated_by",
)  # fmt: skip


def from_result(rows: Iterable[Any], keys: Iterable[str]) -> Iterator[Row]:
    """``from_db`` of each of ``rows``, a result whose columns are ``keys`` (``result.keys()``
    of a ``records`` select), each row read by position. Why: SQLAlchemy's access by name
    costs ~0.9 µs a column, most of reading a held record (a push of residents the platform
    already knows reads every one); by position (``itemgetter``) 0.35 µs."""
    order = list(keys)
    pick = itemgetter(*(order.index(name) for name in _ROW_COLUMNS))
    for r in rows:
        yield _row(*pick(r))


def _row(
    id: str, form: str, form_version: int, grid: str | None, title: str, data: str | None,
    status: str, deleted: Any, version: int, conflict: str | None, stamps: str | None,
    created_at: str, created_by: str, updated_at: str, updated_by: str,
) -> Row:  # fmt: skip
    # by position, in ``Row``'s field order (``_ROW_COLUMNS``): by name it cost ~0.6 µs more
    # a held record, read for every create of a push of residents the platform knows
    return Row(
        id, form, form_version, grid, title, db.loads(data) or {}, status, bool(deleted),
        version, db.loads(conflict), StoredStamps(stamps), created_at, created_by, updated_at,
        updated_by,
    )  # fmt: skip


def grid_of(form: Form, data: Mapping[str, Any]) -> str | None:
    """The record's grid: its ``roles.grid`` field as text, or None when empty."""
    value = data.get(form.roles.grid) if form.roles.grid else None
    return None if is_empty(value) else str(value).strip()


def natural_keys(form: Form, data: Mapping[str, Any]) -> list[str]:
    """Normalised keys, as ``Store.natural_key`` makes them: one rule for both
    (``app.core.naturalkeys``: parts by field type, joined by "|").

    An absurdly long key (a draft may hold anything) is stored as its SHA-256, which keeps
    equality and fits a database index.
    """
    keys = []
    get = data.get
    for fields in form.natural_keys:
        key = key_of(get, parts_of(form, fields))
        if key is not None:
            keys.append(
                key if len(key) <= MAX_KEY else "sha256:" + sha256(key.encode()).hexdigest()
            )
    return keys


def _key_fields(form: Form) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f for fields in form.natural_keys for f in fields))


def _person_fields(form: Form) -> tuple[str, ...]:
    roles = form.roles
    return (roles.birth_date, *roles.name) if roles.birth_date else ()


class Derived:
    """``natural_keys`` and ``person_of`` of one transaction's records, remembered by the
    values they read.

    Why: a push derives both for every op three or four times (prefetch, create, claims,
    write) from dicts holding the same values; the pinyin of a name and the normalised keys
    then cost the push once. Only text and None are remembered (equal text gives equal
    results; ``1 == 1.0 == True`` would not); other values go the plain way. Keyed by the
    form object, which outlives the transaction (the service's form set holds it)."""

    def __init__(self) -> None:
        self._fields: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._keys: dict[tuple[int, tuple[str | None, ...]], list[str]] = {}
        self._people: dict[tuple[int, tuple[str | None, ...]], Person | None] = {}

    def _probe(self, form: Form, data: Mapping[str, Any], person: bool) -> tuple[Any, ...] | None:
        fields = self._fields.get(id(form))
        if fields is None:
            fields = self._fields[id(form)] = (_key_fields(form), _person_fields(form))
        probe = (id(form), *map(data.get, fields[person]))
        for value in probe[1:]:  # a loop, not all(...): this runs ~6 times per pushed op
            if value is not None and type(value) is not str:
                return None
        return probe

    def natural_keys(self, form: Form, data: Mapping[str, Any]) -> list[str]:
        """``natural_keys(form, data)`` (a new list each time: callers may change it)."""
        probe = self._probe(form, data, False)
        if probe is None:
            return natural_keys(form, data)
        found = self._keys.get(probe)
        if found is None:
            found = self._keys[probe] = natural_keys(form, data)
        return list(found)

    def person_of(self, form: Form, data: Mapping[str, Any]) -> Person | None:
        """``person_of(form, data)``."""
        probe = self._probe(form, data, True)
        if probe is None:
            return person_of(form, data)
        if probe not in self._people:
            self._people[probe] = person_of(form, data)
        return self._people[probe]


def grids_of(form: Form, datas: Sequence[Mapping[str, Any]]) -> list[str | None]:
    """``grid_of`` of each of ``datas`` (records of ``form``), as one column when every grid
    is text (a device's create): stripped in C, blanks None. Why: ``fresh.made`` works out
    a chunk's new records as columns (issue 17); tests/sync/test_push_made.py holds it
    against ``grid_of`` record by record."""
    field = form.roles.grid
    if not field:
        return [None] * len(datas)
    column = list(map(methodcaller("get", field), datas))
    if not TEXT_ONLY.issuperset(map(type, column)):
        return [grid_of(form, data) for data in datas]
    return [grid or None for grid in map(str.strip, column)]


def keys_of(form: Form, datas: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """``natural_keys`` of each of ``datas`` (records of ``form``), as columns when every
    key field of every record is filled text: each spec's parts normalised by one ``map``,
    joined by another. Why: as ``grids_of``; held against ``natural_keys`` the same way."""
    out: list[list[str]] = [[] for _ in datas]
    for fields in form.natural_keys:
        if not fields:  # a key of no parts: "" (as ``natural_keys`` makes it)
            return [natural_keys(form, data) for data in datas]
        columns = [list(map(methodcaller("get", f), datas)) for f in fields]
        cells = [v for column in columns for v in column]
        if not TEXT_ONLY.issuperset(map(type, cells)) or not all(map(str.strip, cells)):
            return [natural_keys(form, data) for data in datas]
        parts = [
            list(map(part_rule(form, f), column)) for f, column in zip(fields, columns, strict=True)
        ]
        keys = list(map("|".join, zip(*parts, strict=True)))
        if keys and max(map(len, keys)) > MAX_KEY:
            return [natural_keys(form, data) for data in datas]
        for found, key in zip(out, keys, strict=True):
            found.append(key)
    return out


def people_of(form: Form, datas: Sequence[Mapping[str, Any]]) -> list[Person | None]:
    """``person_of`` of each of ``datas`` (records of ``form``), as columns when every record
    has a birth date of at most ten characters and its first name field filled, both text:
    the name's spelling (``_spelling``) asked by one ``map``. Why: as ``grids_of``; held
    against ``person_of`` the same way."""
    roles = form.roles
    if not roles.birth_date or not roles.name:
        return [person_of(form, data) for data in datas]
    births = list(map(methodcaller("get", roles.birth_date), datas))
    names = list(map(methodcaller("get", roles.name[0]), datas))
    cells = births + names
    if (
        not TEXT_ONLY.issuperset(map(type, cells))
        or not all(map(str.strip, cells))
        or (births and max(map(len, births)) > 10)
    ):
        return [person_of(form, data) for data in datas]
    spelled = list(map(_spelling, names))
    return [
        None if s is None else Person(s[0], s[1], birth)
        for s, birth in zip(spelled, births, strict=True)
    ]


def person_of(form: Form, data: Mapping[str, Any]) -> Person | None:
    """(name, pinyin, birth date) for the fuzzy duplicate index, when the form has those roles."""
    roles = form.roles
    birth = data.get(roles.birth_date) if roles.birth_date else None
    if type(birth) is not str:  # text, the usual birth date, is asked without a call
        if is_empty(birth):
            return None
        birth = str(birth)
    elif not birth.strip():
        return None
    for field_id in roles.name:  # the first name filled
        name = data.get(field_id)
        if type(name) is str:
            if name.strip():
                break
        elif not is_empty(name):
            name = str(name)
            break
    else:
        return None
    spelled = _spelling(name)
    if spelled is None or len(birth) > 10:  # not a date: nothing to compare with
        return None
    return Person(spelled[0], spelled[1], birth)


@lru_cache(maxsize=65536)
def _spelling(name: str) -> tuple[str, str] | None:
    """A name's index spelling (itself as its first term, and its pinyin: the first Latin
    term, else the first), once per name.

    Why: a push of new residents asked ``name_terms`` and picked the pinyin from its terms
    for every record, names repeated or not (issue 17); the cache is ``name_terms``'s size.
    The terms are read as made (``name_term_run``) and no further than the pinyin: the
    surname's other readings and the initials were most of a new name's cost."""
    run = name_term_run(name[:MAX_NAME])
    first = next(run, None)
    if first is None:
        return None
    pinyin = first if first.isascii() else next((t for t in run if t.isascii()), first)
    return first[:MAX_NAME], pinyin[:MAX_NAME]
