""" "Not the same person" decisions between devices and the review list (PROTOCOL.md §9.2).

A worker who has both people in front of them answers the device's duplicate banner; that
answer closes the platform's open duplicate review item of the pair (pushed in
``dedup_decisions``). A duplicate decided ``different`` — by a supervisor or by that answer —
takes a change number (``reviews.seq``) so pulls name the pair in ``not_duplicates`` to the
devices whose scope holds both records, and their banners stop warning. "Same" stays a
supervisor's merge (§9): a device can only say ``different``.

Why no op id: closing an open item is idempotent by its state (a resend finds it decided and
changes nothing), so there is no log to keep. Why the scope is checked before the review is
looked up: a pair with a record outside the caller's scope answers exactly as a pair of
unknown ids (§5.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from app.core.ids import is_uuid
from sync import protocol as p
from sync.server import db, races, records
from sync.server.auth import User, iso, now
from sync.server.checks import check_text
from sync.server.errors import ApiError
from sync.server.tx import Tx

FIELD = "dedup_decisions"  # the ``field`` of a 4xx naming one of them
CLOSED, ALREADY, NO_REVIEW = "closed", "already_decided", "no_review"
ATTEMPTS = 5
_RV = db.reviews.c
_PAIR = (
    select(_RV.id, _RV.kind, _RV.state, _RV.record_id, _RV.other_id)
    .where(
        or_(
            and_(_RV.record_id == bindparam("b_a"), _RV.other_id == bindparam("b_b")),
            and_(_RV.record_id == bindparam("b_b"), _RV.other_id == bindparam("b_a")),
        )
    )
    .with_for_update()
)
_DIFFERENT = (
    select(_RV.record_id, _RV.other_id, _RV.decided_by, _RV.decided_at)
    .where(
        _RV.seq > bindparam("since"),
        _RV.seq <= bindparam("upper"),
        _RV.state == "different",
        _RV.kind != "transfer",
    )
    .order_by(_RV.seq)
)


def check(decisions: Sequence[p.DedupDecision]) -> None:
    """Whole-request checks (like §5.2: the first failure answers, nothing is applied)."""
    for index, d in enumerate(decisions):
        for text in (d.record_id, d.other_id, d.decided_at):
            check_text(text, index=index, field=FIELD)
        if not (is_uuid(d.record_id) and is_uuid(d.other_id)):
            raise ApiError(422, "bad_record_id", index=index, field=FIELD)


def apply(
    engine: Engine, user: User, device_id: str, decisions: Sequence[p.DedupDecision]
) -> list[dict[str, Any]]:
    """One answer per decision, in order (one transaction, run again after a race)."""
    if not decisions:
        return []
    return races.retried(lambda: _apply(engine, user, device_id, decisions), ATTEMPTS)


def _apply(
    engine: Engine, user: User, device_id: str, decisions: Sequence[p.DedupDecision]
) -> list[dict[str, Any]]:
    with db.write(engine) as conn:
        tx = Tx(conn)
        at = iso(now())
        out = [
            {
                "record_id": d.record_id,
                "other_id": d.other_id,
                "status": _one(tx, user, device_id, d, at),
            }
            for d in decisions
        ]
        tx.finish()
    return out


def _one(tx: Tx, user: User, device_id: str, d: p.DedupDecision, at: str) -> str:
    """Close the pair's open duplicate item, if the caller may see both records."""
    conn = tx.conn
    aliases = records.canonical(conn, [d.record_id, d.other_id])
    a, b = aliases.get(d.record_id, d.record_id), aliases.get(d.other_id, d.other_id)
    grids = records.brief(conn, [a, b])
    if not all(x in grids and user.in_scope(grids[x][1]) for x in (a, b)):
        return NO_REVIEW
    review = _review(conn, (d.record_id, d.other_id)) or _review(conn, (a, b))
    if review is None and a != b:
        review = _review_by_old_ids(tx, a, b)
    if review is None or review.kind == "transfer":
        return NO_REVIEW
    if review.state != "open":
        return ALREADY
    if a == b:  # merged into one record meanwhile: nothing left to tell apart
        return NO_REVIEW
    if not _still_in_scope(tx, user, a, b):
        return NO_REVIEW
    conn.execute(
        update(db.reviews)
        .where(_RV.id == review.id)
        .values(state="different", decided_by=user.username, decided_at=at, decided_role=user.role)
    )
    detail = {
        "record_id": review.record_id,
        "other_id": review.other_id,
        "merged_into": None,
        "source": "device",
        "device_id": device_id,
        "decided_at": d.decided_at,
    }
    conn.execute(
        insert(db.review_audit).values(
            review_id=review.id,
            decision="different",
            username=user.username,
            at=at,
            detail=db.dumps(detail),
        )
    )
    tx.touch("review", review.id)
    return CLOSED


