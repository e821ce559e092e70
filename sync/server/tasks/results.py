"""Item results: pushed by devices, or made by a qualifying save (PROTOCOL.md §13.1, §13.3).

The merge rule lives in ``state_of``: ``done`` wins over ``unable`` whatever the order, the
latest ``unable`` (by ``edited_at``) gives the reason, and every result stays in the history.
Deciding from the whole history (not from the last result) is what makes two workers'
results commute, so devices may push in any order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection, Engine

from app.core.records import is_empty
from sync import protocol as p
from sync.server import db
from sync.server.auth import User, iso, now
from sync.server.checks import check_text
from sync.server.errors import ApiError
from sync.server.oplog import FAMILY
from sync.server.sqlin import Built
from sync.server.tasks.store import close_finished
from sync.server.tx import Tx

_I, _T, _R = db.task_items.c, db.tasks.c, db.task_results.c
IN_CHUNK = 500
_OPEN_ITEMS = Built(  # open items of open verify tasks on these records
    lambda among: (
        select(_I.id, _I.task_id, _I.record_id, _T.fields)
        .select_from(db.task_items.join(db.tasks, _T.id == _I.task_id))
        .where(
            among(_I.record_id, "ids"),
            and_(_I.state == "open", _T.state == "open", _T.kind == "verify"),
        )
    )
)


def result_hash(result: p.TaskResult) -> str:
    """SHA-256 of the result's canonical JSON: with its op id, its identity (as for ops)."""
    return hashlib.sha256(db.dumps(result.model_dump()).encode()).hexdigest()


def state_of(history: Iterable[Mapping[str, Any]]) -> tuple[str, str | None]:
    """(state, reason) an item's results give: any done → done; else the latest unable."""
    latest: tuple[str, int] | None = None
    reason: str | None = None
    for n, row in enumerate(history):
        if row["state"] == "done":
            return "done", None
        key = (str(row["edited_at"]), n)
        if latest is None or key >= latest:
            latest, reason = key, row["reason"]
    return ("unable", reason) if latest is not None else ("open", None)


_LOOKUP = Built(
    lambda among: select(_R.device_id, _R.op_id, _R.op_hash, _R.username).where(
        _R.device_id.in_(FAMILY), among(_R.op_id, "ids")
    )
)


def _known(
    conn: Connection, user: User, device_id: str, results: Sequence[p.TaskResult]
) -> dict[str, str | None]:
    """Op id -> the logged result's hash, for the results already logged: by this device, or
    with the same content by the same user from a copy of its data dir (its device family,
    as ``oplog.lookup`` finds ops): a copy sending a result again whose answer the original
    never recorded is answered ``duplicate``, not logged twice."""
    digests = {r.op_id: result_hash(r) for r in results}
    ids = sorted(digests)
    out: dict[str, str | None] = {}
    stmt = _LOOKUP.on(conn)
    for i in range(0, len(ids), IN_CHUNK):
        params = {"ids": ids[i : i + IN_CHUNK], "device": device_id}
        rows = conn.execute(stmt, params).all()
        for r in rows:
            if r.device_id == device_id:
                out[r.op_id] = r.op_hash
        for r in rows:  # a copy's: only the same user's very same result
            if r.op_id not in out and r.username == user.username and r.op_hash == digests[r.op_id]:
                out[r.op_id] = r.op_hash
    return out


def _items(conn: Connection, ids: Iterable[str], *, lock: bool = False) -> dict[str, Any]:
    ids = sorted(set(ids))
    out: dict[str, Any] = {}
    for i in range(0, len(ids), IN_CHUNK):
        stmt = select(db.task_items).where(_I.id.in_(ids[i : i + IN_CHUNK])).order_by(_I.id)
        if lock:
            stmt = stmt.with_for_update()
        out.update({r.id: r for r in conn.execute(stmt)})
    return out


def check(conn: Connection, user: User, device_id: str, results: Sequence[p.TaskResult]) -> None:
    """Whole-request checks of a push's ``task_results`` (PROTOCOL.md §13.3): the first failure
    answers the request and nothing of the push is applied."""
    if not results:
        return
    for index, r in enumerate(results):
        for text in (r.op_id, r.item_id, r.edited_at, r.author, r.reason or ""):
            problem_free(text, index)
        if r.state == "unable" and (r.reason is None or not r.reason.strip()):
            raise _at(422, "bad_reason", r, index)
    items = _items(conn, (r.item_id for r in results))
    known = _known(conn, user, device_id, results)
    seen: dict[str, str] = {}
    for index, r in enumerate(results):
        digest = result_hash(r)
        if seen.setdefault(r.op_id, digest) != digest or (
            r.op_id in known and known[r.op_id] not in (None, digest)
        ):
            raise _at(409, "op_id_reused", r, index)
        if r.op_id in known:
            continue  # a replay is answered from the history, whatever the scope is now
        item = items.get(r.item_id)
        if item is None:
            raise _at(422, "unknown_item", r, index)
        if not user.in_scope(item.grid):
            raise _at(403, "out_of_scope", r, index)


