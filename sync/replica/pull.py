"""The pull side of sync state: apply a pulled chunk with its cursor, rebasing local edits.

Part of ``sync.replica`` (import it from there). A dirty local record is rebased with the same
three-way rules as the server (``sync.merge.classify``); local unsynced edits are never
overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from app.core.records import clean, dumps, state_of
from app.core.store import Grid, PulledRow, Store
from app.core.store.derive import Derived
from sync.merge import DELETED, STATUS, Action, classify, norm, same
from sync.protocol import PulledGrid, PulledRecord, PullResponse
from sync.replica.rekey import rewrite_id
from sync.replica.rows import _changes, _fetch, _fetch_one, _history, _Row, _split
from sync.replica.tasks import apply_tasks, withdraw_tasks

CURSOR_KEY = "sync_cursor"
SCOPE_KEY = "sync_scope"


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
    grids: int = 0
    tasks: int = 0  # tasks and task items taken
    requeued: int = 0  # set-aside ops and results queued again: grid back (``requeue_entered``)
    not_duplicates: int = 0  # pairs decided "different" on the platform, taken (§9.2)
    again: int = 0  # records of ``records`` this run had already at that version (``Delivered``)


@dataclass
class Delivered:
    """What one sync run pulled that a later page of the run brings again by design
    (PROTOCOL.md §8): an alias's canonical record, carried with the alias's page and again,
    at the same version, on the page of its own number; an alias carried with the merged-away
    record's tombstone and again on its own page. Kept so that the run's summary counts each
    once (it said more people came than did). Holds only aliases and their records: small."""

    canonical: set[tuple[str, int]] = field(default_factory=set)
    aliases: set[tuple[str, str]] = field(default_factory=set)


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
    again (a 100 k first pull took about 40 % longer). The copies run on the checkpointer's
    thread (``app.core.checkpoint``), from a quarter of ``checkpoint_pages`` waiting; a write
    copies the WAL itself only past ``checkpoint_pages``. Restored afterwards, and what waits
    is copied then, on that thread: the sync's last commit no longer copied the whole WAL
    (35-50 ms at the end of a 10 k push, issue 17)."""
    with store.replica.bulk_writes(cache_kib, checkpoint_pages):
        yield


def apply_pull(
    store: Store,
    response: PullResponse,
    scope: str,
    *,
    bulk: bool = True,
    seen: Delivered | None = None,
) -> PullTally:
    """Apply one pulled chunk and store its cursor, in one transaction (PROTOCOL.md §8).

    ``bulk`` False rewrites every clean local copy in full, one at a time: the plain path the
    restamping of unchanged copies (``_restamp_many``) is tested against. ``seen``: what the
    run's earlier pages delivered that this one may bring again (counted in ``again``, and an
    alias not in ``aliases``); updated with this page's."""
    tally = PullTally()
    if seen is not None:
        _note_repeats(tally, response, seen)
    formset = store.formset
    merged_away = {a.old for a in response.aliases if a.old != a.canonical}
    with store.transaction():
        rows = _fetch(store, (r.id for r in response.records))
        fresh: list[PulledRecord] = []
        same: list[tuple[_Row, PulledRecord]] = []
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
                if bulk and _holds(row, pulled):
                    same.append((row, pulled))
                else:
                    _overwrite(store, row, pulled)
                tally.updated += 1
            elif _caught_up(store, row, pulled):
                store.outbox.settle_rejections(row.id)
                _overwrite(store, row, pulled)
                tally.updated += 1
            else:
                _rebase(store, row, pulled)
                tally.rebased += 1
        _restamp_many(store, same)
        tally.inserted = _insert_many(store, fresh)
        # tasks before the aliases: an item of this page naming a merged record is renamed too
        tally.tasks = apply_tasks(store, response.tasks, response.task_items)
        withdraw_tasks(store, response.grids_left, response.tasks_withdrawn)  # after: §13.2
        for alias in response.aliases:
            if alias.old != alias.canonical:
                rewrite_id(store, alias.old, alias.canonical)
                tally.aliases += seen is None or (alias.old, alias.canonical) not in seen.aliases
        if seen is not None:
            seen.aliases.update((a.old, a.canonical) for a in response.aliases)
        pairs = response.not_duplicates  # after the aliases: the ids they name are current
        tally.not_duplicates = store.replica.take_not_duplicates(
            (d.record_id, d.other_id, d.decided_by or "", d.decided_at or "") for d in pairs
        )
        for record_id in response.removed:
            tally.removed += _drop(store, record_id)
        for grid in response.grids:
            store.merge_grid(_grid_of(grid))
            tally.grids += 1
        for key, value in ((CURSOR_KEY, str(response.cursor)), (SCOPE_KEY, scope)):
            store.set_meta(key, value)
    return tally


