"""Pull pages (PROTOCOL.md §8): the changes after a cursor within the caller's scope.

Why apart from the push side: a page is a read-only view with its own performance traps (a
page over several grids, aliases of a range, JSON built from stored text), none of which the
op pipeline shares.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from json.encoder import encode_basestring
from typing import Any, NamedTuple

from sqlalchemy import Engine, Table, bindparam, exists, not_, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import BindParameter, Exists

from sync.server import db, gridsync, notdup, numbering, records, scopes
from sync.server.auth import User, iso, now
from sync.server.errors import ApiError
from sync.server.sqlin import Built
from sync.server.tasks import pull as task_pull
from sync.server.tx import IN_CHUNK

# Every statement a page runs is built once (bound parameters; ``scope`` expands to the
# caller's grids): building and coercing Core expressions per call cost more server time than
# the reads. With the side-table probe below, a nightly page of 200 changes went from 3.1 to
# 1.4 ms of server CPU on SQLite and from 4.7 to 1.3 ms on PostgreSQL (bench_pull_page.py).
_R, _A, _E = db.records.c, db.aliases.c, db.scope_exits.c
_SINCE: BindParameter[int] = bindparam("since")
_UPPER: BindParameter[int] = bindparam("upper")
_LIMIT: BindParameter[int] = bindparam("limit")
_SCOPE: BindParameter[list[str]] = bindparam("scope", expanding=True)
_GRID: BindParameter[str] = bindparam("grid")
_PAGE_COLUMNS = (
    _R.id,
    _R.form,
    _R.form_version,
    _R.version,
    _R.data,
    _R.status,
    _R.deleted,
    _R.conflict,
    _R.updated_at,
    _R.updated_by,
    _R.seq,
)
_IN_RANGE = (_R.seq > _SINCE, _R.seq <= _UPPER)
_PAGE = select(*_PAGE_COLUMNS).where(*_IN_RANGE).order_by(_R.seq).limit(_LIMIT)
_PAGE_SCOPED = db.prepared(
    select(*_PAGE_COLUMNS).where(*_IN_RANGE, _R.grid.in_(_SCOPE)).order_by(_R.seq).limit(_LIMIT)
)
_NUMBERS = select(_R.seq).where(*_IN_RANGE).order_by(_R.seq).limit(_LIMIT)
_GRID_NUMBERS = db.prepared(
    select(_R.seq).where(_R.grid == _GRID, *_IN_RANGE).order_by(_R.seq).limit(_LIMIT)
)
_ALIASES = (
    select(_A.old_id, _A.canonical_id).where(_A.seq > _SINCE, _A.seq <= _UPPER).order_by(_A.seq)
)
# The current row of each alias's surviving record numbered after the page (its grid last,
# for the scope): ``_survivors``.
_SURVIVORS = Built(
    lambda among: select(*_PAGE_COLUMNS, _R.grid).where(among(_R.id, "ids"), _R.seq > _UPPER)
)
# The aliases of the page's tombstones numbered after the page: ``_tombstone_aliases``.
_LATER_ALIASES = Built(
    lambda among: select(_A.old_id, _A.canonical_id, _A.seq).where(
        among(_A.old_id, "ids"), _A.seq > _UPPER
    )
)
_EXITS = (
    select(_E.record_id)
    .join(db.records, _R.id == _E.record_id)
    .where(_E.seq > _SINCE, _E.seq <= _UPPER, _E.grid.in_(_SCOPE))
    .where(or_(_R.grid.is_(None), not_(_R.grid.in_(_SCOPE))))
    .order_by(_E.seq)
)


def _changed_in(table: Table) -> Exists:
    seq = table.c.seq
    return exists().where(seq > _SINCE, seq <= _UPPER)


# Which of a page's side tables changed at all in (since, top], in one statement: each is one
# probe of its ``seq`` index, and a nightly page of records usually has no alias, scope exit,
# grid, task, task item, scope grant or scope leave, so their five to eight statements are
# skipped (PostgreSQL: one round trip instead of six). Safe under concurrency: every change numbered up to the high-water
# mark has committed before the probe runs, and a later change is numbered above it.
_SIDES = db.prepared(
    select(
        _changed_in(db.aliases),
        _changed_in(db.scope_exits),
        _changed_in(db.grids),
        _changed_in(db.tasks),
        _changed_in(db.task_items),
        _changed_in(db.scope_grants),
        _changed_in(db.scope_leaves),
        _changed_in(db.reviews),
    )
)


class _Sides(NamedTuple):
    """Which side tables hold changes in the page's range (see ``_SIDES``)."""

    aliases: bool
    exits: bool
    grids: bool
    tasks: bool
    items: bool
    grants: bool
    leaves: bool
    reviews: bool  # a duplicate decided "different" (notdup.py)


