"""The device side of sync state, kept in the device's Store (no HTTP here).

Why its own module: every step of a sync must survive a crash at any instant, so each one is
a single local transaction — a pushed batch's results, a pulled chunk together with its cursor,
an id rewrite with every reference to it. ``session`` only sequences these steps.

State it keeps (all in the store's tables):

- ``outbox.state``: ``pending`` -> ``applied`` | ``conflict`` | ``merged`` | ``rejected``, and
  ``outbox.result`` the server's answer as JSON. A retryable rejection stays ``pending``.
- ``records.server_version`` (the newest server version known), ``records.base`` (the last
  pulled server state: the fields plus ``_status``, and ``_deleted`` when true), ``dirty`` (the
  record has unacknowledged ops, or an op was rejected and no later op carrying every value
  was accepted: its values are not all on the server) and ``conflict``: a list of ``{field, base, mine, theirs, ...}`` entries,
  ``mine`` being this device's value and ``theirs`` the other one, both kept until a person
  chooses (``resolve``).
- ``meta``: the pull cursor (``sync_cursor``) for one server and user (``sync_scope``).

Local unsynced edits are never overwritten: a pulled record that is dirty here is rebased with
the same three-way rules as the server (``sync.merge.classify``): base = ``records.base``,
local = ``records.data``, server = the pulled state; where both changed a field differently the
local value stays and both values go into ``conflict``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from app.core import ids
from app.core.formset import FormSet
from app.core.records import clean, diff, dumps
from app.core.store import Store
from sync.merge import DELETED, STATUS, Action, classify, norm, same
from sync.protocol import OpResult, PulledRecord, PullResponse

CURSOR_KEY = "sync_cursor"
SCOPE_KEY = "sync_scope"
LAST_SYNC_KEY = "last_sync"

ACKED = {"applied": "applied", "conflict": "conflict", "merged_into": "merged"}
MAX_AUTHOR = 100

_RECORD_ROW = "rid, id, form, data, status, deleted, server_version, dirty, base, conflict"


@dataclass
class OutOp:
    """One outbox op ready to send: its local sequence and its wire shape."""

    seq: int
    wire: dict[str, Any]
    full: bool = False  # completed after a rejection: carries every value

    @property
    def op_id(self) -> str:
        return str(self.wire["op_id"])

    @property
    def record_id(self) -> str:
        return str(self.wire["record_id"])


@dataclass
class PushTally:
    """What one batch's answers did."""

    applied: int = 0
    conflicts: int = 0
    merged: int = 0
    rejected: int = 0
    deferred: int = 0  # retryable rejections: still pending, sent again next time
    messages: list[str] = field(default_factory=list)


@dataclass
class PullTally:
    """What one pulled chunk did."""

    records: int = 0
    inserted: int = 0
    updated: int = 0
    rebased: int = 0
    skipped: int = 0
    aliases: int = 0
    removed: int = 0


@dataclass
class _Row:
    rid: int
    id: str
    form: str
    data: dict[str, Any]
    status: str
    deleted: bool
    server_version: int | None
    dirty: bool
    base: dict[str, Any] | None
    conflict: list[dict[str, Any]] | None

    def state(self) -> dict[str, Any]:
        """Fields plus the pseudo-fields, the shape the merge rules compare."""
        return _state(self.data, self.status, self.deleted)


def _state(data: Mapping[str, Any], status: str, deleted: bool) -> dict[str, Any]:
    out = dict(data)
    out[STATUS] = status
    if deleted:
        out[DELETED] = True
    return out


def _split(state: Mapping[str, Any]) -> tuple[dict[str, Any], str, bool]:
    data = clean({k: v for k, v in state.items() if k not in (STATUS, DELETED)})
    return data, str(state.get(STATUS) or "draft"), bool(state.get(DELETED))


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _fetch(store: Store, record_ids: Iterable[str]) -> dict[str, _Row]:
    out: dict[str, _Row] = {}
    wanted = list(dict.fromkeys(record_ids))
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        marks = ",".join("?" * len(part))
        for row in store.conn.execute(
            f"SELECT {_RECORD_ROW} FROM records WHERE id IN ({marks})", part
        ):
            rid, rec_id, form, data, status, deleted, version, dirty, base, conflict = row
            out[rec_id] = _Row(
                rid,
                rec_id,
                form,
                json.loads(data),
                status,
                bool(deleted),
                version,
                bool(dirty),
                _loads(base),
                _loads(conflict),
            )
    return out


