"""A chunk's creates that echo a record the platform holds, answered as a batch (issue 17: a
push of residents the platform already knows at least as fast as a push of new ones).

A device set up anew, or the same people typed on another device, pushes creates of records
the platform holds under their natural key: each is answered ``merged_into`` the held record,
and when every sent value equals the held one (``merge.unchanged``) nothing is stored but the
op-log row and an alias from the device's new id. The per-op path (``Service._apply``: an
``Outcome``, a merge, a scope and key check at every step, an op-log dict) only rebuilt what
one pass over the chunk knows; here each such op is decided by the same rule functions
(``claims.owner_in_scope``, ``merge.unchanged``, ``settle``) before any op applies and then
answered in order (``answer``): its alias and change number as the plain path makes them,
its op-log row as a tuple (``tx.Fresh``).

Conservatively: an op whose held record, key or new id another op of the chunk may touch, or
whose references name a new id of the chunk, goes the plain way, in order, so answers and
stored rows are the plain path's (tests/sync/test_push_echoes.py holds the two against each
other on both backends).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from app.core.forms import FormSet
from sync import protocol as p
from sync.merge import combine_conflicts, op_changes, unchanged
from sync.server import claims, db, fresh, oplog, records
from sync.server.pushop import Ctx, Reject
from sync.server.settle import settle, unwritten
from sync.server.tx import Tx


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
    index -> its answer, in op order). Decided before any op of the chunk applies."""
    found: dict[int, Echo] = {}
    for index, keys in creates.met.items():
        echo = _echo(tx, ctx, ops[index], read, index, keys, formset)
        if echo is not None:
            found[index] = echo
    if not found:
        return found
    return fresh.unaliased(tx, ops, read, _apart(tx, ops, read, found), merging=True)


def _echo(
    tx: Tx,
    ctx: Ctx,
    op: p.Op,
    read: fresh.Read,
    index: int,
    keys: list[str],
    formset: FormSet,
) -> Echo | None:
    """The op's answer when, on its own, it merges into a held record in the caller's scope
    and changes nothing there (``Service._create`` and ``_commit`` with an unchanged merge)."""
    form = read.forms[index]
    owner = claims.owner_in_scope(tx, ctx, form, keys)
    if owner is None:
        return None
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


def answer(tx: Tx, ctx: Ctx, op: p.Op, echo: Echo) -> dict[str, Any]:
    """The op's answer and bookkeeping, at its place in the chunk: the alias from its id (and
    its change number) as ``Service._create`` makes it, the op-log row as a tuple."""
    owner = echo.owner
    tx.saved[owner] = (echo.data, False, echo.version)
    records.add_alias(tx, op.record_id, owner, "natural_key", ctx.at)
    ctx.aliased(op.record_id, owner)
    result = {
        "op_id": op.op_id,
        "status": "merged_into",
        "record_id": owner,
        "version": echo.version,
        "conflicts": [],
        "merged_into": owner,
    }
    digest = ctx.hashes.get(op.op_id) or oplog.op_hash(op)
    tx.fresh.ops.append(
        (op.op_id, digest, ctx.device_id, ctx.user.username, owner, echo.version)
        + (db.dumps(result), ctx.at)
    )
    return result
