"""A chunk's creates of new records, applied as columns (issue 17: server CPU per pushed op).

Most ops of a nightly push create a record nobody holds: no natural key of it is held or
claimed, nobody on the platform may be the same person, no other op of the chunk names its
record, op id, keys or people. Such an op meets nothing but its own values, so the per-op path
(``Service._apply``: an ``Outcome``, a ``Row``, a dict per table row, a probe of the derived
keys and people at every step) only rebuilt what one pass over the chunk knows. Here each is
merged (``merge_new``), scoped and validated by the same rule functions, then written as one
tuple per table row (``tx.Fresh``); its data is encoded once for the record and its version.

Which ops qualify is decided for the whole chunk before any op applies (``sort_creates``), and
conservatively: an op sharing a record id, op id, key or birth date with another op of the
chunk it could meet goes the plain way, in order, so answers and stored rows are the plain
path's (tests/sync/test_push_fresh.py holds the two against each other on both backends).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter, methodcaller
from typing import Any

from app.core import rules
from app.core.forms import Form, FormSet
from app.core.naturalkeys import part_rule
from app.core.records import RecordStatus, canonical_json_all
from sync import protocol as p
from sync.merge import DELETED, STATUS, Merged, merge_new_all, new_data_all, op_changes
from sync.server import oplog
from sync.server.pushop import Ctx
from sync.server.rows import Person, grids_of, keys_of, one_stamp, one_stamp_at, people_of
from sync.server.tx import KeyRef, Tx

Part = tuple[str, str, str]  # (form, key field, normalised value)
_DRAFT = RecordStatus.DRAFT.value  # read once: an enum member's value is a property
_COMPLETE = RecordStatus.COMPLETE.value


class Filled:
    """The merge of a create whose values are all filled text, none ``_deleted``, left
    unbuilt: ``merge_new`` takes each of its fields as sent, stamped with the op's one stamp,
    so the record's status and stamps follow from the op (``_status_of``, ``_stamps_of``).

    Why: a ``Merged`` per new resident (values, changes and stamps: four dicts and a
    ``Stamp``) was ~2.3 ms of each 1,000-op request's server CPU, read for those two facts
    only (issue 17). tests/sync/test_push_made.py holds both against ``merge_new``'s."""

    __slots__ = ()


FILLED = Filled()
# A create of a new record as worked out once: its merge, data, grid, natural keys and person
# (no merge for a create one of whose keys is taken: it makes no new record here)
Create = tuple[Merged | Filled | None, dict[str, Any], str | None, list[str], Person | None]


@dataclass(frozen=True)
class Read:
    """What ``Service._prefetch`` worked out for a chunk: per op, in op order, the record id
    after aliases and the form; by op index, each create of a record not here (``made``)."""

    rids: list[str]
    forms: list[Form]
    made: dict[int, Create]


def made(
    tx: Tx, ctx: Ctx, ops: Sequence[p.Op], rids: Sequence[str], forms: Mapping[str, Form]
) -> dict[int, Create]:
    """Each create of a record the chunk's load found absent (by op index, in op order): its
    merge, data, grid, natural keys and person, worked out once for the chunk (the merge of
    a device's create, of filled text, is ``completed``'s ``FILLED``, as is the person, once
    the prefetch knows which creates meet a held key and which merge into a held record).

    Why: ``Service._prefetch`` needs the keys and people of the chunk's new records for its
    bulk reads, ``sort_creates`` their merge, scope, keys and person and ``write`` their
    rows; each used to work them out again from its own copy of the values (issue 17). The
    same rule functions as the per-op path's: ``merge_new`` (as a column, ``merge_new_all``),
    then the grids, keys and people of each form's records as columns (``grids_of``,
    ``keys_of``, ``people_of``: held against ``grid_of``, ``natural_keys`` and ``person_of``
    by tests/sync/test_push_made.py), from the merged values as ``Service._create`` reads
    them."""
    held, device, edited_at = tx.rows.get, ctx.device_id, ctx.edited_at
    picked: dict[str, list[int]] = {}
    for index, (op, rid) in enumerate(zip(ops, rids, strict=True)):
        if (
            op.kind == "create"
            and not op.base_version
            and rid == op.record_id
            and held(rid, False) is None  # loaded, and not there
        ):
            picked.setdefault(op.form, []).append(index)
    out: dict[int, Create] = {}
    for name, indexes in picked.items():
        form = forms[name]
        changes = [_changes(ops[i]) for i in indexes]
        datas = new_data_all(changes)  # filled text: the data without the merge
        merges: list[Merged | None] = [None] * len(indexes)
        if datas is None:  # merged now (``merge_new`` where need be), as before
            merged = merge_new_all(changes, [edited_at(ops[i]) for i in indexes], device)
            merges[:], datas = merged, list(map(_data, merged))
        grids, keys = grids_of(form, datas), keys_of(form, datas)
        people = [None] * len(indexes)  # worked out by ``completed``
        out.update(zip(indexes, zip(merges, datas, grids, keys, people, strict=True), strict=True))
    return out if len(picked) < 2 else dict(sorted(out.items()))