def _fetch_one(store: Store, record_id: str) -> _Row | None:
    return _fetch(store, [record_id]).get(record_id)


def _history(
    store: Store, record_id: str, kind: str, changes: Mapping[str, Any], author: str
) -> None:
    store.conn.execute(
        "INSERT INTO history (record_id, at, author, kind, changes) VALUES (?, ?, ?, ?, ?)",
        (record_id, ids.now_iso(), author, kind, dumps(dict(changes))),
    )


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """History's field -> [old, new], the pseudo-fields included."""
    return diff(old, new)


# -- outbox: what to send ---------------------------------------------------------------------


def pending_count(store: Store) -> int:
    """Ops waiting to be sent."""
    with store.transaction():
        row = store.conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()
    return int(row[0])


def next_batch(store: Store, after: int, limit: int) -> list[OutOp]:
    """The next pending ops after local sequence ``after``, oldest first, ready to send.

    An op that follows a non-retryable rejection of its record's ops is completed first
    (PROTOCOL.md §11.3): it then carries every field where the local values differ from the
    base, and becomes a ``create`` if the server never accepted the record. The completed op is
    written back, so a resend after a lost answer sends the same thing. A delete of a record
    the server never accepted has nothing to tell the server: it is settled on the device.
    """
    with store.transaction():
        rows = store.conn.execute(
            "SELECT seq, op_id, record_id, form, kind, base_version, fields, edited_at, author, "
            "result FROM outbox WHERE state = 'pending' AND seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        suspects = _records_with_rejections(store)
        ops: list[OutOp] = []
        settled: list[str] = []
        for (
            seq,
            op_id,
            record_id,
            form,
            kind,
            base_version,
            fields,
            edited_at,
            author,
            result,
        ) in rows:
            wire = {
                "op_id": op_id,
                "record_id": record_id,
                "form": form,
                "kind": kind,
                "base_version": base_version,
                "fields": json.loads(fields),
                "edited_at": edited_at,
                "author": (author or "")[:MAX_AUTHOR],
            }
            full = bool((_loads(result) or {}).get("full"))
            if record_id in suspects and not full and _needs_full(store, record_id, seq):
                if _settle_local_delete(store, seq, wire):
                    settled.append(record_id)
                    continue
                wire, full = _complete(store, seq, wire)
            ops.append(OutOp(seq, wire, full))
        if settled:
            _refresh_dirty(store, settled)
    return ops


def _records_with_rejections(store: Store) -> set[str]:
    return {
        r[0]
        for r in store.conn.execute(
            "SELECT DISTINCT record_id FROM outbox WHERE state = 'rejected'"
        )
    }


def _chain_ok(rows: Iterable[tuple[str, str, str | None]]) -> bool:
    """Whether the server has all the record's values so far, from its ops' answers in order:
    a rejection breaks the chain; only an acknowledged op carrying every value (a create or a
    completed op) mends it."""
    ok = True
    for state, kind, result in rows:
        if state == "rejected":
            ok = False
        elif state in ("applied", "conflict", "merged") and (
            kind == "create" or '"full":true' in (result or "")
        ):
            ok = True
    return ok


def _needs_full(store: Store, record_id: str, seq: int) -> bool:
    rows = store.conn.execute(
        "SELECT state, kind, result FROM outbox WHERE record_id = ? AND seq < ? ORDER BY seq",
        (record_id, seq),
    ).fetchall()
    return not _chain_ok(rows)


def _settle_local_delete(store: Store, seq: int, wire: dict[str, Any]) -> bool:
    if wire["kind"] != "delete":
        return False
    row = _fetch_one(store, wire["record_id"])
    earlier = store.conn.execute(
        "SELECT 1 FROM outbox WHERE record_id = ? AND seq < ? AND state = 'pending' LIMIT 1",
        (wire["record_id"], seq),
    ).fetchone()
    if row is None or row.server_version or earlier:
        return False
    reason = {
        "code": "not_on_server",
        "message_zh": "这条记录从未被平台接收，删除只在本机生效。",
        "message_en": "the platform never accepted this record; the delete applies on this device only.",
        "retryable": False,
    }
    result = {"op_id": wire["op_id"], "status": "rejected", "local": True, "reason": reason}
    store.conn.execute(
        "UPDATE outbox SET state = 'rejected', result = ? WHERE seq = ?", (dumps(result), seq)
    )
    return True


def _complete(store: Store, seq: int, wire: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    row = _fetch_one(store, wire["record_id"])
    if row is None or wire["kind"] in ("delete", "resolve"):
        return wire, False
    base = row.base or {}
    local = row.state()
    fields = {
        k: norm(local.get(k))
        for k in sorted((set(base) | set(local)) - {DELETED})
        if not same(base.get(k), local.get(k))
    }
    fields.update(wire["fields"])
    never_accepted = not row.server_version
    wire = {
        **wire,
        "kind": "create" if never_accepted else "update",
        "base_version": row.server_version,
        "fields": fields,
    }
    store.conn.execute(
        "UPDATE outbox SET kind = ?, base_version = ?, fields = ?, result = ? WHERE seq = ?",
        (wire["kind"], wire["base_version"], dumps(fields), dumps({"full": True}), seq),
    )
    return wire, True


# -- outbox: what came back -------------------------------------------------------------------


def record_results(store: Store, ops: Sequence[OutOp], results: Sequence[OpResult]) -> PushTally:
    """Persist one batch's answers, in one transaction (PROTOCOL.md §5.3)."""
    if len(ops) != len(results) or any(
        o.op_id != r.op_id for o, r in zip(ops, results, strict=True)
    ):
        raise ValueError("push results do not match the ops sent")
    tally = PushTally()
    touched: set[str] = set()
    with store.transaction():
        for op, result in zip(ops, results, strict=True):
            status = result.status
            if status == "duplicate_op":
                status = result.original_status or "applied"
            target = _record_result(store, op, result, status, tally)
            touched.add(target)
        _refresh_dirty(store, touched)
    return tally


def _record_result(store: Store, op: OutOp, result: OpResult, status: str, tally: PushTally) -> str:
    answer = dumps({**result.model_dump(exclude_none=True), **({"full": True} if op.full else {})})
    if status == "rejected":
        reason = result.reason
        if reason is not None and reason.retryable:
            tally.deferred += 1
            store.conn.execute("UPDATE outbox SET result = ? WHERE seq = ?", (answer, op.seq))
            return op.record_id
        tally.rejected += 1
        if reason is not None:
            tally.messages.append(f"{reason.message_zh} / {reason.message_en}")
        store.conn.execute(
            "UPDATE outbox SET state = 'rejected', result = ? WHERE seq = ?", (answer, op.seq)
        )
        return op.record_id
    state = ACKED.get(status, "applied")
    store.conn.execute(
        "UPDATE outbox SET state = ?, result = ? WHERE seq = ?", (state, answer, op.seq)
    )
    canonical = result.merged_into or result.record_id or op.record_id
    if canonical != op.record_id:
        rewrite_id(store, op.record_id, canonical)
    if state == "merged":
        tally.merged += 1
    elif state == "conflict":
        tally.conflicts += 1
    else:
        tally.applied += 1
    if result.version is not None:
        store.conn.execute(
            "UPDATE records SET server_version = ? WHERE id = ? "
            "AND (server_version IS NULL OR server_version < ?)",
            (result.version, canonical, result.version),
        )
    return canonical


def set_aside(store: Store, op: OutOp, code: str, message_zh: str, message_en: str) -> None:
    """A whole-request 4xx named this op: keep it on the device, marked, and send the others."""
    reason = {
        "code": code,
        "message_zh": message_zh,
        "message_en": message_en,
        "retryable": False,
    }
    result = {"op_id": op.op_id, "status": "rejected", "request_error": True, "reason": reason}
    with store.transaction():
        store.conn.execute(
            "UPDATE outbox SET state = 'rejected', result = ? WHERE seq = ?",
            (dumps(result), op.seq),
        )
        _refresh_dirty(store, [op.record_id])


def _refresh_dirty(store: Store, record_ids: Iterable[str]) -> None:
    """Dirty = unacknowledged ops, or the server does not have all the record's values (a
    rejection not yet mended by a full op): then a pull rebases instead of overwriting.

    One outbox scan per call (the outbox has no index on record_id).
    """
    wanted = list(set(record_ids))
    pending: set[str] = set()
    chains: dict[str, list[tuple[str, str, str | None]]] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        marks = ",".join("?" * len(part))
        for record_id, state, kind, result in store.conn.execute(
            f"SELECT record_id, state, kind, result FROM outbox WHERE record_id IN ({marks}) "
            "ORDER BY seq",
            part,
        ):
            if state == "pending":
                pending.add(record_id)
            elif state == "rejected" or record_id in chains:
                chains.setdefault(record_id, []).append((state, kind, result))
    store.conn.executemany(
        "UPDATE records SET dirty = ? WHERE id = ?",
        [(int(r in pending or not _chain_ok(chains.get(r, []))), r) for r in wanted],
    )


def rejected_ops(store: Store) -> list[dict[str, Any]]:
    """Ops set aside by the server, with its reason (for a person to look at)."""
    with store.transaction():
        rows = store.conn.execute(
            "SELECT op_id, record_id, form, kind, result FROM outbox WHERE state = 'rejected' "
            "ORDER BY seq"
        ).fetchall()
    return [
        {"op_id": o, "record_id": r, "form": f, "kind": k, "result": _loads(res) or {}}
        for o, r, f, k, res in rows
    ]


# -- pull -------------------------------------------------------------------------------------


def scope_of(server_url: str, username: str) -> str:
    """Cursors belong to one server and one user's scope."""
    return f"{server_url.rstrip('/')}|{username}"


def read_cursor(store: Store, scope: str) -> int:
    """The stored pull cursor, or 0 when it belongs to another server/user (start over)."""
    if store.meta(SCOPE_KEY) != scope:
        return 0
    return int(store.meta(CURSOR_KEY, "0") or 0)


@contextmanager
def bulk_writes(
    store: Store, cache_kib: int = 65536, checkpoint_pages: int = 20000
) -> Iterator[None]:
    """A bigger page cache and rarer WAL checkpoints on this connection while a pull writes
    thousands of rows: the store's indexes (titles, names, pinyin, full text) take inserts at
    random places, and checkpointing after every chunk rewrote the same index pages again and
    again (a 100 k first pull took about 40 % longer). Restored afterwards; the next commit
    checkpoints as usual."""
    with store.transaction():
        cache = store.conn.execute("PRAGMA cache_size").fetchone()[0]
        pages = store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        store.conn.execute(f"PRAGMA cache_size = {-abs(int(cache_kib))}")
        store.conn.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint_pages)}")
    try:
        yield
    finally:
        with store.transaction():
            store.conn.execute(f"PRAGMA cache_size = {int(cache)}")
            store.conn.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")