def _at(status: int, code: str, r: p.TaskResult, index: int) -> ApiError:
    """An error naming the result at fault (its position in ``task_results``)."""
    return ApiError(status, code, op_id=r.op_id, index=index, field="task_results")


def problem_free(text: str, index: int) -> None:
    check_text(text, index=index, field="task_results")


def apply(engine: Engine, user: User, device_id: str, results: Sequence[p.TaskResult]):
    """Append each result to its item's history and set the item's state (one transaction,
    numbered at its end). Returns one answer per result, in order."""
    if not results:
        return []
    with db.write(engine) as conn:
        tx = Tx(conn)
        at = iso(now())
        known = _known(conn, user, device_id, results)
        items = _items(conn, (r.item_id for r in results), lock=True)
        states = {i: row.state for i, row in items.items()}
        touched_tasks: set[str] = set()
        out: list[dict[str, Any]] = []
        for r in results:
            if r.op_id in known:
                out.append(_answer(r, "duplicate", states.get(r.item_id, "open")))
                continue
            known[r.op_id] = result_hash(r)
            conn.execute(
                insert(db.task_results).values(
                    item_id=r.item_id,
                    source="push",
                    state=r.state,
                    reason=r.reason.strip() if r.state == "unable" and r.reason else None,
                    edited_at=r.edited_at,
                    device_id=device_id,
                    op_id=r.op_id,
                    op_hash=known[r.op_id],
                    username=user.username,
                    author=r.author,
                    at=at,
                )
            )
            state = _settle(tx, r.item_id, at, user.username)
            states[r.item_id] = state
            touched_tasks.add(items[r.item_id].task_id)
            out.append(_answer(r, "applied", state))
        _close(tx, touched_tasks, at, user.username)
        tx.finish()
    return out


def _answer(r: p.TaskResult, status: str, state: str) -> dict[str, Any]:
    return {"op_id": r.op_id, "status": status, "item_id": r.item_id, "state": state}


def _settle(tx: Tx, item_id: str, at: str, by: str) -> str:
    """Recompute an item's state from its history; a change is written and numbered."""
    conn = tx.conn
    history = [
        dict(h)
        for h in conn.execute(
            select(_R.state, _R.reason, _R.edited_at).where(_R.item_id == item_id).order_by(_R.id)
        ).mappings()
    ]
    state, reason = state_of(history)
    current = conn.execute(select(_I.state, _I.reason).where(_I.id == item_id)).one()
    if (current.state, current.reason) != (state, reason):
        conn.execute(
            update(db.task_items)
            .where(_I.id == item_id)
            .values(state=state, reason=reason, updated_at=at, updated_by=by)
        )
        tx.touch("item", item_id)
    return state


def _close(tx: Tx, task_ids: Iterable[str], at: str, by: str) -> None:
    for task_id in close_finished(tx.conn, task_ids, at, by):
        tx.touch("task", task_id)


def after_saves(tx: Tx, at: str, username: str) -> None:
    """Automatic done (PROTOCOL.md §13.1): records saved in this transaction that have an open
    item of an open verify task, and now fill every field the task names. Call before
    ``tx.finish`` so the item changes are numbered with the records."""
    saved = tx.saved
    if not saved:
        return
    tx.saved = {}
    # Items name records that existed when their task was issued: none names a record this
    # transaction created (a nightly push of new residents reads nothing here).
    ids = sorted(i for i in saved if not tx.new_here(i))
    hits: list[Any] = []
    stmt = _OPEN_ITEMS.on(tx.conn)
    for i in range(0, len(ids), IN_CHUNK):
        hits.extend(tx.conn.execute(stmt, {"ids": ids[i : i + IN_CHUNK]}).all())
    tasks: set[str] = set()
    for item_id, task_id, record_id, fields in hits:
        data, deleted, version = saved[record_id]
        if deleted or any(is_empty(data.get(f)) for f in db.loads(fields) or []):
            continue
        tx.conn.execute(
            insert(db.task_results).values(
                item_id=item_id,
                source="save",
                state="done",
                edited_at=at,
                username=username,
                author="",
                record_version=version,
                at=at,
            )
        )
        _settle(tx, item_id, at, username)
        tasks.add(task_id)
    _close(tx, tasks, at, username)