def _still_in_scope(tx: Tx, user: User, a: str, b: str) -> bool:
    """Lock both records (after the item, as ``reviews.decide`` does) and check the scope on
    what they hold now.

    Why: a move of one of them (``records.renumber_told_apart``) reads the record's pairs
    decided "different" before it commits. Read unlocked, this answer could commit first
    with a number a device's pull then passed while the record was still outside its scope,
    and the move, having seen the item open, never renumbered it: the device never heard.
    Locked, the two take turns: the move's commit comes first and this number after it, or
    this commit first and the move then renumbers the item (PostgreSQL; SQLite serialises
    writers)."""
    tx.load_many([a, b])
    rows = [tx.load(a), tx.load(b)]
    tombs = [r.id for r in rows if r is not None and r.deleted]
    if tombs and records.canonical(tx.conn, tombs):  # merged away while this waited
        raise races.MergedMeanwhile
    return all(r is not None and user.in_scope(r.grid) for r in rows)


def _review(conn: Connection, pair: tuple[str, str]) -> Any:
    return conn.execute(_PAIR, {"b_a": pair[0], "b_b": pair[1]}).first()


def _review_by_old_ids(tx: Tx, a: str, b: str) -> Any:
    """The duplicate item of the canonical pair (a, b) stored under ids merged into them since
    (the device renamed them, the row kept the ids it was opened with); an open one first."""
    olds_a, olds_b = [a, *tx.incoming(a)], [b, *tx.incoming(b)]
    if len(olds_a) == len(olds_b) == 1:
        return None  # the pair as sent was looked up already
    stmt = (
        select(_RV.id, _RV.kind, _RV.state, _RV.record_id, _RV.other_id)
        .where(
            _RV.kind != "transfer",
            or_(
                and_(_RV.record_id.in_(olds_a), _RV.other_id.in_(olds_b)),
                and_(_RV.record_id.in_(olds_b), _RV.other_id.in_(olds_a)),
            ),
        )
        .order_by(_RV.id)
        .with_for_update()
    )
    rows = tx.conn.execute(stmt).all()
    return next((r for r in rows if r.state == "open"), rows[0] if rows else None)


def pulled(
    conn: Connection, caller: User, since: int, upper: int, grid: str | None = None
) -> list[dict[str, Any]]:
    """Pairs decided ``different`` numbered in ``(since, upper]`` whose two records (by their
    canonical ids now) are in the caller's scope; with ``grid`` (a grid's fetch, §8.1) only
    pairs with a record in that grid."""
    rows = conn.execute(_DIFFERENT, {"since": since, "upper": upper}).all()
    if not rows:
        return []
    ids = {r.record_id for r in rows} | {r.other_id for r in rows}
    aliases = records.canonical(conn, ids)
    grids = records.brief(conn, {aliases.get(i, i) for i in ids})
    out = []
    for r in rows:
        a, b = aliases.get(r.record_id, r.record_id), aliases.get(r.other_id, r.other_id)
        if a == b or a not in grids or b not in grids:
            continue
        where = [grids[a][1], grids[b][1]]
        if not all(caller.in_scope(g) for g in where):
            continue
        if grid is not None and grid not in where:
            continue
        out.append(
            {"record_id": a, "other_id": b, "decided_by": r.decided_by, "decided_at": r.decided_at}
        )
    return out