def completed(
    ctx: Ctx,
    ops: Sequence[p.Op],
    made: dict[int, Create],
    forms: Sequence[Form],
    merging: Container[int],
    taken: Container[KeyRef],
) -> dict[int, Create]:
    """``made`` with the merge of each create none of whose keys is ``taken`` (``FILLED``:
    ``made`` left only creates of filled text unmerged) and the person of each but those of
    ``merging`` (``people_of``, each form's as a column).

    A create with a taken key makes no record as a column (``sort_creates``: it is not
    fresh) and reads no merge of its own (``echoes``, or the plain path, which merges it
    itself); nor does one merging into the record in the caller's scope that holds its key
    (a push of residents the platform knows) read a person. Why: the merge and the pinyin of
    every resident of such a push were worked out for nothing (issue 17)."""
    merge: list[int] = []
    picked: dict[str, list[int]] = {}
    for index, create in made.items():
        form = forms[index].id
        if create[0] is None and not (taken and any((form, k) in taken for k in create[3])):
            merge.append(index)
        if index not in merging:
            picked.setdefault(form, []).append(index)
    if not merge and not picked:
        return made
    out = dict(made)
    for index in merge:  # filled text, none sends ``_deleted`` (``new_data_all`` took them)
        _unmerged, data, grid, keys, person = out[index]
        out[index] = (FILLED, data, grid, keys, person)
    for indexes in picked.values():
        datas = [made[i][1] for i in indexes]
        for index, person in zip(indexes, people_of(forms[indexes[0]], datas), strict=True):
            merge_of, data, grid, keys, _unknown = out[index]
            out[index] = (merge_of, data, grid, keys, person)
    return out


def _changes(op: p.Op) -> Mapping[str, Any]:
    # ``op_changes`` of a create only drops a sent ``_deleted`` and says "not deleted",
    # which is what ``merge_new`` reads from changes without one: no copy of the fields
    fields = op.fields
    return fields if DELETED not in fields else op_changes("create", fields)


@dataclass(frozen=True)
class Creates:
    """A chunk's creates of new ids sorted before any op applies (op index -> what was
    worked out for it, in op order): ``fresh`` meet nothing and are written as columns;
    ``met`` would be fresh but for a natural key the platform holds or claims (their keys:
    ``echoes`` answers those that echo a held record). Every other op goes the plain way."""

    fresh: dict[int, Create]
    met: dict[int, list[str]]


def sort_creates(tx: Tx, ctx: Ctx, ops: Sequence[p.Op], read: Read, formset: FormSet) -> Creates:
    """The chunk's creates that meet nothing and those that meet only a held key."""
    if not read.made:
        return Creates({}, {})
    op_ids = Counter(map(_OP_ID, ops))
    named = Counter(map(_RECORD_ID, ops))
    named.update(read.rids)
    found, met = _alone(tx, ctx, ops, read, formset, op_ids, named)
    if found:
        parts, births = others(tx, ops, read, found)
        found = unaliased(tx, ops, read, _apart(found, read, parts, births))
    return Creates(found, met)


_OP_ID = attrgetter("op_id")
_RECORD_ID = attrgetter("record_id")


def unaliased(
    tx: Tx, ops: Sequence[p.Op], read: Read, found: dict[int, Any], *, merging: bool = False
) -> dict[int, Any]:
    """The ops of ``found`` whose references name no new record id of the chunk that may
    become an alias: of the chunk's other ops, or (``merging``: the ops of ``found`` merge
    their new ids into held records themselves, as echoes do) of any op of the chunk.

    Why: an op may merge its new record into a held one (``merged_into``), and the ops after
    it then name the held record instead (``Service._canonical_refs`` reads the aliases the
    chunk has made so far), which an op decided before the chunk applies cannot know; a record
    that exists never becomes an alias. Dropping an op of fresh creates makes its record id one
    of the others': repeated until none is dropped."""
    found = dict(found)
    while True:
        others = {
            op.record_id
            for i, op in enumerate(ops)
            if (merging or i not in found) and tx.rows.get(read.rids[i]) is None
        }
        if not others:  # a push of new records only: nothing to look for
            return found
        drop = naming(read.forms, ops, found, others)
        if not drop:
            return found
        for index in drop:
            del found[index]


