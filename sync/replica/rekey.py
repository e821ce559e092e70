"""Merged duplicates and conflicts in sync state: rewrite an id everywhere after the server
merged two records, and record a person's choice for conflicting fields.

Part of ``sync.replica`` (import it from there).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from app.core import ids
from app.core.forms import FormSet
from app.core.records import state_of
from app.core.store import SETTLED, OutboxState, Store
from sync.merge import DELETED, norm, same
from sync.replica.rows import (
    _changes,
    _fetch,
    _fetch_one,
    _history,
    _loads,
    _Row,
    _split,
)

# -- merged duplicates: rewrite an id everywhere ----------------------------------------------

FOLDED = "folded"  # outbox result mark: the op was made for a duplicate folded into its record


@lru_cache(maxsize=8)
def _reference_fields(formset: FormSet, target: str | None) -> tuple[tuple[str, str], ...]:
    """(form, field) of every reference field that may point at a record of form ``target``
    (every reference field when the form is not known here)."""
    return tuple(
        (form.id, f.id)
        for form in formset.forms.values()
        for f in form.fields.values()
        if f.type == "reference" and (target is None or f.target in (None, target))
    )


@lru_cache(maxsize=8)
def reference_fields_by_form(formset: FormSet) -> Mapping[str, frozenset[str]]:
    """Form -> its reference fields, whatever they point at: where an id rewrite may swap an
    id in an op's fields (``push.leaves_later_ops``)."""
    out: dict[str, set[str]] = {}
    for form, name in _reference_fields(formset, None):
        out.setdefault(form, set()).add(name)
    return {form: frozenset(names) for form, names in out.items()}


def rewrite_id(store: Store, old: str, canonical: str) -> None:
    """The server merged ``old`` into ``canonical``: rewrite the record, every reference to it
    (records' data and base, refs, people, autosave, duplicate decisions) and the outbox.

    History rows are append-only and keep the old id; a ``merge`` row under the canonical id
    names it. Joins the caller's transaction.
    """
    if old == canonical:
        return
    with store.transaction():
        rows = _fetch(store, [old, canonical])
        mine, theirs = rows.get(old), rows.get(canonical)
        known = mine or theirs
        if mine is not None:
            if theirs is None:
                _rename(store, mine, canonical)
            else:
                _fold(store, mine, theirs)
                _mark_folded(store, old)
            _history(store, canonical, "merge", {"_merged_from": [old, canonical]}, "")
        _rewrite_references(store, old, canonical, known.form if known else None)
        store.replica.move_record_links(old, canonical)


def plain_rename(store: Store, forms: Mapping[str, str], old: str, canonical: str) -> bool:
    """Whether ``rewrite_id(old, canonical)`` is a rename (no fold), given ``forms`` (id -> form
    of the records on the device): ``old`` is here and ``canonical`` is not. ``rename_plain``
    then does it, references to ``old`` included."""
    return old != canonical and old in forms and canonical not in forms


class Move(NamedTuple):
    """One rename of a run: ``old`` becomes ``new`` (a record of ``form``), after the first
    ``after`` answers of the run were noted."""

    old: str
    new: str
    form: str
    after: int = 0


def rename_plain(
    store: Store,
    moves: Sequence[Move],
    answered: Mapping[int, int] | None = None,
    *,
    records: bool = True,
    answers: Sequence[tuple[str | None, str, int, str | None]] | None = None,
) -> dict[str, str]:
    """``rewrite_id`` of each of ``moves`` (``plain_rename`` accepted them), in order, in
    bulk: the same rows end up written (the record, its refs, outbox, task items, autosave,
    duplicate decisions, one ``merge`` history row each, and every reference to a moved
    record of a referenced form; its keys name its rid, which stays), a statement per table
    for the whole run. The run names no id twice: then applying it at once is applying it in
    order (tests/sync/test_push_bulk_property.py holds it to ``rewrite_id``).

    Runs before the run's answers are written, or writes them itself (``answers``) once the
    references are rewritten. ``answered`` (seq -> its position among them) names the ops
    whose answer takes them out of ``pending``: a pending op's references are rewritten only
    by the moves before its answer, as op by op.

    ``answers`` (state or None, answer, seq, the op's record id or None: not known) are the
    run's answers: an answered op of a moved record takes its new id in the same row write
    as its answer, and the moved records' other ops are renamed after (a known push wrote
    each of its ops' rows twice, renamed and then answered).

    ``records=False``: the records' own ids are left to the caller when no other record may
    point at a moved one (the reference rewrite finds referring records by their new ids),
    so that the caller writes each record's row once, its new id with its version and dirty
    flag; returns those renames left (new id -> old id), else {}."""
    if not moves:
        if answers:
            store.outbox.set_answers([(state, text, seq) for state, text, seq, _o in answers])
        return {}
    io = store.replica
    targets = {form: _reference_fields(store.formset, form) for form in {m.form for m in moves}}
    io.load_moves([(m.old, m.new, m.form, bool(targets[m.form])) for m in moves])
    moved = {m.old: m for m in moves if targets[m.form]}
    leave = not records and not moved
    io.rename_moved(records=not leave, outbox=answers is None)
    if moved:
        refd = {f: t for f, t in targets.items() if t}
        _rewrite_moved_references(store, moved, refd, answered or {})
    if answers is not None:
        new_of = {m.old: m.new for m in moves}
        store.outbox.set_answers(
            [(state, text, seq) for state, text, seq, owner in answers if owner not in new_of]
        )
        store.outbox.set_answers_renaming(
            [(state, text, new_of[o], seq) for state, text, seq, o in answers if o in new_of]
        )
        io.rename_moved_outbox()  # the moved records' other ops
    io.clear_moves()
    return {m.new: m.old for m in moves} if leave else {}