def apply_pull(store: Store, response: PullResponse, scope: str) -> PullTally:
    """Apply one pulled chunk and store its cursor, in one transaction (PROTOCOL.md §8)."""
    tally = PullTally()
    formset = store.formset
    merged_away = {a.old for a in response.aliases if a.old != a.canonical}
    with store.transaction():
        rows = _fetch(store, (r.id for r in response.records))
        fresh: list[PulledRecord] = []
        for pulled in response.records:
            tally.records += 1
            if pulled.id in merged_away or pulled.form not in formset.forms:
                tally.skipped += 1
                continue
            row = rows.get(pulled.id)
            if row is None:
                fresh.append(pulled)
            elif row.server_version is not None and pulled.version < row.server_version:
                tally.skipped += 1  # an older state than one already seen
            elif not row.dirty:
                _overwrite(store, row, pulled)
                tally.updated += 1
            else:
                _rebase(store, row, pulled)
                tally.rebased += 1
        tally.inserted = _insert_many(store, fresh)
        for alias in response.aliases:
            if alias.old != alias.canonical:
                rewrite_id(store, alias.old, alias.canonical)
                tally.aliases += 1
        for record_id in response.removed:
            tally.removed += _drop(store, record_id)
        for key, value in ((CURSOR_KEY, str(response.cursor)), (SCOPE_KEY, scope)):
            store.set_meta(key, value)
    return tally


