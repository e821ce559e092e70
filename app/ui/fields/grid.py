"""The field that plays a form's ``grid`` role: grids by name, the code stored.

Why: the grid field is text in the form files, so a plain line showed "330106001001-01", a
code no worker reads. This drop-down lists the device's grids as "第一网格（幸福社区）" and
stores the code; a code this device has no name for is kept and shown as it is. It stays
editable: typing a grid's code (or its name) and Enter works as on the plain line.
"""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QWidget

from app.core.forms import Field, FormSet
from app.core.records import is_empty
from app.core.store import Store
from app.ui.fields.base import FieldWidget


class GridField(FieldWidget):
    """A drop-down of the store's grids by name; ``value()`` is the grid code."""

    def __init__(
        self,
        field: Field,
        formset: FormSet,
        store: Store,
        lang: str = "zh",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(field, formset, lang, parent)
        self.combo = QComboBox(self)
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.combo.addItem("", None)
        for grid in store.grids(boundaries=False):  # names only: no polygons to parse
            self.combo.addItem(f"{grid.name}（{grid.community_name}）", grid.code)
            self.combo.setItemData(self.combo.count() - 1, grid.code, 3)  # tooltip: the code
        self._add(self.combo)
        self._watch(self.combo)
        self.combo.currentIndexChanged.connect(self.changed)
        self.combo.editTextChanged.connect(self.changed)

    def value(self) -> object:
        """The chosen grid's code; typed text: the grid it names, else the code as typed."""
        text = self.combo.currentText().strip()
        if not text:
            return None
        for index in range(1, self.combo.count()):
            shown, code = self.combo.itemText(index), self.combo.itemData(index)
            if text in (shown, code) or shown.startswith(f"{text}（"):
                return code
        return text

    def set_value(self, value: object) -> None:
        if is_empty(value):
            self.combo.setCurrentIndex(0)
            return
        index = self.combo.findData(str(value))
        if index < 0:  # a grid this device has no name for: keep it, shown as its code
            self.combo.addItem(str(value), str(value))
            index = self.combo.count() - 1
        self.combo.setCurrentIndex(index)

    def focus_target(self) -> QWidget:
        return self.combo


__all__ = ["GridField"]