def _rewrite_moved_references(
    store: Store,
    moved: Mapping[str, Move],
    targets: Mapping[str, tuple[tuple[str, str], ...]],
    answered: Mapping[int, int],
) -> None:
    """``_rewrite_references`` of every loaded old id of a referenced form (``moved``: by old
    id); ``targets``: each such form's reference fields (form, field)."""
    io = store.replica
    names = _field_names(targets)
    referring: dict[int, tuple[str, str, str | None, set[str]]] = {}
    for rid, form, data, base, dst in io.rows_referring_moved():
        referring.setdefault(rid, (form, data, base, set()))[3].add(dst)
    io.set_data_and_base_many(
        [
            (
                rid,
                _swap_moved(json.loads(data), form, dsts.__contains__, moved, names) or {},
                _swap_moved(_loads(base), form, dsts.__contains__, moved, names),
            )
            for rid, (form, data, base, dsts) in referring.items()
        ]
    )
    by_referring: dict[tuple[str, ...], list[str]] = {}
    for target, fields in targets.items():
        by_referring.setdefault(tuple(sorted({fm for fm, _f in fields})), []).append(target)
    io.repoint_moved_refs(by_referring)
    in_form: dict[str, list[str]] = {}
    for fields in targets.values():
        for form, field in fields:
            if field not in in_form.setdefault(form, []):
                in_form[form].append(field)
    io.set_ops_fields(
        [
            (
                seq,
                _swap_moved(json.loads(text), form, _pending_at(seq, answered, moved), moved, names)
                or {},
            )
            for seq, form, text in io.pending_ops_naming_moved(in_form)
        ]
    )
    everywhere = moved.__contains__
    io.set_autosaves_data(
        [
            (slot, _swap_moved(json.loads(text), form, everywhere, moved, names) or {})
            for slot, form, text in io.autosaves_naming_moved(in_form)
        ]
    )


def _pending_at(
    seq: int, answered: Mapping[int, int], moved: Mapping[str, Move]
) -> Callable[[str], bool]:
    """Whether op ``seq`` was still pending when the old id was moved (its answer, if the
    run has one that settles it, came after the move)."""
    at = answered.get(seq)
    if at is None:
        return moved.__contains__
    return lambda old: old in moved and at >= moved[old].after


def _field_names(
    targets: Mapping[str, tuple[tuple[str, str], ...]],
) -> dict[tuple[str, str], frozenset[str]]:
    """(referring form, target form) -> the referring form's fields that may point at the
    target form (what ``_rewrite_references`` swaps for one old id)."""
    out: dict[tuple[str, str], set[str]] = {}
    for target, fields in targets.items():
        for form, field in fields:
            out.setdefault((form, target), set()).add(field)
    return {key: frozenset(value) for key, value in out.items()}


def _swap_moved(
    data: dict[str, Any] | None,
    form: str,
    olds: Callable[[str], bool],
    moved: Mapping[str, Move],
    names: Mapping[tuple[str, str], frozenset[str]],
) -> dict[str, Any] | None:
    """``_swap`` of each moved old id that ``olds`` accepts, at once: a field of ``form`` that
    may point at the old record's form and names it takes the canonical id."""
    if data is None:
        return None
    out = {}
    for key, value in data.items():
        if type(value) is str and olds(value):
            move = moved[value]
            if key in names.get((form, move.form), ()):
                value = move.new
        out[key] = value
    return out


def _rename(store: Store, row: _Row, canonical: str) -> None:
    store.replica.rename_record(row.rid, row.id, canonical)