Who = Callable[[Connection | None], User]  # the caller, authenticated in the transaction given


def page_json(
    engine: Engine,
    user: User | Who,
    since: int,
    limit: int,
    backfill: tuple[str, int] | None = None,
) -> bytes:
    """``pull`` as the response body: stored record JSON is spliced in, not re-encoded
    (a pull of 100 000 records would otherwise spend most of its time in ``json``).

    ``user``: the caller, or how to authenticate them with the first statement of the page's
    read transaction (no connection of its own for that). ``backfill`` = (grid, upto): a page
    of a grid that entered the caller's scope (scopes.py)."""
    page = _page_rows(engine, user, since, limit, backfill)
    rows, aliases, removed, grids, cursor, more, tasks, items, news, caller = page
    if not more and backfill is None:
        _note_pull(engine, caller)
    tail = {
        "aliases": aliases,
        "removed": removed,
        "grids": grids,
        "tasks": tasks,
        **news,
        "cursor": cursor,
        "more": more,
    }
    body = (
        '{"records":['
        + records_json(rows)
        + '],"task_items":'
        + items
        + ","
        + json.dumps(tail, ensure_ascii=False)[1:]
    )
    return body.encode()


def records_json(rows: Iterable[Sequence[Any]]) -> str:
    """The page's records, comma-joined JSON objects, from rows in ``_PAGE_COLUMNS`` order.

    ``data`` and ``conflict`` are the stored JSON texts, spliced in as they are; the other
    strings go through ``encode_basestring`` (a JSON string literal, without ``json.dumps``'
    per-call set-up). ``tests/sync/test_pull_encoding.py`` checks it against ``json.dumps``."""
    q = encode_basestring
    return ",".join(
        [
            f'{{"id":{q(rid)},"form":{q(form)},"form_version":{int(form_version)},'
            f'"version":{int(version)},"data":{data},"status":{q(status)},'
            f'"deleted":{"true" if deleted else "false"},"conflict":{conflict or "null"},'
            f'"updated_at":{q(updated_at)},"updated_by":{q(updated_by)}}}'
            for (
                rid,
                form,
                form_version,
                version,
                data,
                status,
                deleted,
                conflict,
                updated_at,
                updated_by,
                _seq,
            ) in rows
        ]
    )


