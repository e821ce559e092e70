"""A chunk's creates that echo a record the platform holds, answered as a batch (issue 17: a
push of residents the platform already knows at least as fast as a push of new ones).

A device set up anew, or the same people typed on another device, pushes creates of records
the platform holds under their natural key: each is answered ``merged_into`` the held record,
and when every sent value equals the held one (``merge.unchanged``) nothing is stored but the
op-log row and an alias from the device's new id. The per-op path (``Service._apply``: an
``Outcome``, a merge, a scope and key check at every step, an op-log dict) only rebuilt what
one pass over the chunk knows; here the chunk's such ops are decided before any op applies,
each step one pass over all of them (``echoes_of``: the holders of their keys as one column,
the held values compared in C, scope once per grid), those the columns cannot decide by the
same rule functions per op (``_echo``: ``claims.owner_in_scope``, ``merge.unchanged``,
``settle``); their answers and op-log rows are made as columns (``results``) and each is
answered in order (``answer``): its alias and change number as the plain path makes them.

Conservatively: an op whose held record, key or new id another op of the chunk may touch, or
whose references name a new id of the chunk, goes the plain way, in order, so answers and
stored rows are the plain path's (tests/sync/test_push_echoes.py holds the two against each
other on both backends).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from app.core import rules
from app.core.forms import Form, FormSet
from app.core.records import RecordStatus, canonical_json_all
from app.core.textcheck import TEXT_ONLY
from sync import protocol as p
from sync.merge import DELETED, STATUS, combine_conflicts, op_changes, unchanged
from sync.server import claims, fresh, oplog, records
from sync.server.pushop import Ctx, Reject
from sync.server.rows import Row, grids_of, keys_of
from sync.server.settle import settle, unwritten
from sync.server.tx import Tx

_COMPLETE = RecordStatus.COMPLETE.value


class Echo(NamedTuple):
    """A create answered ``merged_into`` the held record ``owner`` at ``version``, which it
    leaves as it is (``data``: its values, for the tasks' automatic done)."""

    owner: str
    version: int
    data: dict[str, Any]


def known_creates(
    tx: Tx,
    ctx: Ctx,
    ops: Sequence[p.Op],
    read: fresh.Read,
    formset: FormSet,
    creates: fresh.Creates,
) -> dict[int, Echo]:
    """The chunk's creates that echo a held record and meet nothing else of the chunk (op
    index -> its answer, in op order). Decided before any op of the chunk applies, each
    form's as columns (``echoes_of``)."""
    by_form: dict[str, list[int]] = {}
    for index in creates.met:
        by_form.setdefault(read.forms[index].id, []).append(index)
    found: dict[int, Echo] = {}
    for indexes in by_form.values():
        form = read.forms[indexes[0]]
        echoes = echoes_of(
            tx,
            ctx,
            form,
            [ops[i] for i in indexes],
            [creates.met[i] for i in indexes],
            formset,
            [read.made[i] for i in indexes],
        )
        found.update((i, e) for i, e in zip(indexes, echoes, strict=True) if e is not None)
    if not found:
        return found
    if len(by_form) > 1:
        found = dict(sorted(found.items()))
    return fresh.unaliased(tx, ops, read, _apart(tx, ops, read, found), merging=True)


def echoes_of(
    tx: Tx,
    ctx: Ctx,
    form: Form,
    ops: Sequence[p.Op],
    keys: Sequence[list[str]],
    formset: FormSet,
    made: Sequence[fresh.Create] | None = None,
) -> list[Echo | None]:
    """``_echo`` of each of ``ops`` (creates of ``form``, ``keys``: the natural keys of
    each; ``made``: each as ``fresh.made`` worked it out, when it did), as columns: one pass
    per step over all of them, not a call chain per op.

    Why: per op, ``merge.unchanged``, ``settle`` and ``claims.claimed_keys`` rebuilt the held
    record's state three times and asked each key's holder twice, ~40 % of a push of
    residents the platform knows (issue 17). Here an op whose sent values are text equal to
    the held record's, which holds text only, no open conflict and each of its keys itself
    (``Tx.key_owners``, one column), is decided from the held row's values as they are:
    ``unchanged`` would keep them all, ``settle`` ask its scope (``grids_of``, once per
    grid) and, when complete, its validation. Every other op is decided by ``_echo``
    (tests/sync/test_push_echoes.py holds the two against each other)."""
    owners = owners_in_scope(tx, ctx, form, keys)
    out: list[Echo | None] = [None] * len(ops)
    plain: list[tuple[int, str]] = []  # decided by ``_echo``
    quick: list[tuple[int, str, Row]] = []  # every sent value echoes held text
    alike: list[fresh.Create | None] = []  # of each of ``quick``: its create of equal data
    load = tx.load
    for at, (op, owner) in enumerate(zip(ops, owners, strict=True)):
        if owner is None:
            continue
        row = load(owner)
        assert row is not None  # owner_in_scope loaded it
        data = row.data
        create = made[at] if made is not None else None
        if create is not None and create[0] is None and create[1] == data:
            # the create's data is the held data: of filled text and no pseudo-field, as
            # ``new_data_all`` took it (its merge is not worked out: ``fresh.completed``),
            # the op's fields but the status. One comparison in C, not the three below
            sent = op.fields.get(STATUS, row.status) == row.status
        else:
            values = data.values()
            sent = (
                STATUS not in data
                and DELETED not in data
                and TEXT_ONLY.issuperset(map(type, values))
                and all(map(str.strip, values))
                and op.fields.items() <= {**data, STATUS: row.status}.items()
            )
            create = None
        # every sent value equals the held one (the status too), and the held record is
        # live, in no open conflict and holds text only, none blank: ``merge.unchanged``
        # keeps its values as they are and the merge writes nothing (``unwritten``). A
        # value equal to held text is that text (values are JSON's): ``same`` holds for it
        if sent and not row.deleted and not row.conflict:
            quick.append((at, owner, row))
            alike.append(create)
        else:
            plain.append((at, owner))
    datas, grids, own = _derived(form, [row.data for _at, _owner, row in quick], alike)
    in_scope = fresh.Scope(ctx.user.in_scope)
    holders = iter(tx.key_owners(form.id, [key for found in own for key in found]))
    for (at, owner, row), data, grid, found in zip(quick, datas, grids, own, strict=True):
        # ``claimed_keys`` finds nothing when the record holds each of its keys itself
        held = [next(holders) for _key in found]
        if not in_scope[grid]:
            continue  # ``settle``: out of scope
        if row.status == _COMPLETE and _invalid(form, data, formset):
            continue  # ``settle``: invalid
        if held.count(owner) == len(held):
            out[at] = Echo(owner, row.version, data)
        else:
            plain.append((at, owner))  # a key another record stands for: ``settle`` decides
    for at, owner in plain:
        out[at] = _echo(tx, ctx, ops[at], form, owner, formset)
    return out


def _derived(
    form: Form, held: Sequence[dict[str, Any]], alike: Sequence[fresh.Create | None]
) -> tuple[list[dict[str, Any]], list[str | None], list[list[str]]]:
    """The data (a copy, or the create's equal one), grid and natural keys of each of
    ``held`` (held records' data), as columns. One whose create's data is equal to it
    (``alike``: an echo of every value, the usual one; None: none is) has the grid and keys
    ``fresh.made`` found for the create, as both are functions of (form, data): only the
    others are worked out (``grids_of``, ``keys_of``). Why: a push of residents the platform
    knows worked out every held record's keys again, each key normalised once more (issue
    17)."""
    datas: list[dict[str, Any]] = []
    grids: list[str | None] = []
    own: list[list[str]] = []
    rest: list[int] = []  # places in ``held`` worked out here
    for place, (data, create) in enumerate(zip(held, alike, strict=True)):
        if create is not None:
            datas.append(create[1])
            grids.append(create[2])
            own.append(create[3])
        else:
            datas.append(dict(data))
            grids.append(None)
            own.append([])
            rest.append(place)
    if rest:
        picked = [datas[place] for place in rest]
        for place, grid, found in zip(
            rest, grids_of(form, picked), keys_of(form, picked), strict=True
        ):
            grids[place], own[place] = grid, found
    return datas, grids, own


def owners_in_scope(tx: Tx, ctx: Ctx, form: Form, keys: Sequence[list[str]]) -> list[str | None]:
    """``claims.owner_in_scope`` of each of ``keys`` (one create's natural keys each), as
    one pass: a create whose first key a loaded record in the caller's scope holds stands
    for that record (``claims.key_parties`` asks the holder first, and a held key is not
    free); the others ask ``owner_in_scope``. Why: asked per create, each key was looked up
    three times and its holder's scope once per create (issue 17)."""
    firsts = iter(tx.key_owners(form.id, [found[0] for found in keys if found]))
    in_scope = fresh.Scope(ctx.user.in_scope)
    held = tx.rows.get
    out: list[str | None] = []
    for found in keys:
        holder = next(firsts) if found else None
        row = held(holder) if holder is not None else None
        if row is not None and in_scope[row.grid]:
            out.append(holder)
        else:
            out.append(claims.owner_in_scope(tx, ctx, form, found))
    return out


def _invalid(form: Form, data: dict[str, Any], formset: FormSet) -> bool:
    """A complete record with these values would be refused (``settle``)."""
    return any(i.severity == "error" for i in rules.validate(form, data, formset))


def _echo(
    tx: Tx,
    ctx: Ctx,
    op: p.Op,
    form: Form,
    owner: str,
    formset: FormSet,
) -> Echo | None:
    """The op's answer when, on its own, it merges into ``owner``, the held record in the
    caller's scope that stands for one of its keys, and changes nothing there
    (``Service._create`` and ``_commit`` with an unchanged merge)."""
    row = tx.load(owner)
    assert row is not None  # owner_in_scope loaded it
    merged = unchanged(row.state(), op_changes("create", op.fields), row.stamps)
    if merged is None:
        return None
    try:
        settled = settle(tx, ctx, formset, form, row, owner, merged)
    except Reject:
        return None
    before_open = row.conflict or []
    if not unwritten(merged, before_open, combine_conflicts(before_open, merged.hard)):
        return None
    return Echo(owner, row.version, settled.data)


def _apart(
    tx: Tx, ops: Sequence[p.Op], read: fresh.Read, found: dict[int, Echo]
) -> dict[int, Echo]:
    """The echoes of ``found`` whose held record no other op of the chunk may reach: no other
    op may make or hold one of its natural keys (``fresh.others``: over-counted from each
    op's sent values and its record's held ones, so an op on the held record counts too).
    Echoes of one held record may share it: none of them writes anything to it."""
    parts, _births = fresh.others(tx, ops, read, found)
    if not parts:
        return found
    return {
        index: echo
        for index, echo in found.items()
        if not fresh.meets(read.forms[index], echo.data, parts)
    }


def results(tx: Tx, ctx: Ctx, ops: Sequence[p.Op], known: dict[int, Echo]) -> dict[int, Any]:
    """Each echo's answer (by op index) and its op-log row (``tx.fresh``), as columns: the
    answers encoded by one ``canonical_json_all``, not one ``db.dumps`` each. The op-log rows
    go in before the chunk's ops apply: no other op of the chunk has their op ids."""
    picked = [ops[index] for index in known]
    answers = [
        {
            "op_id": op.op_id,
            "status": "merged_into",
            "record_id": echo.owner,
            "version": echo.version,
            "conflicts": [],
            "merged_into": echo.owner,
        }
        for op, echo in zip(picked, known.values(), strict=True)
    ]
    hashes, device, user, at = ctx.hashes, ctx.device_id, ctx.user.username, ctx.at
    tx.fresh.ops.extend(
        (op.op_id, hashes.get(op.op_id) or oplog.op_hash(op), device, user, echo.owner)
        + (echo.version, text, at)
        for op, echo, text in zip(picked, known.values(), canonical_json_all(answers), strict=True)
    )
    return dict(zip(known, answers, strict=True))


def answer(tx: Tx, ctx: Ctx, op: p.Op, echo: Echo) -> None:
    """The op's bookkeeping, at its place in the chunk: the alias from its id (and its change
    number) as ``Service._create`` makes it."""
    owner = echo.owner
    tx.saved[owner] = (echo.data, False, echo.version)
    records.add_alias(tx, op.record_id, owner, "natural_key", ctx.at)
    ctx.aliased(op.record_id, owner)