def _fold(store: Store, old: _Row, canonical: _Row) -> None:
    """Both copies exist: the canonical one keeps the old copy's unsynced typing.

    Only fields the server has not taken from the old copy are carried over (those of its
    pending or rejected ops). Values it already acknowledged were merged into the canonical
    record by the server, which may have kept its own value: copying them would leave a copy
    that looks synced but differs from the server, and when the merge changed nothing no pull
    would ever correct it."""
    if old.dirty:
        unsent = _unsent_fields(store, old.id)
        local = old.state()
        state = canonical.state()
        own_base = canonical.base or {}
        for name in sorted(unsent - {DELETED}):
            if canonical.dirty and not same(own_base.get(name), state.get(name)):
                continue  # the canonical copy's own unsent typing is never overwritten
            state[name] = local.get(name)
        data, status, deleted = _split(state)
        form = store.formset.form(canonical.form)
        derived = store.derive(form, data)
        store.replica.write_values(canonical.rid, data, status, derived)
        store.replica.write_side_tables(
            canonical.rid, canonical.id, canonical.form, None if deleted else derived
        )
    store.replica.remove_record(old.rid, old.id, old.form)


def _mark_folded(store: Store, record_id: str) -> None:
    """Mark the folded copy's ops before they move to the canonical record: they carried that
    copy's values, so an acknowledged create among them does not mean the server has all of
    the canonical copy's values (``outgoing._chain_ok``)."""
    store.outbox.mark_ops(record_id, FOLDED)


def _unsent_fields(store: Store, record_id: str) -> set[str]:
    """Fields the server has not taken from the record's ops: those of pending ops, and of
    rejected ops not yet mended by an acknowledged op carrying every value (a create or a
    completed op, as in ``outgoing._chain_ok``)."""
    pending: set[str] = set()
    rejected: set[str] = set()
    for state, kind, fields, result in store.outbox.ops_of(record_id):
        names = set(json.loads(fields))
        if state == OutboxState.PENDING:
            pending |= names
        elif state == OutboxState.REJECTED and f'"{SETTLED}":true' not in (result or ""):
            rejected |= names
        elif f'"{FOLDED}":true' not in (result or "") and (
            kind == "create" or '"full":true' in (result or "")
        ):
            rejected = set()
    return pending | rejected


def _rewrite_references(store: Store, old: str, canonical: str, target: str | None) -> None:
    """Every reference to ``old`` (a record of form ``target``, None: not known) now names
    ``canonical``. Only fields that may point at that form are looked at: the outbox and
    autosave are searched by text, and a first push of 10 000 residents the platform already
    knew (each one merged) searched all 10 000 pending ops for each of them."""
    ref_fields = _reference_fields(store.formset, target)
    if not ref_fields:
        return
    io = store.replica
    for rid, form, data, base in io.referring_rows(old):
        fields = [f for fm, f in ref_fields if fm == form]
        new_data = _swap(json.loads(data), fields, old, canonical)
        io.set_data_and_base(rid, new_data or {}, _swap(_loads(base), fields, old, canonical))
    referring = sorted({fm for fm, _f in ref_fields})
    io.repoint_refs(old, canonical, referring)
    for seq, form, op_fields in io.pending_ops_mentioning(referring, old):
        names = [f for fm, f in ref_fields if fm == form]
        io.set_op_fields(seq, _swap(json.loads(op_fields), names, old, canonical) or {})
    for slot, form, data in io.autosaves_mentioning(referring, old):
        names = [f for fm, f in ref_fields if fm == form]
        io.set_autosave_data(slot, _swap(json.loads(data), names, old, canonical) or {})


def _swap(
    data: dict[str, Any] | None, fields: Sequence[str], old: str, canonical: str
) -> dict[str, Any] | None:
    if data is None:
        return None
    return {k: (canonical if k in fields and v == old else v) for k, v in data.items()}


# -- conflicts --------------------------------------------------------------------------------


def resolve(
    store: Store, record_id: str, chosen_fields: Mapping[str, Any], author: str = ""
) -> str:
    """A person chose values for conflicting fields: write them locally, clear those conflict
    entries and queue a ``resolve`` op with ``base_version`` = the version they looked at.

    ``chosen_fields`` may include ``_status`` and ``_deleted``. Returns the op id.
    """
    with store.transaction():
        row = _fetch_one(store, record_id)
        if row is None:
            raise KeyError(record_id)
        before = row.state()
        after = dict(before)
        for name, value in chosen_fields.items():
            after[name] = bool(value) if name == DELETED else value
        data, status, deleted = _split(after)
        form = store.formset.form(row.form)
        derived = store.derive(form, data)
        remaining = [c for c in row.conflict or [] if c["field"] not in chosen_fields]
        store.replica.write_values(
            row.rid,
            data,
            status,
            derived,
            deleted=deleted,
            conflict=remaining,
            updated=(ids.now_iso(), author),
        )
        store.replica.write_side_tables(row.rid, row.id, row.form, None if deleted else derived)
        _history(
            store, row.id, "resolve", _changes(before, state_of(data, status, deleted)), author
        )
        fields = {k: (bool(v) if k == DELETED else norm(v)) for k, v in chosen_fields.items()}
        op_id = store.outbox.queue_resolve(row.id, row.form, row.server_version, fields, author)
    return op_id


def open_conflicts(store: Store) -> int:
    """Live records with a conflict waiting for a person."""
    with store.transaction():
        return store.replica.open_conflict_count()
