"""The review list (PROTOCOL.md §9): possible duplicates and transfer claims.

Exact natural-key matches merge automatically when a create lands; people who only *may* be the
same (same birth date and the same name, or the same pinyin: 张三/章三) wait here for a
supervisor's "same / not the same". "Same" merges the newer record into the older one with an
alias, keeps both histories and writes an audit row; so does "different".

Transfer claims (迁入/迁出, §9.1): a record whose natural key is held by a record outside the
writer's scope (a person who moved from grid B registers in grid A). The writer's answer must
not reveal that the key exists elsewhere, so the record is stored (without the key) and the
supervisors of both grids decide: "same" moves the holder into the claimant's grid and merges
the claim into it; "different" flags the claim's key fields as a conflict the worker sees.

A worker's "different" (their device's answer, ``notdup.py``) closes a duplicate item but is
input, not the last word: a supervisor or an admin may still decide it (``overrulable``), and
their own decisions are final. ``decided_role`` keeps who decided, by role.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import Engine, and_, bindparam, insert, or_, select, update

from app.core.forms import Form, FormSet
from sync.merge import DELETED, STATUS, Stamp, combine_conflicts, merge
from sync.server import db, races, records
from sync.server.auth import User, iso, now
from sync.server.errors import ApiError
from sync.server.rows import Person
from sync.server.tx import Tx

MAX_CANDIDATES = 20
_RV = db.reviews.c
_PAIR = select(_RV.id).where(
    or_(
        and_(_RV.record_id == bindparam("b_a"), _RV.other_id == bindparam("b_b")),
        and_(_RV.record_id == bindparam("b_b"), _RV.other_id == bindparam("b_a")),
    )
)
_PAIR_ROW = select(_RV.id, _RV.kind, _RV.state).where(
    or_(
        and_(_RV.record_id == bindparam("b_a"), _RV.other_id == bindparam("b_b")),
        and_(_RV.record_id == bindparam("b_b"), _RV.other_id == bindparam("b_a")),
    )
)
_INSERT_REVIEW = insert(db.reviews)
TRANSFER = "transfer"
TRANSFER_REJECTED = "transfer_rejected"  # the note on a rejected claim's conflict entries


def open_transfer(tx: Tx, form: Form, claim_id: str, holder_id: str, at: str) -> None:
    """Open (or reopen) the transfer claim of ``claim_id`` on the key ``holder_id`` holds.

    One review row per pair: a duplicate review of the same two records becomes the claim,
    and a decided claim is opened again (the audit rows keep the earlier decision)."""
    found = tx.conn.execute(_PAIR_ROW, {"b_a": claim_id, "b_b": holder_id}).first()
    if found is not None and found.kind == TRANSFER and found.state == "open":
        return
    values = {
        "form": form.id,
        "record_id": claim_id,
        "other_id": holder_id,
        "reason": TRANSFER,
        "kind": TRANSFER,
        "state": "open",
        "created_at": at,
        "decided_by": None,
        "decided_at": None,
        "decided_role": None,  # null while open (§9): not the role of whoever decided the row before
    }
    tx.review_written(claim_id, holder_id)
    if found is None:
        tx.conn.execute(_INSERT_REVIEW, values)
    else:
        tx.conn.execute(update(db.reviews).where(_RV.id == found.id).values(**values))


def add_candidates(tx: Tx, form: Form, record_id: str, person: Person, at: str) -> int:
    """Open review items for live records that may be the same person as ``record_id``."""
    added = 0
    for other_id, other in tx.same_person(form.id, person):
        if other_id == record_id or _reviewed(tx, record_id, other_id):
            continue
        reason = "same_name_birth" if other.name == person.name else "same_pinyin_birth"
        tx.review_written(record_id, other_id)
        tx.conn.execute(
            _INSERT_REVIEW,
            {
                "form": form.id,
                "record_id": record_id,
                "other_id": other_id,
                "reason": reason,
                "state": "open",
                "created_at": at,
            },
        )
        added += 1
        if added >= MAX_CANDIDATES:
            break
    return added


def _reviewed(tx: Tx, a: str, b: str) -> bool:
    """A review row pairs the two records already. Without a query when one of them is new
    (``Tx.pair_known``): a push of new residents met one or more look-alikes per op on a
    city's platform, each a statement (issue 19)."""
    known = tx.pair_known(a, b)
    if known is not None:
        return known
    return tx.conn.execute(_PAIR, {"b_a": a, "b_b": b}).first() is not None


