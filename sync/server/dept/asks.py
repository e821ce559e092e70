"""Requests (部门提出需求): a department asks for data; an admin grants it (possibly narrowed),
refuses it with a reason, or — when the platform does not hold the data yet (low fill rates) —
turns it into a collection task for the grids (``dept.collect``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from app.core.forms import FormSet
from app.core.records import is_empty
from sync.server import auth, db
from sync.server.dept import grants
from sync.server.dept.shape import Shaper
from sync.server.errors import ApiError

STATES = ("open", "granted", "refused", "collecting")
FILL_SAMPLE = 20000  # records a fill rate is worked out on (the first ones in id order)
_Q = db.dept_requests.c


@dataclass(frozen=True)
class Ask:
    department: str
    username: str
    fields: Mapping[str, Sequence[str]]
    purpose: str
    until: str
    communities: Sequence[str] = ()
    grids: Sequence[str] = ()
    filter: str = ""


def create(conn: Connection, formset: FormSet, ask: Ask) -> int:
    """Store a request after checking it reads (fields exist, filter parses, places exist)."""
    if not ask.purpose.strip():
        raise ApiError(422, "grant_incomplete")
    if not ask.until:
        raise ApiError(422, "grant_period")
    spec = _as_spec(ask, auth.iso(auth.now()))
    checked = grants.check(conn, formset, spec)
    result = conn.execute(
        insert(db.dept_requests).values(
            department=ask.department,
            username=ask.username,
            fields=db.dumps({form: list(modes) for form, modes in checked.items()}),
            communities=db.dumps(sorted(set(ask.communities))),
            grids=db.dumps(sorted(set(ask.grids))),
            filter=ask.filter.strip(),
            purpose=ask.purpose.strip(),
            until=ask.until,
            state="open",
            reason="",
            created_at=auth.iso(auth.now()),
        )
    )
    key = result.inserted_primary_key
    return int(key[0]) if key else 0


def _as_spec(ask: Ask, start: str) -> grants.GrantSpec:
    return grants.GrantSpec(
        department=ask.department,
        purpose=ask.purpose,
        legal_basis=ask.purpose,
        fields={form: {name: "masked" for name in names} for form, names in ask.fields.items()},
        valid_from=start,
        valid_to=ask.until,
        communities=tuple(ask.communities),
        grids=tuple(ask.grids),
        filter=ask.filter,
    )


def _row(r: Any) -> dict[str, Any]:
    out = dict(r._mapping)
    for key in ("fields", "communities", "grids"):
        out[key] = db.loads(out[key]) or ([] if key != "fields" else {})
    return out


def get(conn: Connection, request_id: int) -> dict[str, Any]:
    row = conn.execute(select(db.dept_requests).where(_Q.id == request_id)).first()
    if row is None:
        raise ApiError(404, "not_found")
    return _row(row)


def listing(conn: Connection, department: str | None = None) -> list[dict[str, Any]]:
    stmt = select(db.dept_requests).order_by(_Q.id.desc())
    if department is not None:
        stmt = stmt.where(_Q.department == department)
    return [_row(r) for r in conn.execute(stmt)]


def _open(conn: Connection, request_id: int) -> dict[str, Any]:
    found = get(conn, request_id)
    if found["state"] != "open":
        raise ApiError(409, "already_decided")
    return found


def _decided(conn: Connection, request_id: int, admin: str, **values: Any) -> None:
    conn.execute(
        update(db.dept_requests)
        .where(_Q.id == request_id)
        .values(decided_by=admin, decided_at=auth.iso(auth.now()), **values)
    )


def approve(
    conn: Connection,
    formset: FormSet,
    request_id: int,
    admin: str,
    legal_basis: str,
    fields: Mapping[str, Mapping[str, str]] | None = None,
    valid_to: str | None = None,
) -> int:
    """Make the request a grant (``fields``: the admin's narrowing with modes); its id."""
    ask = _open(conn, request_id)
    now = auth.iso(auth.now())
    spec = grants.GrantSpec(
        department=ask["department"],
        purpose=ask["purpose"],
        legal_basis=legal_basis,
        fields=fields
        if fields is not None
        else {f: {n: "masked" for n in names} for f, names in ask["fields"].items()},
        valid_from=now,
        valid_to=valid_to or ask["until"],
        communities=ask["communities"],
        grids=ask["grids"],
        filter=ask["filter"],
        request_id=request_id,
    )
    grant_id = grants.create(conn, formset, spec, admin)
    _decided(conn, request_id, admin, state="granted", grant_id=grant_id)
    return grant_id


def refuse(conn: Connection, request_id: int, admin: str, reason: str) -> None:
    if not reason.strip():
        raise ApiError(422, "need_reason")
    _open(conn, request_id)
    _decided(conn, request_id, admin, state="refused", reason=reason.strip()[:2000])


def fill_rates(conn: Connection, formset: FormSet, request_id: int) -> dict[str, Any]:
    """Share of the requested records (up to ``FILL_SAMPLE``) whose requested fields are
    filled: the admin's cue that the data must be collected first."""
    ask = get(conn, request_id)
    spec = _as_spec(
        Ask(
            ask["department"],
            ask["username"],
            ask["fields"],
            ask["purpose"],
            ask["until"],
            ask["communities"],
            ask["grids"],
            ask["filter"],
        ),
        auth.iso(auth.now()),
    )
    grant = grants.Grant(
        0,
        spec.department,
        spec.purpose,
        spec.legal_basis,
        spec.fields,
        tuple(spec.communities),
        tuple(spec.grids),
        spec.filter,
        spec.valid_from,
        spec.valid_to,
        "",
        "",
        None,
        1,
    )
    shaper = Shaper.of(conn, formset, grant)
    from sync.server.dept.take import scan

    seen = 0
    filled: dict[str, int] = {f"{f}.{n}": 0 for f, names in ask["fields"].items() for n in names}
    for _rid, form, grid, _version, data in scan(conn, shaper, "", FILL_SAMPLE):
        if not shaper.takes(form, grid, False, data):
            continue
        seen += 1
        for name in ask["fields"].get(form, []):
            if not is_empty(data.get(name)):
                filled[f"{form}.{name}"] += 1
    return {
        "records": seen,
        "rates": {k: (round(100 * v / seen) if seen else 0) for k, v in filled.items()},
    }
