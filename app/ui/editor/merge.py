"""An open editor and its record changed elsewhere: the same three-way rule as sync.

An editor tab may stay open for hours while the same record is saved elsewhere: the household
view (move out, head, relation), a sync pull, another editor, a conflict resolved, an import,
another process (the nightly ``gridcollect sync``). Writing the editor's full values back
would undo those changes without a word (a move-out came back as ``迁出日期 … → (empty)``).

So the editor keeps the stored state it started from (its *base*) and, when it learns of a
newer stored state (a notice from the window, being shown again, and always just before it
saves), rebases the person's own changes onto it with ``sync.replica.rebase``, the rule a
device uses when a pull meets its unsynced edits (``sync.merge.classify``): fields only changed
elsewhere come in, fields only the person changed stay theirs, and a field both changed to
different values is a conflict the person chooses (``ConflictPanel``) before the next save.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core.records import Record, state_of
from app.ui.i18n import register, tr
from sync.merge import DELETED, STATUS, same

register(
    {
        "elsewhere_merged": (
            "这条记录已在别处修改，已载入 {n} 项更改（您改过的字段保持不变）",
            "This record was changed elsewhere: {n} change(s) brought in "
            "(the fields you changed are kept)",
        ),
        "elsewhere_conflicts": (
            "以下字段您和别处都改了，请选择保留哪一个：",
            "You and someone else both changed these fields; choose the value to keep:",
        ),
        "elsewhere_item": (
            "{label}：您填的「{mine}」，别处改为「{theirs}」",
            "{label}: yours “{mine}”, changed elsewhere to “{theirs}”",
        ),
        "elsewhere_mine": ("用我的", "Keep mine"),
        "elsewhere_theirs": ("用别处的", "Take theirs"),
        "elsewhere_choose_first": (
            "保存前请先为两边都改过的字段选择取值（见上方）",
            "Before saving, choose a value for each field changed on both sides (see above)",
        ),
        "elsewhere_deleted": (
            "这条记录已在别处删除",
            "This record was deleted elsewhere",
        ),
        "elsewhere_deleted_item": (
            "这条记录已在别处删除，而您还有未保存的修改：",
            "This record was deleted elsewhere, and you have unsaved changes:",
        ),
        "elsewhere_deleted_mine": ("保留并恢复记录", "Keep it and restore the record"),
        "elsewhere_deleted_theirs": ("接受删除（放弃修改）", "Accept the deletion (discard)"),
        "elsewhere_empty": ("（空）", "(empty)"),
    }
)

MINE, THEIRS = "mine", "theirs"


def record_state(record: Record) -> dict[str, Any]:
    """A stored record as sync's merge rules see it: fields plus ``_status``/``_deleted``."""
    return state_of(record.data, record.status, record.deleted)


def same_state(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal as stored values field by field (empties equal, types kept)."""
    return all(same(a.get(k), b.get(k)) for k in set(a) | set(b))


def local_changes(baseline: Mapping[str, Any], now: Mapping[str, Any]) -> dict[str, Any]:
    """Fields the person changed since the editor last matched the store (None: cleared)."""
    return {
        k: now.get(k)
        for k in sorted(set(now) | set(baseline))
        if not same(now.get(k), baseline.get(k))
    }


@dataclass
class StoredMerge:
    """What a newer stored state means for an open editor."""

    incoming: dict[str, Any] = field(default_factory=dict)  # untouched fields to show anew
    conflicts: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> entry
    deleted: bool = False  # deleted elsewhere (a save restores it, as sync keeps it live)


def merge_stored(
    base: Mapping[str, Any], mine: Mapping[str, Any], theirs: Mapping[str, Any]
) -> StoredMerge:
    """Rebase the person's changes ``mine`` (field -> value) from ``base`` onto ``theirs``.

    ``base`` and ``theirs`` are full states (``record_state``). The rule is the device's
    pull rebase (``sync.replica.rebase``), so an editor and a sync never disagree."""
    from sync.replica import rebase  # sync's pull side: loaded only when a record changed

    local = {**base, **mine}
    _merged, hard = rebase(base, local, theirs)
    out = StoredMerge(deleted=bool(theirs.get(DELETED)))
    for name in sorted(set(base) | set(theirs)):
        if name in (STATUS, DELETED) or name in mine:
            continue
        if not same(base.get(name), theirs.get(name)):
            out.incoming[name] = theirs.get(name)
    if out.deleted and not base.get(DELETED) and mine:  # update versus delete (§6): ask
        out.conflicts[DELETED] = {"field": DELETED, "base": False, "mine": False, "theirs": True}
    for entry in hard:
        out.conflicts[entry["field"]] = {
            "field": entry["field"],
            "base": entry["base"],
            "mine": entry["mine"],
            "theirs": entry["theirs"],
        }
    return out


_CONFLICT_STYLE = (
    "QFrame#conflictBanner { background: #fff3e0; border: 2px solid #e65100; border-radius: 4px; }"
)


class ConflictPanel(QFrame):
    """The fields both the person and someone else changed, each with "keep mine" and "take
    theirs"; ``chosen(field, side)`` fires on a click."""

    chosen = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("conflictBanner")
        self._layout = QVBoxLayout(self)
        self._buttons: dict[tuple[str, str], QPushButton] = {}
        self.setVisible(False)

    def button(self, name: str, side: str) -> QPushButton:
        """The "keep mine" (side ``mine``) or "take theirs" (``theirs``) button of a field."""
        return self._buttons[(name, side)]

    def show_conflicts(
        self,
        entries: Mapping[str, Mapping[str, Any]],
        label: Callable[[str], str],
        text: Callable[[str, Any], str],
        lang: str,
    ) -> None:
        """Rebuild the rows for ``entries`` (field -> entry); hidden when there are none."""
        self._clear()
        if not entries:
            self.setVisible(False)
            return
        if not self.styleSheet():  # set when first needed: a style sheet costs every open
            self.setStyleSheet(_CONFLICT_STYLE)
        self._layout.addWidget(QLabel(tr("elsewhere_conflicts", lang), self))
        empty = tr("elsewhere_empty", lang)
        for name, entry in entries.items():
            row = QHBoxLayout()
            words = tr(
                "elsewhere_item",
                lang,
                label=label(name),
                mine=text(name, entry["mine"]) or empty,
                theirs=text(name, entry["theirs"]) or empty,
            )
            prefix = "elsewhere_"
            if name == DELETED:
                words, prefix = tr("elsewhere_deleted_item", lang), "elsewhere_deleted_"
            item = QLabel(words, self)
            item.setWordWrap(True)
            row.addWidget(item, 1)
            for side in (MINE, THEIRS):
                button = QPushButton(tr(f"{prefix}{side}", lang), self)
                button.setAutoDefault(False)
                button.clicked.connect(functools.partial(self._clicked, name, side))
                self._buttons[(name, side)] = button
                row.addWidget(button)
            self._layout.addLayout(row)
        self.setVisible(True)

    def focus_first(self) -> None:
        if self._buttons:
            next(iter(self._buttons.values())).setFocus()

    def _clicked(self, name: str, side: str, _checked: bool = False) -> None:
        self.chosen.emit(name, side)

    def _clear(self) -> None:
        self._buttons.clear()
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
            elif item.layout() is not None:
                _clear_layout(item.layout())


def _clear_layout(layout: Any) -> None:
    while layout.count():
        item = layout.takeAt(0)
        if item.widget() is not None:
            item.widget().deleteLater()
        elif item.layout() is not None:
            _clear_layout(item.layout())
