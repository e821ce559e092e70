"""A grant applied to records: which records it covers and what of each leaves the platform.

Everything that hands data to a department (download, export, feed) goes through ``Shaper``, so
they cannot disagree: a record is taken when its form is granted, its grid is in the grant's
places and the filter holds; what leaves is the granted fields only, sensitive ones masked
unless granted in full, and — when the grant masks the form's ID number — the birth date and
area codes that would give it back reduced to a year and a province (``Grant.reduced``, the rule
of masked exports: ``app.core.masking``). ``values`` and ``labels`` say what that means; the
takings use their compiled forms (``projector``, ``row_writer``: ``dept.project``), tested
against them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from app.core.display import display_value, masked_part
from app.core.forms import FormSet
from app.core.masking import mask_part, mask_value
from app.core.records import is_empty
from sync.server import auth, db
from sync.server.dept.filters import Predicate, compile_filter
from sync.server.dept.grants import Grant
from sync.server.dept.project import Projector, RowWriter, projector, row_writer


def grant_grids(conn: Connection, grant: Grant) -> list[str]:
    """The grid codes a grant covers: its grids plus its communities' grids (none: all)."""
    g = db.grids.c
    if not grant.grids and not grant.communities:
        return sorted(conn.execute(select(g.code)).scalars())
    found = set(grant.grids)
    if grant.communities:
        found |= set(
            conn.execute(select(g.code).where(g.community.in_(list(grant.communities)))).scalars()
        )
    return sorted(found)


def today() -> dt.date:
    """The day filters such as 年龄 ≥ 60 are evaluated on (China time: UTC+8)."""
    return (auth.now() + dt.timedelta(hours=8)).date()


@dataclass
class Shaper:
    """One grant, compiled: ``takes`` decides a record, ``values`` shapes it."""

    grant: Grant
    formset: FormSet
    grids: frozenset[str]
    predicates: dict[str, Predicate]
    day: dt.date
    everywhere: bool = False  # the grant covers every grid: queries need no grid condition
    _granted: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    _reduced: dict[str, dict[str, str]] | None = None
    _texts: dict[tuple[str, str, str], str] = field(default_factory=dict)  # coded values shown
    _projectors: dict[str, Projector] = field(default_factory=dict)
    _writers: dict[tuple[str, str], RowWriter] = field(default_factory=dict)

    @classmethod
    def of(cls, conn: Connection, formset: FormSet, grant: Grant) -> Shaper:
        predicates = {
            form: compile_filter(grant.filter, formset.form(form), formset)
            for form in grant.forms
            if form in formset.forms
        }
        everywhere = not grant.grids and not grant.communities
        grids = frozenset(grant_grids(conn, grant))
        return cls(grant, formset, grids, predicates, today(), everywhere)

    def where_grid(self, column: Any) -> Any:
        """The grid condition of a query: none for a grant over every grid (an IN of every grid
        would steer the planner to the grid index and a sort), else the grant's grids."""
        return column.isnot(None) if self.everywhere else column.in_(sorted(self.grids))

    def takes(self, form: str, grid: str | None, deleted: bool, data: Mapping[str, Any]) -> bool:
        """Is this record (as it is now) one the grant gives?"""
        predicate = self.predicates.get(form)
        if predicate is None or deleted or grid is None or grid not in self.grids:
            return False
        return bool(predicate(data, self.day))

    def granted(self, form: str) -> list[tuple[str, str]]:
        """(field, mode) of a form's granted fields, in the form's order (stored JSON is not)."""
        found = self._granted.get(form)
        if found is None:
            modes = self.grant.fields[form]
            fields = self.formset.form(form).fields
            found = self._granted[form] = [(name, modes[name]) for name in fields if name in modes]
        return found

    def parts(self, form: str) -> dict[str, str]:
        """The form's granted fields given reduced: field -> ``masking.BIRTH`` | ``AREA``."""
        if self._reduced is None:
            self._reduced = self.grant.reduced(self.formset)
        return self._reduced.get(form, {})

    def projector(self, form: str) -> Projector:
        """``values`` compiled for this form (the fast path of exports and feeds)."""
        found = self._projectors.get(form)
        if found is None:
            granted, parts = self.granted(form), self.parts(form)
            found = self._projectors[form] = projector(self.formset, form, granted, parts)
        return found

    def row_writer(self, form: str, lang: str = "zh") -> RowWriter:
        """``labels`` compiled for this form, cells formula-safe (the fast path of downloads)."""
        found = self._writers.get((form, lang))
        if found is None:
            found = row_writer(self.formset, form, self.granted(form), lang, self.parts(form))
            self._writers[(form, lang)] = found
        return found

    def values(self, form: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """The granted fields of a record as stored (codes), sensitive ones masked unless
        granted in full, those that would give a masked ID number back reduced (``parts``);
        empty values left out."""
        spec = self.formset.form(form)
        parts = self.parts(form)
        out: dict[str, Any] = {}
        for name, mode in self.granted(form):
            value = data.get(name)
            if is_empty(value):
                continue
            fld = spec.fields[name]
            if fld.sensitive and mode != "full":
                out[name] = mask_value(fld, value)
            else:
                out[name] = mask_part(parts[name], value) if name in parts else value
        return out

    def labels(self, form: str, data: Mapping[str, Any], lang: str = "zh") -> list[str]:
        """The granted fields as a person reads them (codes as labels), for downloads. A coded
        value's text is worked out once per download (a street office has few distinct ones)."""
        fields = self.formset.form(form).fields
        parts = self.parts(form)
        out = []
        for name, mode in self.granted(form):
            value = data.get(name)
            if is_empty(value):
                out.append("")
                continue
            fld = fields[name]
            if name in parts:  # as a masked sheet shows it: "1950-**-**", "浙江省****"
                out.append(masked_part(self.formset, fld, parts[name], value, lang))
                continue
            masked = fld.sensitive and mode != "full"
            if fld.type not in ("choice", "multi_choice") or masked:
                out.append(display_value(self.formset, fld, value, lang, masked=masked))
                continue
            key = (name, lang, value if isinstance(value, str) else repr(value))
            text = self._texts.get(key)
            if text is None:
                text = self._texts[key] = display_value(
                    self.formset, fld, value, lang, masked=False
                )
            out.append(text)
        return out

    def headers(self, form: str, lang: str = "zh") -> list[str]:
        spec = self.formset.form(form)
        return [spec.fields[name].label.get(lang) for name, _mode in self.granted(form)]
