"""Natural keys against the caller's scope (PROTOCOL.md §5.5, §9.1): which record stands for a
key, when a write is a ``duplicate_key``, and when it opens a transfer claim instead.

The rule that shapes all of it: to the caller, a key held in another grid looks exactly as if
that grid did not have it, so no answer reveals records outside the caller's scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.core.forms import Form
from sync import protocol as p
from sync.server import records, reviews
from sync.server.auth import User
from sync.server.pushop import Ctx, Reject
from sync.server.tx import Tx


def owner_in_scope(tx: Tx, ctx: Ctx, form: Form, keys: list[str]) -> str | None:
    """The live record in the caller's scope that stands for one of ``keys`` (a create
    merges into it); records outside the scope are not looked at here."""
    for key in keys:
        mine, _other = key_parties(tx, ctx, form, key, exclude=None)
        if mine is not None:
            return mine
    return None


def key_parties(
    tx: Tx, ctx: Ctx, form: Form, key: str, exclude: str | None
) -> tuple[str | None, str | None]:
    """(the record in the caller's scope that stands for ``key``, else the record outside
    it that does), ``exclude`` aside.

    The holder stands for its key; a record that claims the key (transfer, §9.1) stands
    for it in its own scope, and where nobody holds it: to the caller, a key another grid
    has looks exactly as if that grid did not have it."""
    if tx.key_free(form.id, key):  # most keys of a push: nobody to look for
        return None, None
    holder = tx.key_owner(form.id, [key], exclude=exclude)
    if holder is not None and visible(tx, ctx.user, holder):
        return holder, None
    claimants = [r for r in tx.claimants(form.id, key) if r != exclude]
    for record_id in claimants:
        if visible(tx, ctx.user, record_id):
            return record_id, None
    return None, holder or (claimants[0] if claimants else None)


def claimed_keys(tx: Tx, ctx: Ctx, form: Form, rid: str, data: Mapping[str, Any]) -> dict[str, str]:
    """Natural keys of ``data`` another live record stands for: key -> that record.

    One in the caller's scope is a ``duplicate_key``. One outside it must not change the
    answer (PROTOCOL.md §5.5): the record is stored without that key and a transfer claim
    goes to the supervisors of both grids (§9.1)."""
    out: dict[str, str] = {}
    for key in tx.derived.natural_keys(form, data):
        if tx.key_free(form.id, key):
            continue  # nobody holds or claims it (``key_parties`` would find nobody)
        if tx.key_owner(form.id, [key]) == rid:
            continue  # the holder keeps its key; records claiming it wait for review
        mine, other = key_parties(tx, ctx, form, key, exclude=rid)
        if mine is not None:
            raise Reject("duplicate_key", other_id=mine, record_id=rid)
        if other is not None:
            out[key] = other
    return out


def open_transfers(
    tx: Tx,
    ctx: Ctx,
    form: Form,
    before: records.Row | None,
    rid: str,
    op: p.Op,
    claims: Mapping[str, str],
) -> None:
    """Open a transfer claim for each key the op newly gave the record, or whose fields the
    op names (typed again after a rejection); other edits leave a decided claim alone."""
    if not claims:
        return
    had = set()
    if before is not None and not before.deleted:
        had = set(tx.derived.natural_keys(form, before.data))
    key_fields = {f for fields in form.natural_keys for f in fields}
    named = bool(key_fields & set(op.fields)) and op.kind != "delete"
    for key, holder in claims.items():
        if named or key not in had:
            reviews.open_transfer(tx, form, rid, holder, ctx.at)


def visible(tx: Tx, user: User, record_id: str) -> bool:
    """The record is live on the platform and in the caller's scope."""
    found = tx.load(record_id)
    return found is not None and user.in_scope(found.grid)
