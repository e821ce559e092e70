"""Field-level three-way merge: (base, server, incoming) -> merged values + conflicts.

Pure functions over plain dicts, used by the server to apply an op and by a device to rebase a
dirty local record onto a pulled version. The decision per field is a table, like Mergin's
(server change, local change) -> action table; PROTOCOL.md §6 prints the same table:

====  ===========================  ==============================  ===================  ========
row   server change (B -> S)       incoming change (B -> I)        value                conflict
====  ===========================  ==============================  ===================  ========
0     S written by the same device at a later edited_at  (any)     S                    -
1     any                          none (not sent, or I = B)       S                    -
      (but I = B while S is the same device's earlier edit: row 4, the person changed it back)
2     none (S = B)                 changed                         I                    -
3     changed                      changed to the same value       S                    -
4     changed by the same device   changed, different              later edited_at      -
5     changed                      equal after normalisation       later edited_at      soft
6     changed                      changed, different              later (provisional)  hard
====  ===========================  ==============================  ===================  ========

Values are compared as canonical JSON after dropping empties (None, "", [], {} are one value),
so a cleared field and a never-filled one are equal. The pseudo-field ``_status`` merges like a
field, but its conflicts are always soft (a status is not something a person typed). The
pseudo-field ``_deleted`` has its own record-level rules (update versus delete is a hard
conflict whose provisional state is "not deleted", so a person sees the record and decides).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from itertools import chain
from typing import Any

from app.core.records import DELETED_KEY, STATUS_KEY, is_empty
from app.core.textcheck import TEXT_ONLY
from app.core.textnorm import normalize_key

STATUS = STATUS_KEY
DELETED = DELETED_KEY
PSEUDO = frozenset({STATUS, DELETED})


class ConflictKind(StrEnum):
    """How much a conflict matters; sent as the plain string (PROTOCOL.md §6)."""

    HARD = "hard"  # the record is flagged until a person resolves it
    SOFT = "soft"  # reported only: different spellings of one value, or a status


class Take(StrEnum):
    """Which value a merge rule keeps for a field."""

    SERVER = "server"
    INCOMING = "incoming"
    LATER = "later"  # the later edited_at; ties keep the server


@dataclass(frozen=True)
class Stamp:
    """Who last changed a field and when (the op's hybrid-logical-clock text and device)."""

    at: str
    device: str


@dataclass(frozen=True)
class Conflict:
    """Both sides of a concurrent change of one field; ``provisional`` is the value kept now."""

    field: str
    kind: ConflictKind
    base: Any
    server: Any
    incoming: Any
    provisional: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ConflictKind(self.kind))  # a stray word fails here

    def as_dict(self) -> dict[str, Any]:
        """The wire shape (PROTOCOL.md §6)."""
        return {
            "field": self.field,
            "kind": self.kind.value,
            "base": self.base,
            "server": self.server,
            "incoming": self.incoming,
            "provisional": self.provisional,
        }


@dataclass(frozen=True)
class Merged:
    """The merged full state, what differs from the server's state, and the conflicts."""

    values: dict[str, Any]
    changed: dict[str, Any]
    conflicts: tuple[Conflict, ...] = ()
    stamps: Mapping[str, Stamp] = field(default_factory=dict)  # read-only: copy to change

    @property
    def hard(self) -> tuple[Conflict, ...]:
        """Conflicts that flag the record until a person resolves them."""
        return tuple(c for c in self.conflicts if c.kind is ConflictKind.HARD)


class Action(IntEnum):
    """The rows of the merge table."""

    STALE = 0  # the device itself wrote this field later: an old op arriving late
    KEEP = 1  # incoming did not change the field
    TAKE = 2  # only incoming changed it
    SAME = 3  # both changed it to the same value
    ORDERED = 4  # one device's own edits, reordered in transit
    SOFT = 5  # different spellings of the same value
    HARD = 6  # a real concurrent edit


@dataclass(frozen=True)
class Rule:
    take: Take
    conflict: ConflictKind | None