def _wire(r: Any, titles: dict[str, tuple[str, str | None]]) -> dict[str, Any]:
    title, grid = titles.get(r.record_id, ("", None))
    other_title, other_grid = titles.get(r.other_id, ("", None))
    return {
        "id": r.id,
        "kind": r.kind,
        "form": r.form,
        "record_id": r.record_id,
        "other_id": r.other_id,
        "reason": r.reason,
        "state": r.state,
        "created_at": r.created_at,
        "decided_by": r.decided_by,
        "decided_at": r.decided_at,
        "decided_role": r.decided_role,
        "record_title": title,
        "other_title": other_title,
        "grid": grid,
        "other_grid": other_grid,
    }


def _titles(conn: Any, ids: set[str]) -> dict[str, tuple[str, str | None]]:
    c = db.records.c
    out: dict[str, tuple[str, str | None]] = {}
    ordered = sorted(ids)
    for i in range(0, len(ordered), 500):
        for r in conn.execute(select(c.id, c.title, c.grid).where(c.id.in_(ordered[i : i + 500]))):
            out[r.id] = (r.title, r.grid)
    return out


def _may_see(user: User, kind: str, grids: tuple[str | None, str | None]) -> bool:
    seen = [user.in_scope(g) for g in grids]
    return any(seen) if kind == TRANSFER else all(seen)


WORKER = "worker"


def overrulable(kind: str, state: str, decided_role: str | None) -> bool:
    """A duplicate a worker closed "different" (a supervisor or an admin may still decide
    it: the two records of one person must not stay apart for good)."""
    return kind != TRANSFER and state == "different" and decided_role == WORKER


def _require_reviewer(user: User) -> None:
    if user.role not in ("supervisor", "admin"):
        raise ApiError(403, "forbidden")


def list_reviews(
    engine: Engine, user: User, state: str = "open", limit: int = 1000
) -> list[dict[str, Any]]:
    """Review items whose two records are both in the caller's scope; transfer claims when
    either record is (the supervisors of both grids decide them). ``state``: ``open``,
    ``by_worker`` (duplicates a worker closed "different", still open to a supervisor's
    "same"), or ``all``."""
    _require_reviewer(user)
    rv = db.reviews.c
    stmt = select(db.reviews).order_by(rv.id).limit(limit)
    if state == "open":
        stmt = stmt.where(rv.state == "open")
    elif state == "by_worker":
        stmt = stmt.where(rv.state == "different", rv.kind != TRANSFER, rv.decided_role == WORKER)
    if user.grids is not None:
        # the scope in the query (``_may_see``'s rule): cut after a number of everyone's rows,
        # a supervisor behind thousands of other communities' reviews saw none of theirs
        mine = sorted(user.grids)
        one, two = db.records.alias("one"), db.records.alias("two")
        in_one = select(one.c.id).where(one.c.id == rv.record_id, one.c.grid.in_(mine))
        in_two = select(two.c.id).where(two.c.id == rv.other_id, two.c.grid.in_(mine))
        both = and_(in_one.exists(), in_two.exists())
        either = or_(in_one.exists(), in_two.exists())
        stmt = stmt.where(or_(and_(rv.kind == TRANSFER, either), and_(rv.kind != TRANSFER, both)))
    with db.read(engine) as conn:
        rows = conn.execute(stmt).all()
        titles = _titles(conn, {r.record_id for r in rows} | {r.other_id for r in rows})
    out = []
    for r in rows:
        grids = (titles.get(r.record_id, ("", None))[1], titles.get(r.other_id, ("", None))[1])
        if _may_see(user, r.kind, grids):
            out.append(_wire(r, titles))
    return out[:limit]


def decide(
    engine: Engine, formset: FormSet, user: User, review_id: int, decision: str
) -> dict[str, Any]:
    """Record a person's decision; "same" merges the newer record into the older one.

    Run again after a race (``races.retried``): on PostgreSQL another decision may merge one
    of the two records away while this one waits for its lock."""
    _require_reviewer(user)
    return races.retried(
        lambda: _decide(engine, formset, user, review_id, decision), DECIDE_ATTEMPTS
    )


DECIDE_ATTEMPTS = 5