def _alone(
    tx: Tx,
    ctx: Ctx,
    ops: Sequence[p.Op],
    read: Read,
    formset: FormSet,
    op_ids: Counter[str],
    named: Counter[str],
) -> tuple[dict[int, Create], dict[int, list[str]]]:
    """The creates of ``read.made`` that on their own are plain creates of a new record: a
    new op id and record id, named once in the chunk, references not aliased, keys free,
    nobody on the platform like the person, in the caller's scope and valid if complete; and
    (second) the natural keys of those for which all of that holds up to the keys, and one
    is held or claimed. One pass over ``made`` (each op's merge, keys and person worked out
    there), the scope asked once per grid (issue 17: a loop per op re-reading the same)."""
    known, logged, aliases = ctx.known_ops, tx.op_rows, ctx.aliases
    in_scope = Scope(ctx.user.in_scope)
    forms = read.forms
    # keys taken, asked of the chunk's new records as a column
    taken = tx.keys_taken((forms[i].id, k) for i, c in read.made.items() for k in c[3])
    asked: list[tuple[int, Create]] = []  # in scope, keys free: is anybody like the person?
    met: dict[int, list[str]] = {}
    for index, create in read.made.items():
        op = ops[index]
        op_id = op.op_id
        if (
            op_ids[op_id] != 1
            or op_id in known
            or op_id in logged
            or named[op.record_id] != 2  # once as named, once after aliases: by this op alone
        ):
            continue
        form = forms[index]
        if aliases and any(isinstance(v, str) and v in aliases for v in _ref_values(form, op)):
            continue
        keys = create[3]
        if taken and any((form.id, k) in taken for k in keys):
            met[index] = keys
        elif create[0] is not None and in_scope[create[2]]:  # no merge: the plain way
            asked.append((index, create))
    # people alike, as a column of those creates only: a create meeting a held key (a push
    # of residents the platform knows) asks nobody's person (its prefetch read none)
    alike = tx.alike((forms[i].id, c[4]) for i, c in asked if c[4] is not None)
    found: dict[int, Create] = {}
    for index, create in asked:
        merged, data, _grid, _keys, person = create
        form = forms[index]
        if (person is None or not alike or (form.id, person) not in alike) and (
            _status_of(merged, ops[index]) != _COMPLETE
            or not any(i.severity == "error" for i in rules.validate(form, data, formset))
        ):
            found[index] = create
    return found, met


class Scope(dict[str | None, bool]):
    """``User.in_scope`` of each grid, asked once per grid (``echoes`` asks it too)."""

    def __init__(self, ask: Callable[[str | None], bool]) -> None:
        super().__init__()
        self._ask = ask

    def __missing__(self, grid: str | None) -> bool:
        self[grid] = answer = self._ask(grid)
        return answer


def _ref_values(form: Form, op: p.Op) -> Iterator[Any]:
    fields = op.fields
    return (fields.get(k) for k in form.reference_fields)


def ref_ids(form: Form, op: p.Op) -> Iterator[str]:
    """The record ids the op's reference fields name."""
    return (v for v in _ref_values(form, op) if isinstance(v, str))


def naming(
    forms: Sequence[Form], ops: Sequence[p.Op], indexes: Iterable[int], names: Container[str]
) -> list[int]:
    """Those of ``indexes`` (in order) whose op's reference fields (``ref_ids``) name one of
    ``names``, read as one column per form and reference field. Why: ``unaliased`` asked
    ``ref_ids`` of each op of a push of residents the platform knows, a generator per op to
    find most often no reference at all (issue 17). Held against ``ref_ids`` by
    tests/sync/test_push_made.py."""
    by_form: dict[str, list[int]] = {}
    for index in indexes:
        by_form.setdefault(forms[index].id, []).append(index)
    found: set[int] = set()
    for group in by_form.values():
        fields = [ops[i].fields for i in group]
        for field in forms[group[0]].reference_fields:
            found.update(
                i
                for i, v in zip(group, map(methodcaller("get", field), fields), strict=True)
                if isinstance(v, str) and v in names
            )
    return sorted(found)