def _pulled_state(pulled: PulledRecord) -> dict[str, Any]:
    return _state(clean(pulled.data), pulled.status, pulled.deleted)


def _write_row(
    store: Store,
    record_id: str,
    form_id: str,
    state: Mapping[str, Any],
    *,
    pulled: PulledRecord,
    base: Mapping[str, Any] | None,
    dirty: bool,
    conflict: list[dict[str, Any]] | None,
    rid: int | None,
) -> None:
    """Insert or update one record row and its side tables (keys, refs, people, search)."""
    form = store.formset.form(form_id)
    data, status, deleted = _split(state)
    derived = store.derive(form, data)
    values = (
        pulled.form_version,
        derived.grid,
        derived.title,
        dumps(data),
        status,
        int(deleted),
        pulled.version,
        int(dirty),
        dumps(dict(base)) if base is not None else None,
        dumps(conflict) if conflict else None,
        pulled.updated_at,
        pulled.updated_by,
    )
    if rid is None:
        cur = store.conn.execute(
            "INSERT INTO records (form_version, grid, title, data, status, deleted, server_version, "
            "dirty, base, conflict, updated_at, updated_by, id, form, created_at, created_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*values, record_id, form_id, pulled.updated_at, pulled.updated_by),
        )
        rid = int(cur.lastrowid or 0)
    else:
        store.conn.execute(
            "UPDATE records SET form_version = ?, grid = ?, title = ?, data = ?, status = ?, "
            "deleted = ?, server_version = ?, dirty = ?, base = ?, conflict = ?, updated_at = ?, "
            "updated_by = ? WHERE rid = ?",
            (*values, rid),
        )
    store._write_side_tables(rid, record_id, form_id, None if deleted else derived)


