"""Per-grid summaries for the overview, kept current from the change sequence.

Scanning every record of a community on each overview does not scale (a street office holds
1.6 M records), and counting inside the push path would slow every push. Instead each grid's
counts live in ``grid_stats`` with the change number they are valid at. Change numbers become
visible strictly in order (tx.py), so a summary valid at ``seq`` S is still right unless a record
of that grid has a higher ``seq`` or a record left the grid (``scope_exits``): an overview
recounts only those grids (one indexed range each) and reuses the rest.

Counts are kept per day (created day, changed day), so the 7/30-day windows and the "stale"
cut-off are worked out at read time and never go out of date.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, case, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from sync.server import auth, db, numbering

NO_GRID = ""  # the key of records without a grid (admins only)
_R, _S = db.records.c, db.grid_stats.c


def summaries(engine: Engine, user: auth.User) -> dict[str, dict[str, Any]]:
    """grid code ("" = none) -> summary, for every grid in the user's scope that has records."""
    with db.read(engine) as conn:
        watermark = _watermark(conn)
        cached = _cached(conn, user)
        stale = _stale(conn, user, cached)
        fresh = {grid: _count(conn, grid) for grid in sorted(stale)}
    if fresh or any(seq < watermark for seq, _ in cached.values()):
        _store(engine, fresh, watermark, cached)
    out = {grid: stats for grid, (_seq, stats) in cached.items()}
    out.update(fresh)
    return {grid: stats for grid, stats in out.items() if stats["total"]}


def _watermark(conn: Connection) -> int:
    return numbering.high_water(conn)


def _keys(user: auth.User) -> list[str] | None:
    return None if user.grids is None else sorted(user.grids)


def _cached(conn: Connection, user: auth.User) -> dict[str, tuple[int, dict[str, Any]]]:
    stmt = select(_S.grid, _S.seq, _S.stats)
    keys = _keys(user)
    if keys is not None:
        if not keys:
            return {}
        stmt = stmt.where(_S.grid.in_(keys))
    return {r.grid: (int(r.seq), db.loads(r.stats)) for r in conn.execute(stmt)}


def _stale(
    conn: Connection, user: auth.User, cached: dict[str, tuple[int, dict[str, Any]]]
) -> set[str]:
    """Grids of the scope whose summary is missing or older than a change of theirs."""
    keys = _keys(user)
    if keys is not None and not keys:
        return set()
    scope = set(keys) if keys is not None else _all_grids(conn)
    missing = scope - set(cached)
    # Missing summaries are counted anyway; a first overview (nothing cached) looks at every
    # record, so records of grids the platform does not list get a summary too.
    since = min(seq for seq, _ in cached.values()) if cached else 0
    changed = changed_since(since)
    exits = select(db.scope_exits.c.grid).where(db.scope_exits.c.seq > since)
    if keys is not None:
        changed = changed.where(_R.grid.in_(keys))
        exits = exits.where(db.scope_exits.c.grid.in_(keys))
    found = {g if g is not None else NO_GRID for g in conn.execute(changed).scalars()}
    found |= set(conn.execute(exits).scalars())
    found = {g for g in found if g not in cached or _newer(conn, g, cached[g][0])}
    return found | missing


def _all_grids(conn: Connection) -> set[str]:
    """An admin's scope: every grid of the platform and the records without one (a summary
    cached for one supervisor's grids must not hide the others' grids from an admin)."""
    return {*conn.execute(select(db.grids.c.code)).scalars(), NO_GRID}


def changed_since(since: int) -> Any:
    """Grids of records changed after ``since``, one row per record: a range of the ``seq``
    index (``DISTINCT`` in SQL made SQLite walk the whole (grid, seq) index instead, every
    overview, 0.3 s on 1.6 M records); the caller makes them a set."""
    return select(_R.grid).where(_R.seq > since)


def _newer(conn: Connection, grid: str, seq: int) -> bool:
    """Has ``grid`` a change (or an exit) after ``seq``? One indexed lookup each."""
    where = _R.grid.is_(None) if grid == NO_GRID else _R.grid == grid
    if conn.execute(select(_R.id).where(where, _R.seq > seq).limit(1)).first():
        return True
    x = db.scope_exits.c
    return (
        conn.execute(select(x.id).where(x.grid == grid, x.seq > seq).limit(1)).first() is not None
    )


def _count(conn: Connection, grid: str) -> dict[str, Any]:
    """One grid's live records, grouped by what the overview shows."""
    cday, uday = func.substr(_R.created_at, 1, 10), func.substr(_R.updated_at, 1, 10)
    conflicted = case((_R.conflict.is_not(None), 1), else_=0)
    where = _R.grid.is_(None) if grid == NO_GRID else _R.grid == grid
    stmt = (
        select(
            _R.form, _R.status, _R.created_by, _R.updated_by, cday, uday, conflicted, func.count()
        )
        .where(where, _R.deleted.is_(False))
        .group_by(_R.form, _R.status, _R.created_by, _R.updated_by, cday, uday, conflicted)
    )
    stats: dict[str, Any] = {
        "total": 0,
        "conflicts": 0,
        "forms": {},
        "created": {},
        "updated": {},
        "by": {},
    }
    for form, status, made_by, changed_by, made, changed, conflict, n in conn.execute(stmt):
        n = int(n)
        stats["total"] += n
        stats["conflicts"] += n if conflict else 0
        _add(stats["forms"].setdefault(form, {}), status, n)
        _add(stats["created"], made, n)
        _add(stats["updated"], changed, n)
        maker = _person(stats, made_by)
        _add(maker["forms"].setdefault(form, {}), status, n)
        _add(maker["created"], made, n)
        _add(_person(stats, changed_by)["updated"], changed, n)
    return stats


def _person(stats: dict[str, Any], name: str) -> dict[str, Any]:
    return stats["by"].setdefault(name, {"forms": {}, "created": {}, "updated": {}})


def _add(counts: dict[str, int], key: str, n: int) -> None:
    counts[key] = counts.get(key, 0) + n


def _store(
    engine: Engine,
    fresh: dict[str, dict[str, Any]],
    watermark: int,
    cached: dict[str, tuple[int, dict[str, Any]]],
) -> None:
    """Save recounted grids and move the others' mark up (they had no change up to it)."""
    try:
        with db.write(engine) as conn:
            if fresh:
                conn.execute(delete(db.grid_stats).where(_S.grid.in_(sorted(fresh))))
                conn.execute(
                    insert(db.grid_stats),
                    [{"grid": g, "seq": watermark, "stats": db.dumps(s)} for g, s in fresh.items()],
                )
            kept = sorted(set(cached) - set(fresh))
            for i in range(0, len(kept), 500):
                conn.execute(
                    update(db.grid_stats)
                    .where(_S.grid.in_(kept[i : i + 500]), _S.seq < watermark)
                    .values(seq=watermark)
                )
    except DBAPIError:
        pass  # another process stored the same summaries first: they are as good as ours


# -- reading a summary ------------------------------------------------------------------------


def days_from(counts: dict[str, int], first: str) -> int:
    """Records counted on ``first`` (a YYYY-MM-DD day) or later."""
    return sum(n for day, n in counts.items() if day >= first)


def days_before(counts: dict[str, int], day: str) -> int:
    return sum(n for d, n in counts.items() if d < day)


def merge_days(parts: Iterable[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in parts:
        for day, n in part.items():
            out[day] = out.get(day, 0) + n
    return out
