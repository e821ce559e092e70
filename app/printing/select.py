"""Which records a print job covers: a selection, a house, a building, a grid, or everything.

Qt-free, so the command line, the app and the tests choose records the same way. Houses come
in the order the navigation tree shows them (grid, building "2栋" before "10栋", then address);
residents and units of houses follow their house's order. Errors name ids and codes only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from app.core.messages import pick
from app.core.store import Store, browse

HOUSE_FORM = browse.HOUSE_FORM

_MESSAGES: dict[str, tuple[str, str]] = {
    "print.nothing": (
        "没有符合条件的记录，未生成文件。请检查网格、楼栋或编号。",
        "No records match, so no file was written; check the grid, building or ids.",
    ),
    "print.unknown_record": (
        "本机没有编号为 {id} 的记录。请检查编号，或先同步。",
        "This device has no record {id}; check the id, or sync first.",
    ),
    "print.wrong_form": (
        "记录 {id} 是“{actual}”，不是“{expected}”。",
        'Record {id} is a "{actual}", not a "{expected}".',
    ),
    "print.no_house_link": (
        "“{form}”表单没有关联房屋的字段，无法按房屋或楼栋选择。",
        'The "{form}" form has no link to a house, so it cannot be chosen by house or building.',
    ),
}


class SelectionError(ValueError):
    """Nothing or something wrong was selected; ``str()`` is the code (safe to log)."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params

    def message(self, lang: str = "zh") -> str:
        return pick(lang, *_MESSAGES[self.code]).format(**self.params)


def _sorted_houses(store: Store, ids: Iterable[str]) -> list[str]:
    records = [r for r in (store.get(i) for i in ids) if r is not None and not r.deleted]
    building = store.formset.form("house").roles.building or ""
    records.sort(
        key=lambda r: (
            r.grid or "",
            browse.natural_key(str(r.data.get(building, ""))),
            browse.natural_key(r.title),
            r.id,
        )
    )
    return [r.id for r in records]


def _house_grids(store: Store) -> list[str]:
    codes = [g.code for g in store.grids()]
    return codes + [g for g in browse.undefined_grids(store) if g not in codes]


def houses_in(store: Store, *, grid: str | None = None, building: str | None = None) -> list[str]:
    """House ids of a grid, a building (in one grid, or in every grid when none is given),
    or all houses when neither is given."""
    if grid is None and building is None:
        return _sorted_houses(store, (r.id for r in store.iter_records(HOUSE_FORM)))
    grids = [grid] if grid is not None else _house_grids(store)
    out: list[str] = []
    for code in grids:
        names = (
            [building] if building is not None else [b.name for b in browse.buildings(store, code)]
        )
        for name in names:
            out.extend(h.id for h in browse.houses(store, code, name))
    return out


def _live(store: Store, record_id: str, form_id: str) -> str:
    record = store.get(record_id)
    if record is None or record.deleted:
        raise SelectionError("print.unknown_record", id=record_id)
    if record.form != form_id:
        forms = store.formset
        raise SelectionError(
            "print.wrong_form",
            id=record_id,
            actual=forms.form(record.form).title.zh,
            expected=forms.form(form_id).title.zh,
        )
    return record.id


def _of_houses(store: Store, form_id: str, house_ids: Sequence[str]) -> list[str]:
    if form_id == HOUSE_FORM:
        return list(house_ids)
    form = store.formset.form(form_id)
    ref = browse.house_ref_field(form)
    if ref is None:
        raise SelectionError("print.no_house_link", form=form.title.zh)
    out: list[str] = []
    for house in house_ids:
        for rid in store.referrers(house, ref):
            record = store.get(rid)
            if record is not None and record.form == form_id:
                out.append(rid)
    return out


def select_records(
    store: Store,
    form_id: str,
    *,
    ids: Sequence[str] = (),
    house: str | None = None,
    building: str | None = None,
    grid: str | None = None,
    everything: bool = False,
) -> list[str]:
    """Record ids of ``form_id`` for one print job; ``SelectionError`` when none match.

    Exactly one way of choosing is used, in this order: ``ids``, ``house``, ``building``
    (within ``grid`` if given), ``grid``, ``everything``.
    """
    store.formset.form(form_id)  # unknown form: the formset's own error
    if ids:
        chosen = [_live(store, i, form_id) for i in ids]
    elif house is not None:
        chosen = _of_houses(store, form_id, [_live(store, house, HOUSE_FORM)])
    elif building is not None or (grid is not None and form_id == HOUSE_FORM):
        chosen = _of_houses(store, form_id, houses_in(store, grid=grid, building=building))
    elif grid is not None:
        total = store.count(form_id, grid=grid)
        chosen = [s.id for s in store.summaries(form_id, grid=grid, limit=max(total, 1))]
    elif everything:
        total = store.count(form_id)
        chosen = [s.id for s in store.summaries(form_id, limit=max(total, 1))]
    else:
        chosen = []
    if not chosen:
        raise SelectionError("print.nothing")
    return list(dict.fromkeys(chosen))


def select_houses(
    store: Store,
    *,
    ids: Sequence[str] = (),
    grid: str | None = None,
    building: str | None = None,
    everything: bool = False,
) -> list[str]:
    """House ids for door-plate labels; ``SelectionError`` when none match."""
    if ids:
        chosen = [_live(store, i, HOUSE_FORM) for i in ids]
    elif grid is not None or building is not None or everything:
        chosen = houses_in(store, grid=grid, building=building)
    else:
        chosen = []
    if not chosen:
        raise SelectionError("print.nothing")
    return list(dict.fromkeys(chosen))


__all__ = ["SelectionError", "houses_in", "select_houses", "select_records"]
