"""What the console shows: every read is limited to the caller's scope as the sync API
computes it (``auth.User.grids`` from ``auth.scope_of``; ``User.in_scope`` for one record).

Nothing here writes. Values of sensitive fields leave masked (``app.core.masking``); the one
way to see such a value is ``actions.reveal``, which writes an audit row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, and_, bindparam, case, func, select, text, tuple_
from sqlalchemy.engine import Connection

from app.core.display import masked_part
from app.core.forms import Form, FormSet
from app.core.masking import mask_value, revealing
from app.core.records import is_empty
from app.core.search import name_terms, other_generation
from sync.server import auth, db, records, termrows
from sync.server import terms as search_terms
from sync.server.console.i18n import ConsoleError

SEARCH_LIMIT = 50
MAX_PAGE = 5000  # index rows a search reads per query
CONFLICT_LIMIT = 200
_R = db.records.c


# -- scope -----------------------------------------------------------------------------------


def grids_in_scope(conn: Connection, user: auth.User) -> list[dict[str, Any]]:
    """The grids the user may see (code, name, community, boundary points), by code."""
    g = db.grids.c
    stmt = select(g.code, g.name, g.community, g.polygon).order_by(g.code)
    if user.grids is not None:
        if not user.grids:
            return []
        stmt = stmt.where(g.code.in_(sorted(user.grids)))
    return [
        {
            "code": r.code,
            "name": r.name,
            "community": r.community,
            "points": len(db.loads(r.polygon) or []),
        }
        for r in conn.execute(stmt)
    ]


def require_grid(user: auth.User, grid: str | None) -> None:
    """A grid outside the caller's scope does not exist for them (404, never 403)."""
    if grid is not None and not user.in_scope(grid):
        raise ConsoleError(404, "not_found")


def users_in_scope(conn: Connection, user: auth.User) -> list[str] | None:
    """User names the caller may see and manage; ``None`` for an admin (everyone).

    A supervisor sees their community's supervisors and the workers of its grids; a worker
    sees only themselves.
    """
    if user.is_admin:
        return None
    if user.role != "supervisor":
        return [user.username]
    u, ug = db.users.c, db.user_grids.c
    names = {r[0] for r in conn.execute(select(u.username).where(u.community == user.community))}
    if user.grids:
        names |= {
            r[0]
            for r in conn.execute(
                select(ug.username).where(ug.grid.in_(sorted(user.grids))).distinct()
            )
        }
    return sorted(names | {user.username})


def _record_scope(
    stmt: Any, user: auth.User, grid: str | None, codes: list[str] | None = None
) -> Any:
    """Limit a records query to one grid, to ``codes``, or to the user's scope."""
    if grid is not None:
        return stmt.where(_R.grid == grid)
    if codes is not None:
        return stmt.where(_R.grid.in_(codes or [""]))
    if user.grids is not None:
        return stmt.where(_R.grid.in_(sorted(user.grids) or [""]))
    return stmt


# -- devices -------------------------------------------------------------------------------


def _count_if(cond: Any) -> Any:
    return func.sum(case((cond, 1), else_=0))


def devices(conn: Connection, people: list[str] | None) -> list[dict[str, Any]]:
    """Each device a person logged in from: last login, live or revoked, last push and pull."""
    t = db.tokens.c
    logins = select(
        t.username,
        t.device_id,
        func.max(t.created_at),
        _count_if(and_(t.revoked_at.is_(None), t.expires_at > auth.iso(auth.now()))),
    ).group_by(t.username, t.device_id)
    if people is not None:
        logins = logins.where(t.username.in_(people))
    found = conn.execute(logins).all()
    devices = sorted({r[1] for r in found})
    last_push = _last_pushes(conn, [(r[1], r[0]) for r in found])
    last_pull = _last_pulls(conn, devices)
    out = [
        {
            "username": name,
            "device_id": device,
            "console": device.startswith("console-"),
            "last_login": last,
            "live": int(live or 0) > 0,
            "last_push": last_push.get((device, name)),
            "last_pull": last_pull.get((device, name)),
        }
        for name, device, last, live in found
    ]
    return sorted(out, key=lambda d: (d["username"], d["device_id"]))