def _decide(
    engine: Engine, formset: FormSet, user: User, review_id: int, decision: str
) -> dict[str, Any]:
    rv = db.reviews.c
    with db.write(engine) as conn:
        tx = Tx(conn)
        review = conn.execute(
            select(db.reviews).where(rv.id == review_id).with_for_update()
        ).first()
        if review is None:
            raise ApiError(404, "not_found")
        ids = records.canonical(conn, [review.record_id, review.other_id])
        dup_id = ids.get(review.record_id, review.record_id)
        canon_id = ids.get(review.other_id, review.other_id)
        tx.load_many([dup_id, canon_id])
        dup, canon = tx.load(dup_id), tx.load(canon_id)
        tombs = [r.id for r in (dup, canon) if r is not None and r.deleted]
        if tombs and records.canonical(conn, tombs):  # merged away while this waited
            raise races.MergedMeanwhile
        if dup is None or canon is None or not _may_see(user, review.kind, (dup.grid, canon.grid)):
            raise ApiError(404, "not_found")
        reopened = overrulable(review.kind, review.state, review.decided_role)
        if review.state != "open" and not reopened:
            raise ApiError(409, "already_decided")
        at = iso(now())
        merged_into, version = None, None
        if review.kind == TRANSFER:
            form = formset.form(review.form)
            merged_into, version = _decide_transfer(
                tx, formset, form, dup, canon, user, at, decision
            )
        elif decision == "same" and dup_id != canon_id:
            if canon.deleted and not dup.deleted:
                dup, canon = canon, dup
            form = formset.form(review.form)
            version = _merge_pair(tx, formset, form, dup, canon, user, at)
            merged_into = canon.id
        conn.execute(
            update(db.reviews)
            .where(rv.id == review_id)
            .values(state=decision, decided_by=user.username, decided_at=at, decided_role=user.role)
        )
        if decision == "different" and review.kind != TRANSFER and not reopened:
            # pulls carry the pair to devices (§9.2, notdup.py); a worker's "different"
            # confirmed here was numbered when the worker closed it
            tx.touch("review", review_id)
        detail: dict[str, Any] = {
            "record_id": dup.id,
            "other_id": canon.id,
            "merged_into": merged_into,
        }
        if reopened:  # the worker's decision keeps its own audit row; this one names it
            detail["overrules"] = {"decided_by": review.decided_by, "at": review.decided_at}
        conn.execute(
            insert(db.review_audit).values(
                review_id=review_id,
                decision=decision,
                username=user.username,
                at=at,
                detail=db.dumps(detail),
            )
        )
        tx.finish()
        row = conn.execute(select(db.reviews).where(rv.id == review_id)).one()
        titles = _titles(conn, {row.record_id, row.other_id})
    return {"review": _wire(row, titles), "merged_into": merged_into, "version": version}


def _decide_transfer(
    tx: Tx,
    formset: FormSet,
    form: Form,
    claim: records.Row,
    holder: records.Row,
    user: User,
    at: str,
    decision: str,
) -> tuple[str | None, int | None]:
    """On "same" the person moved: the holder takes the claim's values (the newer ones are
    provisional, differences stay as conflicts), moves to the claim's grid, and the claim
    becomes an alias of it. "different": the claim's key fields are flagged for its worker.
    Returns (merged_into, version)."""
    if claim.deleted or claim.id == holder.id:
        return None, None
    if decision == "same" and not holder.deleted:
        version = _merge_pair(
            tx, formset, form, claim, holder, user, at, newer=True, settled=form.roles.grid
        )
        return holder.id, version
    note = TRANSFER_REJECTED if decision == "different" else None
    return None, _settle_claim(tx, form, claim, user, at, note)


def _settle_claim(
    tx: Tx, form: Form, claim: records.Row, user: User, at: str, note: str | None
) -> int:
    """A new version of a claim that stays: it takes the keys nobody holds any more, and with
    a ``note`` its key fields become hard conflicts (the worker must look at the number)."""
    conflicts = list(claim.conflict or [])
    if note is not None:
        key_fields = sorted({f for keys in form.natural_keys for f in keys if f in claim.data})
        fresh = {
            f: {
                "field": f,
                "kind": "hard",
                "base": None,
                "server": None,
                "incoming": claim.data[f],
                "provisional": claim.data[f],
                "note": note,
            }
            for f in key_fields
        }
        conflicts = [c for c in conflicts if c["field"] not in fresh] + list(fresh.values())
        conflicts.sort(key=lambda c: c["field"])
    held = {
        k
        for k in records.natural_keys(form, claim.data)
        if tx.key_owner(form.id, [k], exclude=claim.id) is not None
    }
    meta = records.Meta(
        kind="transfer_review", username=user.username, at=at, device_id=f"review:{user.username}"
    )
    row = records.write(
        tx, form, claim, claim.id, claim.state(), conflicts, claim.stamps, meta, skip_keys=held
    )
    return row.version