def _page_rows(
    engine: Engine,
    who: User | Who,
    since: int,
    limit: int,
    backfill: tuple[str, int] | None = None,
) -> tuple[
    Sequence[Sequence[Any]],
    list[dict[str, str]],
    list[str],
    list[dict[str, Any]],
    int,
    bool,
    list[dict[str, Any]],
    str,
    dict[str, list[Any]],
    User,
]:
    with db.read(engine) as conn:
        caller = user = who if isinstance(who, User) else who(conn)
        if backfill is not None:  # scopes.py: the grid's records up to its ``upto``, only
            user = scopes.narrowed(user, backfill[0])
        scope = sorted(user.grids) if user.grids is not None else None
        # The high-water mark first: every change numbered up to it is already committed.
        top = numbering.high_water(conn)
        if since > top:
            raise ApiError(409, "cursor_ahead")
        if backfill is not None:
            top = max(since, min(top, backfill[1]))
        sides = _Sides(*conn.execute(_SIDES, {"since": since, "upper": top}).one())
        page = _PAGE if scope is None else _PAGE_SCOPED
        params: dict[str, Any] = {"since": since, "limit": limit}
        if scope is not None:
            params["scope"] = scope
        # Task items count towards the page like records (PROTOCOL.md §13.2).
        hide = task_pull.hidden(conn, user, scope) if sides.items else []
        item_seqs = (
            task_pull.item_numbers(conn, scope, since, top, limit, hide) if sides.items else []
        )
        rows: Sequence[Sequence[Any]]
        if item_seqs:
            record_seqs = _record_numbers(conn, scope, since, top, limit)
            first = list(itertools.islice(heapq.merge(record_seqs, item_seqs), limit))
            more = len(first) == limit
            upper = first[-1] if more else top
            rows = conn.execute(page, {**params, "upper": upper}).all()
        else:
            end = top
            if scope is not None and len(scope) > 1:
                end = _page_end(conn, scope, since, top, limit)
            rows = conn.execute(page, {**params, "upper": end}).all()
            # A short page covers (since, end], not (since, top]: on PostgreSQL each statement
            # sees the latest commits, and an update committed between ``_page_end`` and this
            # read renumbers its record past ``top``, leaving fewer rows than ``limit`` below
            # ``end`` while changes in (end, top] are still unsent.
            more = len(rows) == limit or end < top
            upper = int(rows[-1].seq) if len(rows) == limit else end
        # Aliases of the page's range first, then their records' grids: joining records
        # first made the database walk every record of the scope for each page.
        span = {"since": since, "upper": upper}
        alias_rows: list[Any] = []
        if sides.aliases:
            alias_rows = [*conn.execute(_ALIASES, span).all()]
            alias_rows += _tombstone_aliases(conn, rows, upper)
        if scope is not None and alias_rows:
            grids = records.brief(conn, [x.canonical_id for x in alias_rows])
            allowed = set(scope)
            alias_rows = [
                x for x in alias_rows if grids.get(x.canonical_id, ("", None))[1] in allowed
            ]
        if alias_rows:
            survivors = _survivors(conn, [x.canonical_id for x in alias_rows], upper, scope)
            rows = [*rows, *survivors]
        removed: list[str] = []
        if scope is not None and sides.exits and backfill is None:
            exits = conn.execute(_EXITS, {**span, "scope": scope}).all()
            removed = list(dict.fromkeys(x.record_id for x in exits))
        changed_grids = gridsync.changed(conn, user.grids, since, upper) if sides.grids else []
        tasks, withdrawn = task_pull.tasks(conn, user, since, upper) if sides.tasks else ([], [])
        items = task_pull.items_json(conn, scope, since, upper, hide) if item_seqs else "[]"
        granted = sides.grants and backfill is None
        entered = scopes.entered(conn, caller, since, upper) if granted else []
        left = scopes.left(conn, caller, since, upper) if sides.leaves and backfill is None else []
        grid = backfill[0] if backfill is not None else None
        different = notdup.pulled(conn, caller, since, upper, grid) if sides.reviews else []
    aliases: list[dict[str, str]] = [
        {"old": x.old_id, "canonical": x.canonical_id} for x in alias_rows
    ]
    # keys only when not empty: a nightly page has none of them (scopes.py, tasks/pull.py)
    extra: dict[str, list[Any]] = {
        "entered": entered,
        "grids_left": left,
        "tasks_withdrawn": withdrawn,
        "not_duplicates": different,
    }
    news = {k: v for k, v in extra.items() if v}
    return rows, aliases, removed, changed_grids, upper, more, tasks, items, news, caller