def _note_repeats(tally: PullTally, response: PullResponse, seen: Delivered) -> None:
    """Count the page's records the run already had at that version (``tally.again``), and
    note its aliases' canonical records as delivered."""
    tally.again = sum((r.id, r.version) in seen.canonical for r in response.records)
    canonical = {a.canonical for a in response.aliases if a.old != a.canonical}
    if canonical:
        seen.canonical.update((r.id, r.version) for r in response.records if r.id in canonical)


def _grid_of(pulled: PulledGrid) -> Grid:
    """A pulled grid as the store keeps it (the device's worker is kept by ``merge_grid``).

    A boundary with fewer than three distinct points is no boundary (the grid check would
    refuse it): the grid is taken without one, and a boundary the device has stays."""
    polygon = [(float(lon), float(lat)) for lon, lat in pulled.polygon or []]
    if len(set(polygon)) < 3:
        polygon = []
    return Grid(
        pulled.code, pulled.name, pulled.community, pulled.community_name, pulled.level, polygon
    )


def _pulled_state(pulled: PulledRecord) -> dict[str, Any]:
    return state_of(clean(pulled.data), pulled.status, pulled.deleted)


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
    row = PulledRow(
        pulled.form_version,
        data,
        status,
        deleted,
        pulled.version,
        dirty,
        base,
        conflict,
        pulled.updated_at,
        pulled.updated_by,
    )
    store.replica.write_pulled(record_id, form_id, row, derived, rid)


def _insert_many(store: Store, fresh: Sequence[PulledRecord]) -> int:
    """Records new to this device, batched (a first pull brings 100 000 of them): derived a
    form at a time (``Store.derive_page``), then the records rows in one executemany and each
    side table in one."""
    if not fresh:
        return 0
    values = [clean(pulled.data) for pulled in fresh]
    derived = _derive_by_form(store, fresh, values)
    prepared = [
        (
            pulled.id,
            pulled.form,
            PulledRow(
                pulled.form_version,
                data,
                pulled.status,
                pulled.deleted,
                pulled.version,
                False,
                None,  # clean: no base stored, the record is its own (``records.stored_base``)
                _server_conflicts(store, pulled.id, pulled) if pulled.conflict else None,
                pulled.updated_at,
                pulled.updated_by,
            ),
            facts,
        )
        for pulled, data, facts in zip(fresh, values, derived, strict=True)
    ]
    store.replica.insert_pulled_many(prepared)
    return len(prepared)


def _derive_by_form(
    store: Store, fresh: Sequence[PulledRecord], values: Sequence[Mapping[str, Any]]
) -> list[Derived]:
    """``store.derive`` of each record, in order, through one ``derive_page`` per form."""
    forms = store.formset.forms
    by_form: dict[str, list[int]] = {}
    for i, pulled in enumerate(fresh):
        by_form.setdefault(pulled.form, []).append(i)
    if len(by_form) == 1:
        return store.derive_page(forms[fresh[0].form], values)
    out: list[Derived | None] = [None] * len(fresh)
    for form_id, where in by_form.items():
        page = store.derive_page(forms[form_id], [values[i] for i in where])
        for i, facts in zip(where, page, strict=True):
            out[i] = facts
    return [facts for facts in out if facts is not None]


def _holds(row: _Row, pulled: PulledRecord) -> bool:
    """Whether a clean local copy already has the pulled fields, status and deletion, to the
    byte of their stored JSON (the usual case: a pull bringing back what this device pushed)."""
    return (
        row.status == pulled.status
        and row.deleted == pulled.deleted
        and dumps(row.data) == dumps(clean(pulled.data))
    )


def _restamp_many(store: Store, same: Sequence[tuple[_Row, PulledRecord]]) -> None:
    """Clean local copies that already hold the pulled values (``_holds``): what ``_overwrite``
    would write for them, without rewriting values, side tables or history that would not
    change: the server's version, conflicts and stamps, one executemany for them all.

    Why: the nightly pull brings back every record the device pushed before it, and rewriting
    each (a dozen statements: the row, keys, refs, person, search terms) cost more than the
    push itself."""
    if not same:
        return
    store.replica.restamp_pulled(
        [
            (
                row.rid,
                pulled.form_version,
                pulled.version,
                _server_conflicts(store, row.id, pulled),
                pulled.updated_at,
                pulled.updated_by,
            )
            for row, pulled in same
        ]
    )


def _caught_up(store: Store, row: _Row, pulled: PulledRecord) -> bool:
    """A dirty copy with nothing pending whose every value the pulled state holds: what kept
    it dirty was a refusal (a broken chain, §11 rule 3) whose values the platform has come to
    hold anyway (another device typed them, a resolve the same way). Then it is in sync; left
    dirty, it stayed "unsynced" and rebased by every pull until the next edit."""
    if next(iter(store.outbox.pending_fields(row.id)), None) is not None:
        return False
    local, server = row.state(), _pulled_state(pulled)
    return all(same(local.get(k), server.get(k)) for k in set(local) | set(server))


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
        base=None,  # clean: the record is its own base (``records.stored_base``)
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
    merged, local_conflicts = rebase(base, local, server, pending=_pending_fields(store, row.id))
    if any(c["field"] == DELETED for c in server_conflicts or []):
        merged.pop(DELETED, None)  # update versus delete: the record stays visible (§6)
    conflict = _combine(_own_value_offered(server_conflicts, merged), local_conflicts)
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


