"""Grants: what one department may take, checked on every taking.

A grant names forms and fields (each sensitive field ``full`` or ``masked``; a field not named is
left out), records (communities and grids, none = every grid, plus a filter), a purpose and legal
basis, a period and the admin who approved it. ``usable`` is the one gate: an expired, revoked or
foreign grant stops a taking at once with one clear line (403).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from app.core.forms import FormSet
from app.core.masking import AREA, BIRTH, reduced
from sync.server import auth, db
from sync.server.dept.filters import compile_filter
from sync.server.errors import ApiError

MODES = ("full", "masked")
KEPT = {BIRTH: "year", AREA: "province"}  # what a reduced field keeps, as the API names it
_G = db.dept_grants.c


@dataclass(frozen=True)
class Grant:
    """One grant as stored (``fields``: form -> field -> mode, in the form's field order)."""

    id: int
    department: str
    purpose: str
    legal_basis: str
    fields: Mapping[str, Mapping[str, str]]
    communities: tuple[str, ...]
    grids: tuple[str, ...]
    filter: str
    valid_from: str
    valid_to: str
    approved_by: str
    approved_at: str
    revoked_at: str | None
    revision: int
    request_id: int | None = None

    @property
    def forms(self) -> list[str]:
        return sorted(self.fields)

    def field_names(self) -> list[str]:
        """``form.field`` of every granted field (for the audit log)."""
        return [f"{form}.{name}" for form in self.forms for name in self.fields[form]]

    def state(self, now: str) -> str:
        """active | revoked | expired | pending (not valid yet)."""
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.valid_to:
            return "expired"
        if now < self.valid_from:
            return "pending"
        return "active"

    def masked(self, formset: FormSet, form: str) -> list[str]:
        """The form's granted fields given masked: sensitive ones not granted ``full``."""
        fields = formset.form(form).fields
        modes = self.fields.get(form, {})
        return [
            n for n, mode in modes.items() if mode != "full" and n in fields and fields[n].sensitive
        ]

    def reduced(self, formset: FormSet) -> dict[str, dict[str, str]]:
        """form -> field -> ``masking.BIRTH`` | ``AREA``: the granted fields given reduced (a
        birth date to its year, an area code to its province) because the grant masks the
        form's ID number, which they would give back (``masking.reduced``). Worked out at
        read time, so grants approved before the rule get it too."""
        out: dict[str, dict[str, str]] = {}
        for form, modes in self.fields.items():
            if form not in formset.forms:
                continue
            parts = reduced(formset.form(form), formset, self.masked(formset, form))
            found = {n: parts[n] for n in modes if n in parts}
            if found:
                out[form] = found
        return out

    def public(self, now: str, formset: FormSet) -> dict[str, Any]:
        """The grant as its department and the admin see it; ``reduced`` names the fields
        given reduced (``year`` | ``province``), so neither is surprised by "1950-**-**"."""
        return {
            "id": self.id,
            "department": self.department,
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "fields": {form: dict(modes) for form, modes in self.fields.items()},
            "communities": list(self.communities),
            "grids": list(self.grids),
            "filter": self.filter,
            "valid_from": self.valid_from,
            "valid_to": self.valid_to,
            "approved_by": self.approved_by,
            "approved_at": self.approved_at,
            "revoked_at": self.revoked_at,
            "revision": self.revision,
            "state": self.state(now),
            "reduced": {
                form: {n: KEPT[kind] for n, kind in parts.items()}
                for form, parts in self.reduced(formset).items()
            },
        }


def _from_row(r: Any) -> Grant:
    return Grant(
        id=int(r.id),
        department=r.department,
        purpose=r.purpose,
        legal_basis=r.legal_basis,
        fields=db.loads(r.fields) or {},
        communities=tuple(db.loads(r.communities) or ()),
        grids=tuple(db.loads(r.grids) or ()),
        filter=r.filter,
        valid_from=r.valid_from,
        valid_to=r.valid_to,
        approved_by=r.approved_by,
        approved_at=r.approved_at,
        revoked_at=r.revoked_at,
        revision=int(r.revision),
        request_id=r.request_id,
    )


def get(conn: Connection, grant_id: int) -> Grant | None:
    row = conn.execute(select(db.dept_grants).where(_G.id == grant_id)).first()
    return _from_row(row) if row is not None else None


def of_department(conn: Connection, department: str | None) -> list[Grant]:
    """A department's grants (every department's for ``None``), newest first."""
    stmt = select(db.dept_grants).order_by(_G.id.desc())
    if department is not None:
        stmt = stmt.where(_G.department == department)
    return [_from_row(r) for r in conn.execute(stmt)]


def usable(conn: Connection, grant_id: int, department: str) -> Grant:
    """The grant if ``department`` may take data under it now; else 403 with one clear line.

    Another department's grant reads as no grant at all (nothing to learn by trying ids).
    """
    grant = get(conn, grant_id)
    if grant is None or grant.department != department:
        raise ApiError(403, "no_grant")
    state = grant.state(auth.iso(auth.now()))
    if state == "revoked":
        raise ApiError(403, "grant_revoked")
    if state != "active":
        raise ApiError(403, "grant_expired")
    return grant


# -- making and changing grants --------------------------------------------------------------


@dataclass(frozen=True)
class GrantSpec:
    """What an admin approves (possibly narrowed from a request)."""

    department: str
    purpose: str
    legal_basis: str
    fields: Mapping[str, Mapping[str, str]]
    valid_from: str
    valid_to: str
    communities: Sequence[str] = ()
    grids: Sequence[str] = ()
    filter: str = ""
    request_id: int | None = None


def period(valid_from: str, valid_to: str) -> tuple[str, str]:
    """A period as stored: a bare date starts at its first moment and ends at its last (UTC);
    422 ``grant_period`` unless it is two dates or times, the end after the start."""
    start = valid_from + "T00:00:00.000Z" if len(valid_from) == 10 else valid_from
    end = valid_to + "T23:59:59.999Z" if len(valid_to) == 10 else valid_to
    for value in (start, end):
        if len(value) < 20 or not value[:4].isdigit() or value[4] != "-" or value[10] != "T":
            raise ApiError(422, "grant_period")
    if end <= start:
        raise ApiError(422, "grant_period")
    return start, end


def check(conn: Connection, formset: FormSet, spec: GrantSpec) -> dict[str, dict[str, str]]:
    """The spec's fields in form order, or 422 naming what to fix; nothing is stored."""
    if not spec.purpose.strip() or not spec.legal_basis.strip():
        raise ApiError(422, "grant_incomplete")
    period(spec.valid_from, spec.valid_to)
    d = db.departments.c
    if conn.execute(select(d.code).where(d.code == spec.department)).first() is None:
        raise ApiError(422, "unknown_department")
    _check_places(conn, spec)
    if not spec.fields:
        raise ApiError(422, "grant_no_fields")
    out: dict[str, dict[str, str]] = {}
    for form_id, modes in spec.fields.items():
        if form_id not in formset.forms:
            raise ApiError(422, "unknown_form")
        form = formset.form(form_id)
        for name, mode in modes.items():
            if name not in form.fields or mode not in MODES:
                raise ApiError(422, "unknown_field", field=name)
            if mode == "masked" and not form.fields[name].sensitive:
                mode = "full"  # only sensitive values have a masked form
        out[form_id] = {n: modes[n] for n in form.fields if n in modes}
        if not out[form_id]:
            raise ApiError(422, "grant_no_fields")
        compile_filter(spec.filter, form, formset)  # 422 bad_filter when it does not parse
    return out


def _check_places(conn: Connection, spec: GrantSpec) -> None:
    c, g = db.communities.c, db.grids.c
    known_c = set(conn.execute(select(c.code)).scalars())
    known_g = set(conn.execute(select(g.code)).scalars())
    if any(x not in known_c for x in spec.communities):
        raise ApiError(422, "unknown_community")
    if any(x not in known_g for x in spec.grids):
        raise ApiError(422, "unknown_grid")


def create(conn: Connection, formset: FormSet, spec: GrantSpec, admin: str) -> int:
    """Store an approved grant; returns its id."""
    fields = check(conn, formset, spec)
    start, end = period(spec.valid_from, spec.valid_to)
    result = conn.execute(
        insert(db.dept_grants).values(
            department=spec.department,
            purpose=spec.purpose.strip(),
            legal_basis=spec.legal_basis.strip(),
            fields=db.dumps(fields),
            communities=db.dumps(sorted(set(spec.communities))),
            grids=db.dumps(sorted(set(spec.grids))),
            filter=spec.filter.strip(),
            valid_from=start,
            valid_to=end,
            approved_by=admin,
            approved_at=auth.iso(auth.now()),
            revision=1,
            request_id=spec.request_id,
        )
    )
    key = result.inserted_primary_key
    return int(key[0]) if key else 0


def revoke(conn: Connection, grant_id: int) -> bool:
    """Revoke a grant at once (every taking under it stops); False when unknown or done."""
    done = conn.execute(
        update(db.dept_grants)
        .where(_G.id == grant_id, _G.revoked_at.is_(None))
        .values(revoked_at=auth.iso(auth.now()))
    ).rowcount
    return bool(done)


def narrow(
    conn: Connection,
    formset: FormSet,
    grant_id: int,
    *,
    fields: Mapping[str, Mapping[str, str]] | None = None,
    valid_to: str | None = None,
    filter_text: str | None = None,
) -> None:
    """Change a grant (fewer fields, a stricter filter, an earlier end): a new revision, so
    feed cursors of the old one are refused and the department takes a fresh export."""
    old = get(conn, grant_id)
    if old is None:
        raise ApiError(404, "not_found")
    spec = GrantSpec(
        old.department,
        old.purpose,
        old.legal_basis,
        fields if fields is not None else old.fields,
        old.valid_from,
        valid_to or old.valid_to,
        old.communities,
        old.grids,
        old.filter if filter_text is None else filter_text,
    )
    checked = check(conn, formset, spec)
    conn.execute(
        update(db.dept_grants)
        .where(_G.id == grant_id)
        .values(
            fields=db.dumps(checked),
            valid_to=period(spec.valid_from, spec.valid_to)[1],
            filter=spec.filter.strip(),
            revision=old.revision + 1,
        )
    )
    conn.execute(db.dept_stats.delete().where(db.dept_stats.c.grant_id == grant_id))