def _insert_many(store: Store, fresh: Sequence[PulledRecord]) -> int:
    """Records new to this device, batched (a first pull brings 100 000 of them): the
    records rows in one executemany, then each side table in one."""
    if not fresh:
        return 0
    c = store.conn
    prepared = []
    for pulled in fresh:
        data = clean(pulled.data)
        state = _state(data, pulled.status, pulled.deleted)
        derived = store.derive(store.formset.form(pulled.form), data)
        conflict = _server_conflicts(store, pulled.id, pulled) if pulled.conflict else None
        prepared.append((pulled, data, state, derived, conflict))
    c.executemany(
        "INSERT INTO records (id, form, form_version, grid, title, data, status, deleted, "
        "server_version, dirty, base, conflict, created_at, created_by, updated_at, updated_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
        [
            (
                p.id,
                p.form,
                p.form_version,
                d.grid,
                d.title,
                dumps(data),
                p.status,
                int(p.deleted),
                p.version,
                dumps(state),
                dumps(conflict) if conflict else None,
                p.updated_at,
                p.updated_by,
                p.updated_at,
                p.updated_by,
            )
            for p, data, state, d, conflict in prepared
        ],
    )
    live = [(p, d) for p, _data, _state, d, _c in prepared if not p.deleted]
    rids: dict[str, int] = {}
    for start in range(0, len(live), 500):
        part = [p.id for p, _d in live[start : start + 500]]
        marks = ",".join("?" * len(part))
        rids.update(c.execute(f"SELECT id, rid FROM records WHERE id IN ({marks})", part))
    c.executemany(
        "INSERT OR IGNORE INTO record_keys (form, key, record_id) VALUES (?, ?, ?)",
        [(p.form, key, p.id) for p, d in live for key in d.keys],
    )
    c.executemany(
        "INSERT OR IGNORE INTO refs (src, field, dst) VALUES (?, ?, ?)",
        [(p.id, f, dst) for p, d in live for f, dst in d.refs],
    )
    c.executemany(
        "INSERT INTO people (rid, form, name, pinyin, birth, house) VALUES (?, ?, ?, ?, ?, ?)",
        [(rids[p.id], p.form, *d.person) for p, d in live if d.person],
    )
    c.executemany(
        "INSERT INTO search (rowid, terms) VALUES (?, ?)",
        [(rids[p.id], d.terms) for p, d in live if d.terms],
    )
    return len(prepared)