RULES: dict[Action, Rule] = {
    Action.STALE: Rule(Take.SERVER, None),
    Action.KEEP: Rule(Take.SERVER, None),
    Action.TAKE: Rule(Take.INCOMING, None),
    Action.SAME: Rule(Take.SERVER, None),
    Action.ORDERED: Rule(Take.LATER, None),
    Action.SOFT: Rule(Take.LATER, ConflictKind.SOFT),
    Action.HARD: Rule(Take.LATER, ConflictKind.HARD),
}


def norm(value: Any) -> Any:
    """Empty values (None, blank text, [], {}) all become None."""
    kind = type(value)
    if kind is str:
        return value if value.strip() else None
    if kind in (int, float, bool) or value is None:
        return value
    return None if is_empty(value) else value


def _canon(value: Any) -> str:
    return json.dumps(norm(value), sort_keys=True, ensure_ascii=False)


def same(a: Any, b: Any) -> bool:
    """Equal as stored values: type-aware (True is not 1, 1 is not 1.0) and empties equal."""
    if type(a) is str and type(b) is str:  # the common cases first, without normalising
        return a == b or (not a.strip() and not b.strip())
    if a is None:
        return norm(b) is None
    if b is None:
        return norm(a) is None
    a, b = norm(a), norm(b)
    if a is None or b is None:
        return a is b
    if type(a) is not type(b):
        return False
    if isinstance(a, str | int | float | bool):
        return bool(a == b)
    return _canon(a) == _canon(b)


def equivalent(a: Any, b: Any) -> bool:
    """Equal after normalisation: text by ``normalize_key``, lists as sets, 1 and 1.0."""
    if isinstance(a, str) and isinstance(b, str):
        return normalize_key(a) == normalize_key(b)
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(_soft_key, a)) == sorted(map(_soft_key, b))
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool | type(None)):
        return not isinstance(b, bool) and float(a) == float(b)
    return False


def _soft_key(item: Any) -> str:
    return normalize_key(item) if isinstance(item, str) else _canon(item)


def classify(
    base: Any, server: Any, incoming: Any, *, sent: bool, same_device: bool, stale: bool = False
) -> Action:
    """Which row of the table applies to one field."""
    if stale:
        return Action.STALE
    if not sent:
        return Action.KEEP
    if same(incoming, base):
        # Nothing new, unless the server value is this device's own earlier edit: then the
        # person changed the field back (A -> B -> A), and that later edit is row 4.
        return Action.ORDERED if same_device and not same(server, incoming) else Action.KEEP
    if same(server, base):
        return Action.TAKE
    if same(server, incoming):
        return Action.SAME
    if same_device:
        return Action.ORDERED
    if equivalent(server, incoming):
        return Action.SOFT
    return Action.HARD