def ref_ids_all(forms: Mapping[str, Form], ops: Sequence[p.Op]) -> list[str]:
    """The record ids the reference fields of all ``ops`` name (``ref_ids`` of each, in
    another order), read as one column per form and reference field. Why: ``ref_ids`` per
    op made two generators per pushed op to find a resident's one house, most often none
    (issue 17). Held against ``ref_ids`` by tests/sync/test_push_made.py."""
    by_form: dict[str, list[dict[str, Any]]] = {}
    for op in ops:
        by_form.setdefault(op.form, []).append(op.fields)
    out: list[str] = []
    for name, fields in by_form.items():
        for field in forms[name].reference_fields:
            out += [v for v in map(methodcaller("get", field), fields) if isinstance(v, str)]
    return out


def _data(merged: Merged) -> dict[str, Any]:
    """The record's data: the merged values without the pseudo-fields (``merge_new`` leaves
    no empty value and takes the names in order, as ``clean`` would)."""
    data = dict(merged.values)  # a copy and two deletions in C, not a test per field
    data.pop(STATUS, None)
    data.pop(DELETED, None)
    return data


def _stamps(merged: Merged) -> list[list[Any]]:
    """The value ``stamps_text`` writes for a create: ``merge_new`` stamps every field with
    the op's one stamp (``one_stamp``); none at all are an empty list of groups."""
    stamps = merged.stamps
    return one_stamp(stamps[next(iter(stamps))], stamps) if stamps else []


def _merge(merged: Merged | Filled | None) -> Merged:
    """The built merge of a create ``_alone`` found fresh (each has one: ``completed``)."""
    assert isinstance(merged, Merged)
    return merged


def _status_of(merged: Merged | Filled | None, op: p.Op) -> str:
    """``_status`` of the create's merge (``FILLED``: of the fields ``merge_new`` takes)."""
    if isinstance(merged, Filled):
        return str(op.fields.get(STATUS) or _DRAFT)
    return _status(_merge(merged))


def _stamps_of(merged: Merged | Filled | None, op: p.Op, at: str, device: str) -> list[list[Any]]:
    """``_stamps`` of the create's merge (``FILLED``: every field stamped ``at`` by
    ``device``, the op's clock as ``Ctx.edited_at`` reads it)."""
    if isinstance(merged, Filled):
        fields = op.fields
        return one_stamp_at(at, device, fields) if fields else []
    return _stamps(_merge(merged))


def _status(merged: Merged) -> str:
    return str(merged.values.get(STATUS) or _DRAFT)


def _key_parts(form: Form, data: dict[str, Any]) -> Iterator[Part]:
    """The normalised values of ``data``'s natural-key fields (the parts keys are made of)."""
    for fields in form.natural_keys:
        for name in fields:
            value = data.get(name)
            if value is not None and str(value).strip() != "":
                yield form.id, name, part_rule(form, name)(str(value))


def _birth(form: Form, data: dict[str, Any]) -> tuple[str, str] | None:
    field = form.roles.birth_date
    value = data.get(field) if field else None
    return None if value is None else (form.id, str(value))


def others(
    tx: Tx, ops: Sequence[p.Op], read: Read, found: Container[int]
) -> tuple[set[Part], set[tuple[str, str]]]:
    """Key parts and birth dates the chunk's other ops may give their records, over-counted:
    each field of an edit may end up held or sent, so both are counted."""
    parts: set[Part] = set()
    births: set[tuple[str, str]] = set()
    for index, op in enumerate(ops):
        if index in found:
            continue
        form = read.forms[index]
        row = tx.rows.get(read.rids[index])
        for data in (row.data if row else {}, op.fields):
            parts.update(_key_parts(form, data))
            birth = _birth(form, data)
            if birth is not None:
                births.add(birth)
    return parts, births


def _apart(
    found: dict[int, Create],
    read: Read,
    parts: set[Part],
    births: set[tuple[str, str]],
) -> dict[int, Create]:
    """The creates of ``found`` that meet none of the chunk's other ops: no key made of
    ``parts``, no birth date in ``births``, no key and no look-alike person of another.
    Keys shared and people born the same day are looked for as columns first: most chunks
    have neither, and then no create is asked one by one."""
    forms = read.forms
    keys = [(forms[i].id, k) for i, create in found.items() for k in create[3]]
    shared = {k for k, n in Counter(keys).items() if n > 1} if len(set(keys)) < len(keys) else ()
    alike = _alike(found, forms)
    if not shared and not alike and not parts and not births:
        return found
    out: dict[int, Create] = {}
    for index, create in found.items():
        _merged, data, _grid, own_keys, _person = create
        form = forms[index]
        if index in alike or (shared and any((form.id, k) in shared for k in own_keys)):
            continue
        if parts and meets(form, data, parts):
            continue
        if births and (birth := _birth(form, data)) is not None and birth in births:
            continue
        out[index] = create
    return out