def _last_pushes(conn: Connection, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(device id, username) -> the last op that device pushed for that user.

    One ``max(at)`` per pair, which ``ix_ops_device_user_at`` answers with one index probe;
    grouping the op log by device instead reads every op the device ever pushed."""
    o = db.ops.c
    out: dict[tuple[str, str], str] = {}
    for i in range(0, len(pairs), 200):
        chunk = pairs[i : i + 200]
        probes = [
            select(func.max(o.at)).where(o.device_id == device, o.username == name)
            for device, name in chunk
        ]
        row = conn.execute(select(*(q.scalar_subquery() for q in probes))).one()
        out.update({pair: at for pair, at in zip(chunk, row, strict=True) if at is not None})
    return out


def _last_pulls(conn: Connection, devices: list[str]) -> dict[tuple[str, str], str]:
    """(device id, username) -> when that device last pulled to the end (``devices``)."""
    d = db.devices.c
    out: dict[tuple[str, str], str] = {}
    for i in range(0, len(devices), 500):
        stmt = select(d.device_id, d.username, d.last_pull_at).where(
            d.device_id.in_(devices[i : i + 500]), d.last_pull_at.is_not(None)
        )
        out.update({(r[0], r[1]): r[2] for r in conn.execute(stmt)})
    return out


# -- values ----------------------------------------------------------------------------------


def shown(form: Form, name: str, value: Any, formset: FormSet | None = None) -> str:
    """A value as the console shows it: masked when the form calls the field sensitive, or
    reduced (a birth date to its year, an area to its province) when it would give a masked
    ID number back (``masking.revealing``; a "show" reveals it, audited); codes with their
    Chinese label when the code table is known."""
    if is_empty(value):
        return ""
    fld = form.fields.get(name)
    if fld is not None and fld.sensitive:
        return mask_value(fld, value)
    part = _revealing(form, formset).get(name) if formset is not None else None
    if fld is not None and formset is not None and part is not None:
        return masked_part(formset, fld, part, value)
    if fld is not None and fld.codes and formset is not None and fld.codes in formset.tables:
        table = formset.table(fld.codes)
        codes = value if isinstance(value, list) else [value]
        return "、".join(f"{table.label(str(c))} ({c})" for c in codes)
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, bool):
        return "是 yes" if value else "否 no"
    return str(value)


def _label(form: Form, name: str) -> dict[str, str]:
    fld = form.fields.get(name)
    if fld is None:
        return {"zh": name, "en": name}
    return {"zh": fld.label.get("zh"), "en": fld.label.get("en")}


def _sensitive(form: Form, name: str, formset: FormSet) -> bool:
    """Shown masked or reduced, so the page offers "show" (``actions.reveal``)."""
    fld = form.fields.get(name)
    return bool(fld and fld.sensitive) or name in _revealing(form, formset)


def _revealing(form: Form, formset: FormSet) -> dict[str, str]:
    """``masking.revealing`` of a form, worked out once per form set."""
    return _revealing_of(formset, form.id)


@lru_cache(maxsize=64)
def _revealing_of(formset: FormSet, form_id: str) -> dict[str, str]:
    return revealing(formset.form(form_id), formset)


# -- conflicts -------------------------------------------------------------------------------


def conflicts(
    engine: Engine, formset: FormSet, user: auth.User, grid: str | None = None
) -> list[dict[str, Any]]:
    """Records with an open conflict: each field with base / platform / incoming, masked."""
    require_grid(user, grid)
    stmt = select(db.records).where(_R.conflict.is_not(None), _R.deleted.is_(False))
    stmt = _record_scope(stmt, user, grid).order_by(_R.updated_at.desc()).limit(CONFLICT_LIMIT)
    with db.read(engine) as conn:
        rows = [records.from_db(r) for r in conn.execute(stmt)]
    return [_conflict_view(formset, formset.form(row.form), row) for row in rows]


def _conflict_view(formset: FormSet, form: Form, row: records.Row) -> dict[str, Any]:
    fields = []
    for c in row.conflict or []:
        name = c["field"]
        stamp = row.stamps.get(name)
        fields.append(
            {
                "field": name,
                "label": _label(form, name),
                "sensitive": _sensitive(form, name, formset),
                "base": shown(form, name, c.get("base"), formset),
                "server": shown(form, name, c.get("server"), formset),
                "incoming": shown(form, name, c.get("incoming"), formset),
                "provisional": shown(form, name, c.get("provisional"), formset),
                "changed_at": stamp.at.split("#")[0] if stamp else "",
                "changed_by_device": stamp.device if stamp else "",
            }
        )
    return {
        "id": row.id,
        "form": row.form,
        "title": row.title,
        "grid": row.grid,
        "version": row.version,
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
        "fields": fields,
    }


# -- records ---------------------------------------------------------------------------------


def _load_in_scope(conn: Connection, user: auth.User, record_id: str) -> records.Row:
    rid = records.canonical(conn, [record_id]).get(record_id, record_id)
    row = records.load(conn, rid)
    if row is None or not user.in_scope(row.grid):
        raise ConsoleError(404, "not_found")
    return row


def search(
    engine: Engine, formset: FormSet, user: auth.User, query: str, limit: int = SEARCH_LIMIT
) -> list[dict[str, Any]]:
    """Records in scope matching a name, pinyin initials, an ID or phone tail or an address.

    Candidates come from the search index kept on write (``sync.server.terms``): a prefix
    range over tails, or over the terms of names and addresses and then the records holding
    those words, a page at a time; each candidate is checked against its record
    (``matches``), which only drops any when the query is longer than a term."""
    q = query.strip().lower()
    if not q or (user.grids is not None and not user.grids):
        return []
    out: dict[str, dict[str, Any]] = {}
    grids = None if user.grids is None else sorted(user.grids)
    termrows.index_pending(engine, formset, grids)  # records pushes created get their terms
    if not search_terms.is_tail_query(q):  # words pushes noted get their terms first
        termrows.expand(engine, grids)
    with db.read(engine) as conn:
        # a whole ID number of one generation finds the record holding the other too
        for asked in (q, *other_generation(q)):
            _collect(conn, formset, user, asked, limit, out)
    return sorted(out.values(), key=lambda r: (r["title"], r["id"]))[:limit]


def _collect(
    conn: Connection,
    formset: FormSet,
    user: auth.User,
    q: str,
    limit: int,
    out: dict[str, dict[str, Any]],
) -> None:
    """Add to ``out`` the records matching ``q``, checked a slice at a time, until it holds
    ``limit``."""
    if len(out) >= limit:
        return
    for ids in _candidates(conn, user, q, limit * 4):
        wanted = [i for i in ids if i not in out]
        for i in range(0, len(wanted), limit):  # a slice at a time: stop once full
            out.update(_checked(conn, formset, user, q, wanted[i : i + limit]))
            if len(out) >= limit:
                return


def _checked(
    conn: Connection, formset: FormSet, user: auth.User, q: str, ids: list[str]
) -> dict[str, dict[str, Any]]:
    """The candidates that are in scope and match ``q``, as the search lists them."""
    out = {}
    for r in conn.execute(_SEARCH_ROWS, {"b_ids": ids}):
        data = db.loads(r.data) or {}
        if user.in_scope(r.grid) and matches(formset.form(r.form), data, r.title, q):
            out[r.id] = {
                "id": r.id,
                "form": r.form,
                "grid": r.grid,
                "title": r.title,
                "status": r.status,
                "deleted": bool(r.deleted),
            }
    return out


_T, _W = db.record_terms.c, db.search_words.c
_SEARCH_ROWS = select(_R.id, _R.form, _R.grid, _R.title, _R.status, _R.deleted, _R.data).where(
    _R.id.in_(bindparam("b_ids", expanding=True))
)


def _candidates(conn: Connection, user: auth.User, q: str, page: int) -> Iterator[list[str]]:
    """Ids of records that may match ``q``, a page at a time, in index order."""
    for low, high in search_terms.ranges(q):
        if not search_terms.is_word(low):  # a tail: the records hold it themselves
            stmt = select(_T.term, _T.grid, _T.record_id).where(_T.term >= low, _T.term < high)
            for rows in _pages(conn, _in_scope(stmt, user), (_T.term, _T.grid, _T.record_id), page):
                yield list(dict.fromkeys(r.record_id for r in rows))
            continue
        for words in _words(conn, _word_grids(conn, user), low, high, page):
            held = _in_scope(select(_T.record_id).where(_T.term.in_(words)), user)
            yield list(dict.fromkeys(conn.execute(held).scalars()))


_GRIDS_WITH_WORDS = text(
    "WITH RECURSIVE g(grid) AS (SELECT min(grid) FROM search_words UNION ALL "
    "SELECT (SELECT min(grid) FROM search_words WHERE grid > g.grid) FROM g "
    "WHERE g.grid IS NOT NULL) SELECT grid FROM g WHERE grid IS NOT NULL"
)


def _word_grids(conn: Connection, user: auth.User) -> list[str]:
    """The grids whose words a search reads: the user's, or (an admin) every grid that has
    words, found by one index seek per grid rather than a scan."""
    if user.grids is not None:
        return sorted(user.grids)
    return list(conn.execute(_GRIDS_WITH_WORDS).scalars())


def _words(
    conn: Connection, grids: list[str], low: str, high: str, page: int
) -> Iterator[list[str]]:
    """Words of ``grids`` with a term in [low, high), a page at a time in (grid, term, word)
    order; grids a page has passed are left out of the next query."""
    after: tuple[Any, ...] | None = None
    order = (_W.grid, _W.term, _W.word)
    while grids:
        stmt = select(*order).where(_W.grid.in_(grids), _W.term >= low, _W.term < high)
        if after is not None:
            stmt = stmt.where(tuple_(*order) > after)
        rows = conn.execute(stmt.order_by(*order).limit(page)).all()
        if rows:
            yield sorted({r.word for r in rows})
        if len(rows) < page:
            return
        after = tuple(rows[-1])
        grids = [g for g in grids if g >= after[0]]
        page = min(page * 2, MAX_PAGE)


def _in_scope(stmt: Any, user: auth.User) -> Any:
    return stmt if user.grids is None else stmt.where(_T.grid.in_(sorted(user.grids)))


def _pages(
    conn: Connection, stmt: Any, order: tuple[Any, ...], page: int
) -> Iterator[Sequence[Any]]:
    """Rows of ``stmt`` in ``order``, ``page`` at first and twice as many each time up to
    ``MAX_PAGE`` (keyset paging: a common prefix never makes the database hand over all its
    rows at once, and a caller with a narrow scope, whose matches are few per page, soon asks
    for bigger ones)."""
    stmt = stmt.order_by(*order)
    after: tuple[Any, ...] | None = None
    while True:
        paged = stmt if after is None else stmt.where(tuple_(*order) > after)
        rows = conn.execute(paged.limit(page)).all()
        if not rows:
            return
        yield rows
        if len(rows) < page:
            return
        after = tuple(rows[-1])
        page = min(page * 2, MAX_PAGE)


def matches(form: Form, data: Mapping[str, Any], title: str, q: str) -> bool:
    """The console's match rule: ``q`` (stripped, lower-cased) is the tail of an ID number or
    phone, or is in a name or starts one of its terms (pinyin, initials), or is in an address."""
    if search_terms.is_tail_query(q):
        return any(
            v.endswith(q) for v in search_terms.values(data, (*form.roles.id, *form.roles.phone))
        )
    for name in search_terms.names_of(form, data, title):
        if q in name or any(term.startswith(q) for term in name_terms(name)):
            return True
    return any(q in v for v in search_terms.values(data, form.roles.address))


def record_view(
    engine: Engine, formset: FormSet, user: auth.User, record_id: str
) -> dict[str, Any]:
    """One record in scope, masked, with its full version history (who, device, when, what)."""
    v = db.record_versions.c
    with db.read(engine) as conn:
        row = _load_in_scope(conn, user, record_id)
        versions = conn.execute(
            select(db.record_versions).where(v.record_id == row.id).order_by(v.version)
        ).all()
    form = formset.form(row.form)
    fields = [
        {
            "field": name,
            "label": _label(form, name),
            "value": shown(form, name, row.data.get(name), formset),
            "sensitive": _sensitive(form, name, formset),
        }
        for name, fld in form.fields.items()
        if not is_empty(row.data.get(name))
    ]
    history = _history(formset, form, versions)
    return {
        "id": row.id,
        "form": row.form,
        "title": row.title,
        "grid": row.grid,
        "status": row.status,
        "deleted": row.deleted,
        "version": row.version,
        "conflicts": len(row.conflict or []),
        "fields": fields,
        "history": history,
    }


def _history(formset: FormSet, form: Form, versions: Sequence[Any]) -> list[dict[str, Any]]:
    """Versions oldest first, each with what changed from the one before (masked)."""
    history = []
    before: dict[str, Any] = {}
    for ver in versions:
        data = db.loads(ver.data) or {}
        changes = [
            {
                "field": name,
                "label": _label(form, name),
                "old": shown(form, name, before.get(name), formset),
                "new": shown(form, name, data.get(name), formset),
            }
            for name in sorted(set(before) | set(data))
            if before.get(name) != data.get(name)
        ]
        history.append(
            {
                "version": ver.version,
                "kind": ver.kind,
                "username": ver.username,
                "device_id": ver.device_id,
                "at": ver.at,
                "status": ver.status,
                "deleted": bool(ver.deleted),
                "changes": changes,
            }
        )
        before = data
    return history


def changes_since(
    conn: Connection, formset: FormSet, record_id: str, since: str
) -> list[dict[str, Any]]:
    """A record's versions written at or after ``since`` (a task's issue time), with their
    changes; the caller has checked the scope."""
    v = db.record_versions.c
    versions = conn.execute(
        select(db.record_versions).where(v.record_id == record_id).order_by(v.version)
    ).all()
    if not versions or versions[0].form not in formset.forms:
        return []
    history = _history(formset, formset.form(versions[0].form), versions)
    return [h for h in history if h["at"] >= since]


# -- people ----------------------------------------------------------------------------------


def people(engine: Engine, user: auth.User) -> list[dict[str, Any]]:
    """The users the caller may see, with their grids and devices."""
    u, ug = db.users.c, db.user_grids.c
    with db.read(engine) as conn:
        names = users_in_scope(conn, user)
        stmt = select(u.username, u.role, u.community, u.disabled).order_by(u.username)
        grid_stmt = select(ug.username, ug.grid)
        if names is not None:
            stmt = stmt.where(u.username.in_(names))
            grid_stmt = grid_stmt.where(ug.username.in_(names))
        found = conn.execute(stmt).all()
        grids: dict[str, list[str]] = {}
        for name, grid in conn.execute(grid_stmt):
            grids.setdefault(name, []).append(grid)
        logins = devices(conn, names)
    by_user: dict[str, list[dict[str, Any]]] = {}
    for d in logins:
        by_user.setdefault(d["username"], []).append(d)
    return [
        {
            "username": r.username,
            "role": r.role,
            "community": r.community,
            "disabled": bool(r.disabled),
            "grids": sorted(grids.get(r.username, [])),
            "devices": by_user.get(r.username, []),
        }
        for r in found
    ]


def grids(engine: Engine, user: auth.User) -> list[dict[str, Any]]:
    with db.read(engine) as conn:
        return grids_in_scope(conn, user)


def communities(engine: Engine, user: auth.User) -> list[dict[str, str]]:
    """Communities the caller may add grids to: all for an admin, their own for a supervisor."""
    c = db.communities.c
    stmt = select(c.code, c.name).order_by(c.code)
    if not user.is_admin:
        stmt = stmt.where(c.code == (user.community or ""))
    with db.read(engine) as conn:
        return [{"code": r.code, "name": r.name} for r in conn.execute(stmt)]