def _overwrite(store: Store, row: _Row, pulled: PulledRecord) -> None:
    """A clean local copy simply becomes the server's state."""
    state = _pulled_state(pulled)
    conflict = _server_conflicts(store, row.id, pulled)
    changes = _changes(row.state(), state)
    if changes:
        _history(store, row.id, "pull", changes, pulled.updated_by)
    _write_row(
        store,
        row.id,
        pulled.form,
        state,
        pulled=pulled,
        base=state,
        dirty=False,
        conflict=conflict,
        rid=row.rid,
    )


def _rebase(store: Store, row: _Row, pulled: PulledRecord) -> None:
    """A dirty local copy: server changes come in, local unsynced edits stay (three-way)."""
    server = _pulled_state(pulled)
    local = row.state()
    base = row.base or {}
    server_conflicts = _server_conflicts(
        store, row.id, pulled, skip=_pending_resolved(store, row.id)
    )
    merged, local_conflicts = rebase(base, local, server)
    if any(c["field"] == DELETED for c in server_conflicts or []):
        merged.pop(DELETED, None)  # update versus delete: the record stays visible (§6)
    conflict = _combine(server_conflicts, local_conflicts)
    changes = _changes(local, merged)
    if changes:
        _history(store, row.id, "pull", changes, pulled.updated_by)
    _write_row(
        store,
        row.id,
        pulled.form,
        merged,
        pulled=pulled,
        base=server,
        dirty=True,
        conflict=conflict,
        rid=row.rid,
    )