def _alike(found: dict[int, Create], forms: Sequence[Form]) -> set[int]:
    """The creates of ``found`` whose person is like another's of ``found`` (same form)."""
    people: dict[tuple[str, str], list[tuple[int, Person]]] = {}
    for index, create in found.items():
        person = create[4]
        if person is not None:
            people.setdefault((forms[index].id, person.birth), []).append((index, person))
    out: set[int] = set()
    for group in people.values():
        if len(group) > 1:
            for index, person in group:
                if any(j != index and person.alike(q) for j, q in group):
                    out.add(index)
    return out


def meets(form: Form, data: dict[str, Any], parts: set[Part]) -> bool:
    """Every field of one of the form's natural keys has a value in ``parts``: another op
    of the chunk may make the same key."""
    values = {f: v for _form, f, v in _key_parts(form, data)}
    return any(
        all(f in values and (form.id, f, values[f]) in parts for f in spec)
        for spec in form.natural_keys
    )


def write(
    tx: Tx, ctx: Ctx, ops: Sequence[p.Op], read: Read, fast: dict[int, Create]
) -> list[tuple[int, dict[str, Any]]]:
    """Buffer the records of ``fast`` and their rows (``tx.fresh``); returns each op's
    answer by op index. The caller has taken each record's change number in op order.

    The records' data, stamps and answers are each encoded as one column
    (``canonical_json_all``), with no plainness pass where their values are built of text
    (``plain``); each table's tuples are made as a column too, from the ops' and records'
    columns."""
    rows = tx.fresh
    user, at, device = ctx.user.username, ctx.at, ctx.device_id
    picked = [ops[index] for index in fast]
    forms = [read.forms[index] for index in fast]
    creates = list(fast.values())
    merges = [c[0] for c in creates]
    datas = [c[1] for c in creates]
    grids = [c[2] for c in creates]
    rids = [op.record_id for op in picked]
    statuses = list(map(_status_of, merges, picked))
    edited = ctx.edited_at
    results = [
        {"op_id": op.op_id, "status": "applied", "record_id": rid, "version": 1, "conflicts": []}
        for op, rid in zip(picked, rids, strict=True)
    ]
    # one encoding of each record's data for the record and its first version; built here
    # of text (the data of filled text that ``FILLED`` creates hold, stamps, answers): plain
    texts = canonical_json_all(datas, plain=all(isinstance(m, Filled) for m in merges))
    stamps = canonical_json_all(
        [_stamps_of(m, op, edited(op), device) for m, op in zip(merges, picked, strict=True)],
        plain=True,
    )
    answers = canonical_json_all(results, plain=True)
    rows.records.extend(
        (rid, f.id, f.version, grid, f.title_of(data)[:200], text, status, False, 1, None)
        + (stamp, at, user, at, user)
        for rid, f, grid, data, text, status, stamp in zip(
            rids, forms, grids, datas, texts, statuses, stamps, strict=True
        )
    )
    rows.versions.extend(
        (rid, 1, f.id, grid, text, status, False, None, op.kind, op.op_id, device, user)
        + (op.author, edited(op), at)
        for rid, f, grid, text, status, op in zip(
            rids, forms, grids, texts, statuses, picked, strict=True
        )
    )
    hashes = ctx.hashes
    rows.ops.extend(
        (op.op_id, hashes.get(op.op_id) or oplog.op_hash(op), device, user, rid, 1, answer, at)
        for op, rid, answer in zip(picked, rids, answers, strict=True)
    )
    rows.keys.extend(
        (f.id, k, rid) for f, c, rid in zip(forms, creates, rids, strict=True) for k in c[3]
    )
    rows.people.extend(
        (rid, f.id, *c[4])
        for f, c, rid in zip(forms, creates, rids, strict=True)
        if c[4] is not None
    )
    rows.pending.extend((grid or "", rid) for grid, rid in zip(grids, rids, strict=True))
    tx.saved.update((rid, (data, False, 1)) for rid, data in zip(rids, datas, strict=True))
    return list(zip(fast, results, strict=True))