def _own_value_offered(
    entries: list[dict[str, Any]] | None, merged: Mapping[str, Any]
) -> list[dict[str, Any]] | None:
    """The platform's conflicts, each on a field where the device holds a value of its own
    that is neither side (a resolve refused ``stale``, an edit not sent yet) offering that
    value as ``mine`` against the platform's provisional one: otherwise the person's typing
    stood outside the conflict they are asked to settle, and picking a side (``mine`` is the
    default) dropped it."""
    if not entries:
        return entries
    out = []
    for entry in entries:
        own = norm(merged.get(entry["field"]))
        if entry["field"] != DELETED and not any(
            same(own, entry[side]) for side in ("server", "incoming")
        ):
            entry = {**entry, "mine": own, "theirs": entry["provisional"]}
        out.append(entry)
    return out


def rebase(
    base: Mapping[str, Any],
    local: Mapping[str, Any],
    server: Mapping[str, Any],
    *,
    pending: Collection[str] = (),
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Three-way merge of a dirty local state onto a pulled one; local edits always stay.

    States are full (fields plus ``_status`` and ``_deleted``). ``pending`` names the fields
    of ops not yet acknowledged: such a field keeps its local value even when that equals the
    base (a value typed and then typed back while the first edit was on its way). Returns the
    merged state and the hard conflicts as ``{field, base, mine, theirs}`` entries.
    """
    merged = {k: v for k, v in server.items() if norm(v) is not None}
    conflicts: list[dict[str, Any]] = []
    for name in sorted(set(base) | set(local) | set(pending)):
        b, mine, theirs = norm(base.get(name)), norm(local.get(name)), norm(server.get(name))
        action = classify(b, theirs, mine, sent=True, same_device=False)
        if action is Action.KEEP and name in pending and not same(mine, theirs):
            action = Action.TAKE  # the person's latest value, not yet on the server
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
    if _unsent_vs_tombstone(base, local, server, pending):
        # update versus delete (§6): the record stays visible with the person's values and
        # both sides, as the server keeps it when the edit arrives; a tombstone taken like a
        # plain field hid edits the server has not got (one it refused stays that way)
        merged.pop(DELETED, None)
        conflicts.append(
            {
                "field": DELETED,
                "kind": "hard",
                "base": False,
                "mine": False,
                "theirs": True,
                "source": "local",
            }
        )
    if not merged.get(DELETED):
        merged.pop(DELETED, None)
    return merged, conflicts


def _unsent_vs_tombstone(
    base: Mapping[str, Any],
    local: Mapping[str, Any],
    server: Mapping[str, Any],
    pending: Collection[str],
) -> bool:
    """Whether the server deleted a record the device holds live with field values it has not
    acknowledged (pending, or refused and kept): changed from the base, or set by a pending op."""
    if not norm(server.get(DELETED)) or norm(base.get(DELETED)) or norm(local.get(DELETED)):
        return False
    if DELETED in pending:
        return False  # the device's own delete or restore decides, as sent
    names = (set(base) | set(local) | set(pending)) - {STATUS, DELETED}
    return any(n in pending or not same(base.get(n), local.get(n)) for n in names)


def _combine(
    server: list[dict[str, Any]] | None, local: list[dict[str, Any]]
) -> list[dict[str, Any]] | None:
    by_field = {c["field"]: c for c in server or []}
    for entry in local:
        old = by_field.get(entry["field"])
        by_field[entry["field"]] = {**entry, "base": old["base"]} if old else entry
    return [by_field[k] for k in sorted(by_field)] or None


def _pending_fields(store: Store, record_id: str) -> set[str]:
    """Fields (and pseudo-fields) that the record's unacknowledged ops set."""
    out: set[str] = set()
    for kind, fields in store.outbox.pending_fields(record_id):
        out.update({DELETED} if kind == "delete" else json.loads(fields))
    return out


def _pending_resolved(store: Store, record_id: str) -> set[str]:
    """Fields a not-yet-sent resolve op already decided (their server conflict is stale)."""
    out: set[str] = set()
    for _kind, fields in store.outbox.pending_fields(record_id, kinds=("resolve",)):
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
        entry = {
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
        if c.note:
            entry["note"] = c.note  # e.g. a rejected transfer claim (PROTOCOL.md §9.1)
        out.append(entry)
    return out


def _sent_values(store: Store, record_id: str) -> dict[str, Any]:
    """This device's latest value per field across its ops for a record (deletes included)."""
    out: dict[str, Any] = {}
    for kind, fields in store.outbox.sent_newest_first(record_id):
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
    store.replica.remove_record(row.rid, row.id, row.form)
    _history(store, record_id, "removed", {}, "")
    return 1
