"""Statistics of a grant's records without personal data: counts by grid, form, status, age
band or any coded field the grant gives in clear, with small cells suppressed.

Rule (documented in PROTOCOL.md §14.5): a count under 5 is never published (``null``,
"<5"); every published count — cells and totals alike — is the true count rounded to the nearest
multiple of 5 (5–7 → 5, 8–12 → 10). So every number a department can see is a multiple of 5,
and any sum or difference of published numbers — two overlapping queries, a total minus its
other cells — is a multiple of 5 too: it never pins a cell of 1–4, and a suppressed cell cannot
be recovered from its complement.

The counts per grant and grid are cached in ``dept_stats`` with the change number they are
valid at (as the overview's ``grid_stats``): a query recounts only grids changed since, so
repeated questions cost a few indexed look-ups.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Connection

from app.core.display import code_label, status_text
from app.core.forms import FormSet
from app.core.recordfilter import age_at
from sync.server import db, numbering
from sync.server.dept import trace
from sync.server.dept.grants import Grant
from sync.server.dept.shape import Shaper
from sync.server.errors import ApiError

THRESHOLD = 5
BASE = 5
BANDS = ((0, 17), (18, 34), (35, 59), (60, 79), (80, 200))
FIXED = ("grid", "form", "status", "age_band")
_R, _X, _S = db.records.c, db.scope_exits.c, db.dept_stats.c


def publish(count: int) -> int | None:
    """A count as it may be shown: None under the threshold, else rounded to base 5."""
    if count < THRESHOLD:
        return None
    return int(BASE * ((count + BASE // 2) // BASE))


def band(birth: object, today: dt.date) -> str | None:
    try:
        born = dt.date.fromisoformat(str(birth)[:10])
    except ValueError:
        return None
    age = age_at(born, today)
    for low, high in BANDS:
        if low <= age <= high:
            return f"{low}-{high}" if high < 200 else f"{low}+"
    return None


def _in_clear(grant: Grant, formset: FormSet, form: str, name: str) -> bool:
    """Is this field given as it is stored? A masked one is not: counts by it would publish
    each real value as a row's key. Nor is one given reduced beside a masked ID number (a
    birth date as its year, an area as its province: ``Grant.reduced``): counting by the
    whole value would publish what the reduction hides (age bands need month and day)."""
    mode = grant.fields.get(form, {}).get(name)
    fields = formset.form(form).fields
    if mode is None or name not in fields or name in grant.reduced(formset).get(form, {}):
        return False
    return mode == "full" or not fields[name].sensitive


def _coded(formset: FormSet, form: str, name: str) -> bool:
    fld = formset.form(form).fields.get(name)
    return fld is not None and fld.type in ("choice", "multi_choice") and bool(fld.codes)


def _aged_forms(formset: FormSet, grant: Grant) -> list[str]:
    """Forms whose age bands a grant may count: those whose birth date it gives in clear."""
    return [
        form
        for form in grant.forms
        if (birth := formset.form(form).roles.birth_date) and _in_clear(grant, formset, form, birth)
    ]


def dimensions(formset: FormSet, grant: Grant) -> list[str]:
    """What a grant's statistics can count by: grid, form, status, age band (when it gives a
    birth date) and its coded fields given in clear (PROTOCOL.md §14.5)."""
    out = [d for d in FIXED if d != "age_band" or _aged_forms(formset, grant)]
    for form in grant.forms:
        out += [
            f"{form}.{name}"
            for name in grant.fields[form]
            if _coded(formset, form, name) and _in_clear(grant, formset, form, name)
        ]
    return out


def _withheld(formset: FormSet, grant: Grant, by: str) -> ApiError | None:
    """403 naming the field when ``by`` is a coded field (or the age band) the grant gives
    masked or not at all; None when ``by`` is no such thing (then it is just not a dimension)."""
    if by == "age_band":
        found = [(f, b) for f in grant.forms if (b := formset.form(f).roles.birth_date)]
    else:
        form, _, name = by.rpartition(".")
        found = [(f, name) for f in grant.forms if form in (f, "") and _coded(formset, f, name)]
    if not found:
        return None
    form, name = found[0]
    label = formset.form(form).fields[name].label
    return ApiError(403, "stats_not_granted", field=f"{form}.{name}", zh=label.zh, en=label.en)


def _count_grid(conn: Connection, shaper: Shaper, grid: str) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    stmt = select(_R.form, _R.grid, _R.data, _R.status, _R.deleted).where(
        _R.grid == grid, _R.form.in_(shaper.grant.forms), _R.deleted.is_(False)
    )
    dims = dimensions(shaper.formset, shaper.grant)
    aged = _aged_forms(shaper.formset, shaper.grant)
    for r in conn.execute(stmt):
        data = db.loads(r.data) or {}
        if not shaper.takes(r.form, r.grid, False, data):
            continue
        birth_field = shaper.formset.form(r.form).roles.birth_date if r.form in aged else None
        values: dict[str, Iterable[str]] = {
            "form": [r.form],
            "status": [r.status],
            "age_band": [b]
            if birth_field and (b := band(data.get(birth_field), shaper.day))
            else [],
        }
        for dim in dims:
            form, _, name = dim.partition(".")
            if name and form == r.form:
                v = data.get(name)
                values[dim] = (
                    [str(x) for x in v]
                    if isinstance(v, list)
                    else ([str(v)] if v not in (None, "") else [])
                )
        for dim, items in values.items():
            for item in items:
                counts.setdefault(dim, Counter())[item] += 1
        counts.setdefault("total", Counter())["all"] += 1
    return {dim: dict(c) for dim, c in counts.items()}


def _stale(conn: Connection, grids: list[str], cached: Mapping[str, int]) -> list[str]:
    """Grids whose cached counts are missing or older than a change of theirs: the changes
    since the oldest cached number, read from the change index (a few rows when little
    changed), never one query per grid."""
    out = {g for g in grids if g not in cached}
    if cached:
        low = min(cached.values())
        # plain ranges of the seq indexes (a GROUP BY steers SQLite to scan the grid index)
        changed = conn.execute(select(_R.grid, _R.seq).where(_R.seq > low)).all()
        left = conn.execute(select(_X.grid, _X.seq).where(_X.seq > low)).all()
        for grid, seq in [*changed, *left]:
            if grid in cached and seq is not None and seq > cached[grid]:
                out.add(grid)
    return sorted(out)


def per_grid(
    engine: Engine, formset: FormSet, grant: Grant
) -> dict[str, dict[str, dict[str, int]]]:
    """grid -> dimension -> value -> true count, recounting only grids changed since cached."""
    with db.read(engine) as conn:
        shaper = Shaper.of(conn, formset, grant)
        day = shaper.day.isoformat()
        grids = sorted(shaper.grids)
        rows = conn.execute(
            select(_S.grid, _S.seq, _S.stats, _S.revision).where(_S.grant_id == grant.id)
        ).all()
        cached = {
            r.grid: (int(r.seq), db.loads(r.stats))
            for r in rows
            if r.revision == grant.revision and r.grid in shaper.grids
        }
        cached = {g: v for g, v in cached.items() if v[1].get("day") == day}
        mark = numbering.high_water(conn)
        stale = _stale(conn, grids, {g: v[0] for g, v in cached.items()})
        fresh = {g: {"day": day, "counts": _count_grid(conn, shaper, g)} for g in stale}
    if fresh or any(seq < mark for seq, _ in cached.values()):
        _store(engine, grant, fresh, mark)
    out = {g: v[1]["counts"] for g, v in cached.items()}
    out.update({g: s["counts"] for g, s in fresh.items()})
    return out


def _store(engine: Engine, grant: Grant, fresh: dict[str, Any], mark: int) -> None:
    """Keep the fresh counts; every other cached grid is valid at ``mark`` too (its changes
    were looked at), so the next query reads only the changes after it."""
    with db.write(engine) as conn:
        conn.execute(
            update(db.dept_stats).where(_S.grant_id == grant.id, _S.seq < mark).values(seq=mark)
        )
        if fresh:
            conn.execute(
                delete(db.dept_stats).where(_S.grant_id == grant.id, _S.grid.in_(list(fresh)))
            )
            conn.execute(
                insert(db.dept_stats),
                [
                    {
                        "grant_id": grant.id,
                        "grid": g,
                        "revision": grant.revision,
                        "seq": mark,
                        "stats": db.dumps(s),
                    }
                    for g, s in fresh.items()
                ],
            )


def code_text(formset: FormSet, by: str, value: str, lang: str) -> str:
    """A cell's value as people read it (a code's label, a status in words)."""
    form, _, name = by.partition(".")
    if name:
        fld = formset.form(form).fields[name]
        return code_label(formset.table(fld.codes), value, lang) if fld.codes else value
    if by == "status":
        return status_text(value, lang)
    if by == "form" and value in formset.forms:
        return formset.form(value).title.get(lang)
    return value


def query(
    engine: Engine,
    formset: FormSet,
    grant: Grant,
    taker: trace.Taker,
    by: str,
    grids: list[str] | None = None,
    lang: str = "zh",
) -> dict[str, Any]:
    """Counts of the grant's records (in ``grids``, a subset of the grant's) by one dimension,
    small cells suppressed and every count rounded (see the module's rule); traced."""
    dims = dimensions(formset, grant)
    if by not in dims:
        matches = [d for d in dims if d.endswith("." + by)]
        if not matches:
            raise _withheld(formset, grant, by) or ApiError(422, "bad_stats")
        if len(matches) > 1:
            raise ApiError(422, "bad_stats")
        by = matches[0]
    counts = per_grid(engine, formset, grant)
    # each grid once: a grid named n times would publish n × its counts, undoing the rule
    chosen = sorted(counts) if not grids else sorted({g for g in grids if g in counts})
    cells: Counter[str] = Counter()
    total = 0
    for grid in chosen:
        c = counts[grid]
        total += sum(c.get("total", {}).values())
        if by == "grid":
            cells[grid] += sum(c.get("total", {}).values())
        else:
            cells.update(c.get(by, {}))
    rows = [
        {"value": value, "label": code_text(formset, by, value, lang), "count": publish(n)}
        for value, n in sorted(cells.items())
    ]
    trace.once(engine, taker, grant, "stats", 0, [])
    return {
        "grant_id": grant.id,
        "by": by,
        "threshold": THRESHOLD,
        "rounding": BASE,
        "rows": rows,
        "total": publish(total),
    }