def _tombstone_aliases(
    conn: Connection, rows: Sequence[Sequence[Any]], upper: int
) -> list[Sequence[Any]]:
    """The aliases numbered above the page's ``upper`` whose merged-away record is one of the
    page's tombstones, in number order: the page carries them beyond its range (PROTOCOL.md
    §8), with their canonical records (``_survivors``).

    Why: a merge numbers the merged-away record's tombstone before the alias, and a page
    ending between them delivered the tombstone alone. The device then deleted its copy of
    the person (gone from the worker's list, a sync cut there until the next one), or, with
    typing not yet sent, kept it live with an "update versus delete" conflict the worker was
    asked to settle. With the alias the device skips the tombstone and renames its copy."""
    tombs = sorted({str(r[0]) for r in rows if r[6]})  # ``_PAGE_COLUMNS``: id, …, deleted
    out: list[Sequence[Any]] = []
    stmt = _LATER_ALIASES.on(conn)
    for i in range(0, len(tombs), IN_CHUNK):
        out.extend(conn.execute(stmt, {"ids": tombs[i : i + IN_CHUNK], "upper": upper}))
    return sorted(out, key=lambda a: int(a[2]))  # its number


def _survivors(
    conn: Connection, ids: Iterable[str], upper: int, scope: Sequence[str] | None
) -> list[Sequence[Any]]:
    """The current rows (``_PAGE_COLUMNS``) of the aliases' surviving records in the scope
    whose change number is above the page's ``upper``, in number order: the page carries them
    beyond its range (PROTOCOL.md §8).

    Why: a device renames its copy of a merged-away record to the survivor's id. Without the
    survivor's state in the same page it held the survivor's id with the other record's data
    and version until a later page, and an edit saved in between (the app stays usable during
    a sync; a sync cut between pages) went out as an op for the survivor based on a version
    of another record: merged from the wrong snapshot (dropped as unchanged) or refused
    ``base_ahead``. A survivor numbered in the range is in the page already; one numbered at
    or below ``since`` was delivered by an earlier page."""
    wanted = sorted(set(ids))
    allowed = None if scope is None else set(scope)
    stmt = _SURVIVORS.on(conn)
    out: list[Sequence[Any]] = []
    for i in range(0, len(wanted), IN_CHUNK):
        for row in conn.execute(stmt, {"ids": wanted[i : i + IN_CHUNK], "upper": upper}):
            if allowed is None or row.grid in allowed:
                out.append(tuple(row)[:-1])
    return sorted(out, key=lambda r: int(r[-1]))


def _record_numbers(
    conn: Connection, scope: Sequence[str] | None, since: int, top: int, limit: int
) -> list[int]:
    """The first ``limit`` record change numbers in ``(since, top]`` within the scope."""
    if scope is None:
        params = {"since": since, "upper": top, "limit": limit}
        return [int(n) for n in conn.execute(_NUMBERS, params).scalars().all()]
    per_grid = [_grid_numbers(conn, grid, since, top, limit) for grid in scope]
    return [int(n) for n in itertools.islice(heapq.merge(*per_grid), limit)]


def _grid_numbers(conn: Connection, grid: str, since: int, top: int, limit: int) -> list[int]:
    params = {"grid": grid, "since": since, "upper": top, "limit": limit}
    return [int(n) for n in conn.execute(_GRID_NUMBERS, params).scalars().all()]  # whole


def _note_pull(engine: Engine, user: User) -> None:
    """Remember when the device last pulled to the end, for the console's "last sync".

    Why only at the end of a pull: one write per pull rather than one per page (a first pull
    is hundreds of pages), and "pulled to here" is what a supervisor wants to know."""
    if not user.device_id:
        return
    with db.write(engine) as conn:
        conn.execute(
            update(db.devices)
            .where(db.devices.c.device_id == user.device_id)
            .values(last_pull_at=iso(now()))
        )


def _page_end(conn: Connection, grids: Sequence[str], since: int, top: int, limit: int) -> int:
    """The change number that ends a page of ``limit`` changes over several grids.

    Why: ``grid IN (...) ORDER BY seq LIMIT n`` makes the database collect and sort every
    remaining change of those grids for each page (a first pull of 100 000 records read them
    all a hundred times). One short range per grid on the (grid, seq) index, merged here,
    finds where the page ends; the page itself then reads only its own rows."""
    per_grid = [_grid_numbers(conn, grid, since, top, limit) for grid in grids]
    first = list(itertools.islice(heapq.merge(*per_grid), limit))
    return int(first[-1]) if len(first) == limit else top