def op_changes(kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The incoming side of an op: a create/update implies "not deleted", a delete is only that."""
    if kind == "delete":
        return {DELETED: True}
    if kind == "resolve":
        return dict(fields)
    changes = {k: v for k, v in fields.items() if k != DELETED}
    changes[DELETED] = False
    return changes


def merge(
    base: Mapping[str, Any],
    server: Mapping[str, Any],
    incoming: Mapping[str, Any],
    *,
    edited_at: str = "",
    device: str = "",
    stamps: Mapping[str, Stamp] | None = None,
) -> Merged:
    """Merge the incoming changes into the server state, given their common base.

    ``base`` and ``server`` are full states (fields plus ``_status``/``_deleted``); ``incoming``
    holds only what the op changed (see ``op_changes``). ``stamps`` tell which device last
    changed each server field and when; the result carries the updated stamps.
    """
    return unchanged(server, incoming, stamps) or merge_fields(
        base, server, incoming, edited_at=edited_at, device=device, stamps=stamps
    )


def unchanged(
    server: Mapping[str, Any],
    incoming: Mapping[str, Any],
    stamps: Mapping[str, Stamp] | None = None,
) -> Merged | None:
    """The merge of changes that change nothing, whatever the base, clock and device; None
    when they may change something.

    Why: a create of a resident the platform already holds with the same values (the same
    people typed on another device, a device set up again) merges into the held record. Every
    sent value equals the server's, so every field is table row 1 or 3 (or 0) and keeps the
    server's value, and a live record told "not deleted" stays live: nothing changes and
    nothing conflicts. The general merge spent the most of such a push's server CPU
    classifying fields three ways to find that out. Equal to ``merge_fields`` by a property
    test (tests/sync/test_merge.py)."""
    if server.get(DELETED) or DELETED not in incoming or incoming[DELETED]:
        return None
    for name, value in incoming.items():
        held = server.get(name)
        if type(value) is str and value == held:  # most values: ``same`` without the call
            continue
        if name != DELETED and not same(value, held):
            return None
    # a held record's values are text (``is_empty`` of text is a blank test): one call less
    values = {k: v for k, v in server.items() if (v.strip() if type(v) is str else not is_empty(v))}
    values[DELETED] = False
    # the stamps as they were, not read (a held record's are read at first use)
    return Merged(values, {}, (), stamps if stamps is not None else {})


def merge_fields(
    base: Mapping[str, Any],
    server: Mapping[str, Any],
    incoming: Mapping[str, Any],
    *,
    edited_at: str = "",
    device: str = "",
    stamps: Mapping[str, Stamp] | None = None,
) -> Merged:
    """``merge`` field by field through the table: the plain path every short cut must equal."""
    before = dict(stamps or {})
    new_stamps = dict(before)
    values = {k: v for k, v in server.items() if not is_empty(v)}
    conflicts: list[Conflict] = []
    mine = Stamp(edited_at, device)
    for name in sorted(k for k in incoming if k != DELETED):
        b, s, i = norm(base.get(name)), norm(server.get(name)), norm(incoming[name])
        stamp = before.get(name)
        ours = bool(device) and stamp is not None and stamp.device == device
        stale = ours and stamp is not None and stamp.at > edited_at
        rule = RULES[classify(b, s, i, sent=True, same_device=ours, stale=stale)]
        take = rule.take is Take.INCOMING or (
            rule.take is Take.LATER and edited_at > (stamp.at if stamp else "")
        )
        if rule.conflict:
            kind = ConflictKind.SOFT if name == STATUS else rule.conflict
            conflicts.append(Conflict(name, kind, b, s, i, i if take else s))
        if take:
            _put(values, name, i)
            new_stamps[name] = mine
    deleted, conflict = _merge_deleted(base, server, incoming, before, mine)
    if conflict is not None:
        conflicts.append(conflict)
    if deleted != bool(server.get(DELETED)):
        new_stamps[DELETED] = mine
    values[DELETED] = deleted
    return Merged(values, _changed(server, values), tuple(conflicts), new_stamps)


def merge_new(incoming: Mapping[str, Any], *, edited_at: str = "", device: str = "") -> Merged:
    """``merge({}, {}, incoming)`` for a record nobody holds yet, without the three-way
    comparisons (every filled value is taken, nothing can conflict).

    Why: a push of new residents merges each create against nothing; the general merge spent
    ~8 % of the platform's push CPU classifying fields against two empty states. Equal to the
    general merge by a property test (tests/sync/test_merge.py)."""
    mine = Stamp(edited_at, device)
    values: dict[str, Any]
    texts = incoming.values()
    if TEXT_ONLY.issuperset(map(type, texts)):  # a device's fields: all text
        names = sorted(incoming)  # the names alone: no tuple compared
        if all(map(str.strip, texts)):  # none blank (the usual create): one pass in C
            values = {n: incoming[n] for n in names}
        else:
            values = {n: v for n in names if (v := incoming[n]).strip()}
    else:
        values = {}
        for name in sorted(incoming):
            value = incoming[name]
            if type(value) is str:  # most values: ``norm`` without the call
                if value.strip():
                    values[name] = value
            elif name != DELETED and (value := norm(value)) is not None:
                values[name] = value
    values.pop(DELETED, None)  # a text under the name: not a field
    stamps = dict.fromkeys(values, mine)
    changed = dict(values)
    deleted = bool(incoming.get(DELETED, False))
    if deleted:
        stamps[DELETED] = mine
        changed[DELETED] = True
    values[DELETED] = deleted
    return Merged(values, changed, (), stamps)


def merge_new_all(
    changes: Sequence[Mapping[str, Any]],
    edited_ats: Sequence[str],
    device: str = "",
    *,
    texts: bool = False,
) -> list[Merged]:
    """``merge_new`` of each of ``changes`` (the i-th stamped ``edited_ats[i]``), as a column
    when every value of every one is filled text and none sends ``_deleted`` (a push of new
    residents): the types and blanks of all values in one pass each, the names sorted once
    per set of names (changes whose names come sorted, as a device sends them from its
    outbox, copied as they are), one ``Stamp`` per clock. Else ``merge_new`` one by one.

    Why: ``merge_new`` asked each create for its types, blanks, sorted names and a ``Stamp``
    of its own, and copied its values name by name: ~4 µs of a new resident's server CPU
    (issue 17). Held against ``merge_new`` by tests/sync/test_merge.py. ``texts``: the
    caller knows every value to be filled text (``new_data_all`` said so of them)."""
    if not texts and not filled_texts(changes):
        return [
            merge_new(c, edited_at=at, device=device)
            for c, at in zip(changes, edited_ats, strict=True)
        ]
    orders: dict[tuple[str, ...], _Order | None] = {}
    stamps: dict[str, Stamp] = {}
    out: list[Merged] = []
    for incoming, at in zip(changes, edited_ats, strict=True):
        names = tuple(incoming)
        if names in orders:
            order = orders[names]
        else:  # a set of names in an order not seen yet: sorted once
            order = orders[names] = _order(names)
        if order is None:  # ``_deleted`` among the names
            out.append(merge_new(incoming, edited_at=at, device=device))
            continue
        mine = stamps.get(at) or stamps.setdefault(at, Stamp(at, device))
        values = dict(incoming) if order is _SORTED else {n: incoming[n] for n in order}
        changed = dict(values)
        merged_stamps = dict.fromkeys(values, mine)
        values[DELETED] = False
        out.append(Merged(values, changed, (), merged_stamps))
    return out


def filled_texts(changes: Sequence[Mapping[str, Any]]) -> bool:
    """Every value of every one of ``changes`` is text, none blank (a device's creates)."""
    texts = list(chain.from_iterable(c.values() for c in changes))
    return TEXT_ONLY.issuperset(map(type, texts)) and all(map(str.strip, texts))


def new_data_all(changes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """The data ``merge_new`` gives each of ``changes`` (its values without the pseudo-fields,
    in its order), without the merge, when ``merge_new_all`` takes them as a column (every
    value filled text, none sends ``_deleted``); else None.

    Why: a push of residents the platform knows needs each create's data for its keys
    (``fresh.made``), and its merge only for a create that makes a new record: merging every
    create first was ~6 % of such a push's ``push_all`` CPU, for nothing (issue 17). Held
    against ``merge_new`` by tests/sync/test_merge.py."""
    if not filled_texts(changes):
        return None
    orders: dict[tuple[str, ...], _Order | None] = {}
    out: list[dict[str, Any]] = []
    for incoming in changes:
        names = tuple(incoming)
        if names in orders:
            order = orders[names]
        else:
            order = orders[names] = _order(names)
        if order is None:  # ``_deleted`` among the names
            return None
        data = dict(incoming) if order is _SORTED else {n: incoming[n] for n in order}
        data.pop(STATUS, None)
        out.append(data)
    return out


_Order = tuple[str, ...]
_SORTED: _Order = ()  # the names come sorted already: their changes are copied as they are


def _order(names: tuple[str, ...]) -> _Order | None:
    """How ``merge_new_all`` takes changes with these names (in this order): ``_SORTED``, or
    the names sorted; None: one by one (``merge_new``), as ``_deleted`` is among them."""
    if DELETED in names:
        return None
    order = tuple(sorted(names))
    return _SORTED if order == names else order


def _merge_deleted(
    base: Mapping[str, Any],
    server: Mapping[str, Any],
    incoming: Mapping[str, Any],
    stamps: Mapping[str, Stamp],
    mine: Stamp,
) -> tuple[bool, Conflict | None]:
    """Record-level rules: update versus delete is a hard conflict, the record stays live."""
    b, s = bool(base.get(DELETED)), bool(server.get(DELETED))
    i = bool(incoming[DELETED]) if DELETED in incoming else b
    stamp = stamps.get(DELETED)
    ours = bool(mine.device) and stamp is not None and stamp.device == mine.device
    if i == b:
        if s == b:
            return s, None  # row 1: nothing new about deletion
        if ours and stamp is not None:  # this device deleted (or restored) it: later act wins
            return (s if stamp.at >= mine.at else i), None
        if not _edits(base, incoming):
            return s, None  # a no-op update of a record deleted elsewhere
        return False, Conflict(
            DELETED, ConflictKind.HARD, False, True, False, False
        )  # update vs delete
    if s == b:
        if i and _server_edits(base, server, stamps, mine.device):
            return False, Conflict(
                DELETED, ConflictKind.HARD, False, False, True, False
            )  # delete vs update
        return i, None
    return s, None  # both changed it the same way (delete vs delete)


def _edits(base: Mapping[str, Any], incoming: Mapping[str, Any]) -> bool:
    return any(k not in PSEUDO and not same(v, base.get(k)) for k, v in incoming.items())


def _server_edits(
    base: Mapping[str, Any], server: Mapping[str, Any], stamps: Mapping[str, Stamp], device: str
) -> bool:
    """Fields another device changed since the base (one's own edits do not block a delete)."""
    for key in set(base) | set(server):
        if key in PSEUDO or same(base.get(key), server.get(key)):
            continue
        stamp = stamps.get(key)
        if not device or stamp is None or stamp.device != device:
            return True
    return False


def _put(values: dict[str, Any], name: str, value: Any) -> None:
    if value is None:
        values.pop(name, None)
    else:
        values[name] = value


def _changed(server: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    keys = (set(server) | set(values)) - {DELETED}
    out = {k: norm(values.get(k)) for k in sorted(keys) if not same(server.get(k), values.get(k))}
    if bool(server.get(DELETED)) != bool(values.get(DELETED)):
        out[DELETED] = bool(values.get(DELETED))
    return out


@dataclass(frozen=True)
class Resolved:
    """A resolve applied: the new state, what changed, and the conflicts still open."""

    values: dict[str, Any]
    changed: dict[str, Any]
    remaining: list[dict[str, Any]]
    stamps: dict[str, Stamp]


def resolve(
    server: Mapping[str, Any],
    open_conflicts: Iterable[Mapping[str, Any]],
    chosen: Mapping[str, Any],
    *,
    edited_at: str = "",
    device: str = "",
    stamps: Mapping[str, Stamp] | None = None,
) -> Resolved:
    """A person's choice: write ``chosen`` as given and close the conflicts of those fields."""
    values = {k: v for k, v in server.items() if not is_empty(v)}
    new_stamps = dict(stamps or {})
    for name, value in chosen.items():
        if name == DELETED:
            values[DELETED] = bool(value)
        else:
            _put(values, name, norm(value))
        new_stamps[name] = Stamp(edited_at, device)
    values[DELETED] = bool(values.get(DELETED))
    remaining = [dict(c) for c in open_conflicts if c["field"] not in chosen]
    return Resolved(values, _changed(server, values), remaining, new_stamps)


def combine_conflicts(
    open_conflicts: Iterable[Mapping[str, Any]], new: Iterable[Conflict]
) -> list[dict[str, Any]]:
    """Open hard conflicts after a merge: one entry per field, the original base kept."""
    by_field = {c["field"]: dict(c) for c in open_conflicts}
    for conflict in new:
        if conflict.kind is not ConflictKind.HARD:
            continue
        entry = conflict.as_dict()
        if conflict.field in by_field:
            entry["base"] = by_field[conflict.field]["base"]
        by_field[conflict.field] = entry
    return [by_field[k] for k in sorted(by_field)]
