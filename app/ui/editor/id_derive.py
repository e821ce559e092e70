"""What the editor fills in for the worker: what an ID number gives (birth date, gender,
户籍地), kept right when the number is corrected, and what a picked house gives.

Why remember what the number last said: a field still holding that value was filled from it
(or agreed with it), so a corrected number may replace it silently; a field holding anything
else was typed, and only the worker may decide to replace it (asked once per correction).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtWidgets import QMessageBox, QWidget

from app.core import inherit, rules
from app.core.display import display_value
from app.core.forms import Form, FormSet
from app.core.records import is_empty
from app.core.store import Store
from app.ui.i18n import register, tr

register(
    {
        "rederive.title": ("身份号码已更正", "ID number corrected"),
        "rederive.ask": (
            "按更正后的身份号码修改下列已填写的内容吗？\n{changes}",
            "Change these filled-in values to what the corrected ID number says?\n{changes}",
        ),
    }
)


class IdDerivations:
    """The values the form's ID numbers last derived, and what a new number changes."""

    def __init__(self, form: Form, formset: FormSet) -> None:
        self.form, self.formset = form, formset
        self._said: dict[str, Any] = {}

    def remember(self, data: Mapping[str, Any]) -> None:
        """What the numbers in ``data`` say (a record is loaded, or a derivation applied);
        a number that says nothing (half typed, mistyped) does not erase the last one's."""
        said = rules.id_derivations(self.form, data, formset=self.formset)
        if said:
            self._said = said

    def changes(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(fields to fill or re-derive silently, typed fields a corrected number disagrees
        with). A first number leaves typed values alone: the check flags a disagreement."""
        new = rules.id_derivations(self.form, data, formset=self.formset)
        silent, typed = {}, {}
        for target, value in new.items():
            current = data.get(target)
            if current == value:
                continue
            if is_empty(current) or current == self._said.get(target):
                silent[target] = value
            elif self._said:
                typed[target] = value
        return silent, typed

    def fill(
        self, data: Mapping[str, Any], ask: Callable[[str, str], bool], lang: str
    ) -> dict[str, Any]:
        """The values to set now: derived ones, and typed ones only if ``ask`` says yes."""
        silent, typed = self.changes(data)
        if typed and ask(self.describe(data, typed, lang), lang):
            silent.update(typed)
        return silent

    def describe(self, data: Mapping[str, Any], typed: Mapping[str, Any], lang: str) -> str:
        """One line per typed field: label, what it holds, what the number says."""
        lines = []
        for target, value in typed.items():
            fld = self.form.fields[target]
            old = display_value(self.formset, fld, data.get(target), lang)
            new = display_value(self.formset, fld, value, lang)
            lines.append(f"{fld.label.get(lang)}：{old} → {new}")
        return "\n".join(lines)


def ask_rederive(parent: QWidget, text: str, lang: str) -> bool:
    """Yes/No: replace typed values with what the corrected number says."""
    answer = QMessageBox.question(
        parent,
        tr("rederive.title", lang),
        tr("rederive.ask", lang, changes=text),
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.Yes,
    )
    return answer == QMessageBox.StandardButton.Yes


def house_values(
    store: Store, form: Form, house_id: str, current: Mapping[str, Any]
) -> dict[str, Any]:
    """A picked house's grid, address and area for the fields still empty."""
    house = store.get(house_id)
    if house is None or house.deleted:
        return {}
    return inherit.fill_empty(current, inherit.from_house(store.formset, form, house))