def rebase(
    base: Mapping[str, Any], local: Mapping[str, Any], server: Mapping[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Three-way merge of a dirty local state onto a pulled one; local edits always stay.

    States are full (fields plus ``_status`` and ``_deleted``). Returns the merged state and
    the hard conflicts as ``{field, base, mine, theirs}`` entries (mine = local).
    """
    merged = {k: v for k, v in server.items() if norm(v) is not None}
    conflicts: list[dict[str, Any]] = []
    for name in sorted(set(base) | set(local)):
        b, mine, theirs = norm(base.get(name)), norm(local.get(name)), norm(server.get(name))
        action = classify(b, theirs, mine, sent=True, same_device=False)
        if action in (Action.KEEP, Action.SAME):
            continue
        if mine is None:
            merged.pop(name, None)
        else:
            merged[name] = mine
        if action is Action.HARD and name != STATUS:
            conflicts.append(
                {
                    "field": name,
                    "kind": "hard",
                    "base": b,
                    "mine": mine,
                    "theirs": theirs,
                    "source": "local",
                }
            )
    if not merged.get(DELETED):
        merged.pop(DELETED, None)
    return merged, conflicts


def _combine(
    server: list[dict[str, Any]] | None, local: list[dict[str, Any]]
) -> list[dict[str, Any]] | None:
    by_field = {c["field"]: c for c in server or []}
    for entry in local:
        old = by_field.get(entry["field"])
        by_field[entry["field"]] = {**entry, "base": old["base"]} if old else entry
    return [by_field[k] for k in sorted(by_field)] or None


def _pending_resolved(store: Store, record_id: str) -> set[str]:
    """Fields a not-yet-sent resolve op already decided (their server conflict is stale)."""
    out: set[str] = set()
    for (fields,) in store.conn.execute(
        "SELECT fields FROM outbox WHERE record_id = ? AND kind = 'resolve' AND state = 'pending'",
        (record_id,),
    ):
        out.update(json.loads(fields))
    return out


def _server_conflicts(
    store: Store, record_id: str, pulled: PulledRecord, skip: set[str] | None = None
) -> list[dict[str, Any]] | None:
    """The server's open conflicts as local entries: which side is ``mine`` is told by this
    device's own last value for the field (its ops); a bystander sees server vs incoming."""
    entries = [c for c in pulled.conflict or [] if c.kind == "hard" and c.field not in (skip or ())]
    if not entries:
        return None
    sent = _sent_values(store, record_id)
    out = []
    for c in entries:
        base, server, incoming = norm(c.base), norm(c.server), norm(c.incoming)
        mine, theirs = server, incoming
        if c.field in sent and same(sent[c.field], incoming) and not same(sent[c.field], server):
            mine, theirs = incoming, server
        out.append(
            {
                "field": c.field,
                "kind": "hard",
                "base": base,
                "mine": mine,
                "theirs": theirs,
                "server": server,
                "incoming": incoming,
                "provisional": norm(c.provisional),
                "source": "server",
            }
        )
    return out


def _sent_values(store: Store, record_id: str) -> dict[str, Any]:
    """This device's latest value per field across its ops for a record (deletes included)."""
    out: dict[str, Any] = {}
    for kind, fields in store.conn.execute(
        "SELECT kind, fields FROM outbox WHERE record_id = ? ORDER BY seq DESC", (record_id,)
    ):
        values = json.loads(fields)
        if kind == "delete":
            values = {DELETED: True}
        elif kind in ("create", "update"):
            values.setdefault(DELETED, False)
        for name, value in values.items():
            out.setdefault(name, value)
    return out


def _drop(store: Store, record_id: str) -> int:
    """A record left this user's scope: forget a clean copy, keep one with unsynced edits."""
    row = _fetch_one(store, record_id)
    if row is None or row.dirty:
        return 0
    store._write_side_tables(row.rid, row.id, row.form, None)
    store.conn.execute("DELETE FROM records WHERE rid = ?", (row.rid,))
    _history(store, record_id, "removed", {}, "")
    return 1


# -- merged duplicates: rewrite an id everywhere ----------------------------------------------


@lru_cache(maxsize=8)
def _reference_fields(formset: FormSet) -> tuple[tuple[str, str], ...]:
    """(form, field) of every reference field in the form set."""
    return tuple(
        (form.id, f.id)
        for form in formset.forms.values()
        for f in form.fields.values()
        if f.type == "reference"
    )


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
        if mine is not None:
            if theirs is None:
                _rename(store, mine, canonical)
            else:
                _fold(store, mine, theirs)
            _history(store, canonical, "merge", {"_merged_from": [old, canonical]}, "")
        _rewrite_references(store, old, canonical)
        store.conn.execute("UPDATE outbox SET record_id = ? WHERE record_id = ?", (canonical, old))
        store.conn.execute(
            "UPDATE autosave SET record_id = ? WHERE record_id = ?", (canonical, old)
        )
        for column in ("record_id", "other_id"):
            store.conn.execute(
                f"UPDATE dedup_decisions SET {column} = ? WHERE {column} = ?", (canonical, old)
            )


def _rename(store: Store, row: _Row, canonical: str) -> None:
    c = store.conn
    c.execute("UPDATE records SET id = ? WHERE rid = ?", (canonical, row.rid))
    c.execute("UPDATE record_keys SET record_id = ? WHERE record_id = ?", (canonical, row.id))
    c.execute("UPDATE refs SET src = ? WHERE src = ?", (canonical, row.id))


def _fold(store: Store, old: _Row, canonical: _Row) -> None:
    """Both copies exist: the canonical one keeps the old copy's unsynced typing."""
    if old.dirty:
        local = old.state()
        base = old.base or {}
        state = canonical.state()
        for name in sorted((set(local) | set(base)) - {DELETED}):
            if not same(base.get(name), local.get(name)):
                state[name] = local.get(name)
        data, status, deleted = _split(state)
        form = store.formset.form(canonical.form)
        derived = store.derive(form, data)
        store.conn.execute(
            "UPDATE records SET data = ?, status = ?, title = ?, grid = ?, dirty = 1 WHERE rid = ?",
            (dumps(data), status, derived.title, derived.grid, canonical.rid),
        )
        store._write_side_tables(
            canonical.rid, canonical.id, canonical.form, None if deleted else derived
        )
    store._write_side_tables(old.rid, old.id, old.form, None)
    store.conn.execute("DELETE FROM records WHERE rid = ?", (old.rid,))


def _rewrite_references(store: Store, old: str, canonical: str) -> None:
    c = store.conn
    pattern = f"%{old}%"
    ref_fields = _reference_fields(store.formset)
    rows = c.execute(
        "SELECT DISTINCT r.rid, r.form, r.data, r.base FROM refs f JOIN records r ON r.id = f.src "
        "WHERE f.dst = ?",
        (old,),
    ).fetchall()
    for rid, form, data, base in rows:
        fields = [f for fm, f in ref_fields if fm == form]
        new_data = _swap(json.loads(data), fields, old, canonical)
        new_base = _swap(_loads(base), fields, old, canonical)
        c.execute(
            "UPDATE records SET data = ?, base = ? WHERE rid = ?",
            (dumps(new_data), dumps(new_base) if new_base is not None else None, rid),
        )
    c.execute("UPDATE OR IGNORE refs SET dst = ? WHERE dst = ?", (canonical, old))
    c.execute("DELETE FROM refs WHERE dst = ?", (old,))
    c.execute("UPDATE people SET house = ? WHERE house = ?", (canonical, old))
    for seq, form, fields in c.execute(
        "SELECT seq, form, fields FROM outbox WHERE state = 'pending' AND fields LIKE ?", (pattern,)
    ).fetchall():
        names = [f for fm, f in ref_fields if fm == form]
        swapped = _swap(json.loads(fields), names, old, canonical)
        c.execute("UPDATE outbox SET fields = ? WHERE seq = ?", (dumps(swapped), seq))
    for slot, form, data in c.execute(
        "SELECT slot, form, data FROM autosave WHERE data LIKE ?", (pattern,)
    ).fetchall():
        names = [f for fm, f in ref_fields if fm == form]
        swapped = _swap(json.loads(data), names, old, canonical)
        c.execute("UPDATE autosave SET data = ? WHERE slot = ?", (dumps(swapped), slot))


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
        now = ids.now_iso()
        store.conn.execute(
            "UPDATE records SET data = ?, status = ?, deleted = ?, title = ?, grid = ?, "
            "conflict = ?, dirty = 1, updated_at = ?, updated_by = ? WHERE rid = ?",
            (
                dumps(data),
                status,
                int(deleted),
                derived.title,
                derived.grid,
                dumps(remaining) if remaining else None,
                now,
                author,
                row.rid,
            ),
        )
        store._write_side_tables(row.rid, row.id, row.form, None if deleted else derived)
        _history(store, row.id, "resolve", _changes(before, _state(data, status, deleted)), author)
        fields = {k: (bool(v) if k == DELETED else norm(v)) for k, v in chosen_fields.items()}
        op_id = f"{store.device_id}:{store._next_seq()}"
        store.conn.execute(
            "INSERT INTO outbox (op_id, record_id, form, kind, base_version, fields, edited_at, "
            "author) VALUES (?, ?, ?, 'resolve', ?, ?, ?, ?)",
            (op_id, row.id, row.form, row.server_version, dumps(fields), store.hlc(), author),
        )
    return op_id


def open_conflicts(store: Store) -> int:
    """Live records with a conflict waiting for a person."""
    with store.transaction():
        row = store.conn.execute(
            "SELECT count(*) FROM records WHERE conflict IS NOT NULL AND deleted = 0"
        ).fetchone()
    return int(row[0])