def _merge_pair(
    tx: Tx,
    formset: FormSet,
    form: Form,
    dup: records.Row,
    canon: records.Row,
    user: User,
    at: str,
    *,
    newer: bool = False,
    settled: str | None = None,
) -> int:
    """Fold ``dup`` into ``canon``: values merge with an empty base (differences become hard
    conflicts, the canonical values stay provisional), ``dup`` becomes a tombstone and an alias,
    and references and task items naming it are rewritten.

    ``newer``: ``dup``'s values are the provisional ones instead (a transfer: the claim is what
    the person's new grid just recorded); ``settled``: a field the decision itself settles
    (the grid of a transfer), taken from ``dup`` without a conflict."""
    device = f"review:{user.username}"
    incoming = {k: v for k, v in dup.data.items()}
    edited_at = at + "#0000" if newer else ""
    merged = merge(
        {}, canon.state(), incoming, edited_at=edited_at, device=device, stamps=canon.stamps
    )
    if settled is not None:
        kept = tuple(c for c in merged.conflicts if c.field != settled)
        merged = dataclasses.replace(merged, conflicts=kept)
    stamps = dict(merged.stamps)
    for name in incoming:
        if stamps.get(name) is not None and stamps[name].at == edited_at:
            stamps[name] = dup.stamps.get(name) or Stamp(at + "#0000", device)
    meta = records.Meta(kind="merged", username=user.username, at=at, device_id=device)
    records.write(
        tx, form, dup, dup.id, {**dup.state(), DELETED: True}, dup.conflict, dup.stamps, meta
    )
    state = {**merged.values, STATUS: canon.status}
    keys = records.natural_keys(
        form, {k: v for k, v in state.items() if k not in (STATUS, DELETED)}
    )
    if not state.get(DELETED) and tx.key_owner(form.id, keys, exclude=canon.id):
        raise ApiError(409, "duplicate_key")
    # ``dup``'s open questions come along (its values did): a field of its own conflicts
    # whose value ``canon`` now takes from it; ``canon``'s own and the merge's new ones win
    carried = [c for c in dup.conflict or [] if c["field"] != settled]
    conflicts = combine_conflicts([*carried, *(canon.conflict or [])], merged.hard)
    meta = records.Meta(kind="review_merge", username=user.username, at=at, device_id=device)
    row = records.write(tx, form, canon, canon.id, state, conflicts, stamps, meta)
    if dup.grid != canon.grid:  # its "different" pairs now name a record of canon's grid
        records.renumber_told_apart(tx, dup.id)
    records.add_alias(tx, dup.id, canon.id, "review", at)
    _rewrite_references(tx, formset, dup.id, canon.id, user, at, form.id)
    # Task items follow the person: a save of the record they live on in finishes them, and
    # an item pulled after the merge names a record the device has (an item pulled before it
    # is renamed by the alias on the device; no new number needed).
    tx.conn.execute(
        update(db.task_items).where(db.task_items.c.record_id == dup.id).values(record_id=canon.id)
    )
    return row.version


def _rewrite_references(
    tx: Tx, formset: FormSet, old: str, new: str, user: User, at: str, target: str
) -> None:
    """Reference fields naming ``old`` now name ``new``; each referrer gets a new version."""
    for found in records.referrers(tx, old):
        row = tx.load(found.id)
        if row is None:
            continue
        form = formset.form(row.form)
        refs = [
            f.id
            for f in form.fields.values()
            if f.type == "reference" and f.target == target and row.data.get(f.id) == old
        ]
        if not refs:
            continue
        state = {**row.state(), **{f: new for f in refs}}
        meta = records.Meta(
            kind="ref_rewrite", username=user.username, at=at, device_id=f"review:{user.username}"
        )
        records.write(tx, form, row, row.id, state, row.conflict, row.stamps, meta)
