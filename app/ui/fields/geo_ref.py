"""Coordinates and reference (link to another record) field widgets.

Both hold structured values rather than text: a point with its datum, a record id.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QRegularExpression,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QRegularExpressionValidator,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QLineEdit,
    QToolButton,
    QWidget,
)

from app.core.forms import Field, FormSet
from app.core.records import is_empty
from app.ui.fields.base import _TITLE_ROLE, CODE_ROLE, FieldWidget
from app.ui.i18n import tr

# --------------------------------------------------------------------------- coordinates


class CoordinatesField(FieldWidget):
    """coordinates: longitude and latitude boxes (WGS84), plus a box that takes a pasted point
    ('116.39, 39.90', DMS, 东经/北纬) from GPS, 高德/腾讯 (GCJ-02) or 百度 (BD-09) and converts it."""

    compound = True

    DATUMS = ("wgs84", "gcj02", "bd09")

    def __init__(
        self, field: Field, formset: FormSet, lang: str = "zh", parent: QWidget | None = None
    ) -> None:
        super().__init__(field, formset, lang, parent)
        number = QRegularExpressionValidator(
            QRegularExpression(r"-?[0-9]{0,3}([.][0-9]{0,9})?"), self
        )
        self.lon, self.lat = QLineEdit(self), QLineEdit(self)
        for edit in (self.lon, self.lat):
            edit.setValidator(number)
            edit.setMaximumWidth(140)
            edit.textChanged.connect(self.changed)
            self._add(edit)
            self._watch(edit)
        self.paste = QLineEdit(self)
        self.paste.textChanged.connect(self.changed)
        self._add(self.paste, 1)
        self._watch(self.paste)
        self.datum = QComboBox(self)
        self.datum.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.datum.addItems([tr(f"datum_{d}", lang) for d in self.DATUMS])
        self._add(self.datum)
        from app.ui.position import PositionButton  # hides itself when there is no source

        self.locate = PositionButton(self, lang)
        self.locate.position.connect(self.set_position)
        self._add(self.locate)
        self._retranslate()

    def set_position(self, point: object) -> None:
        """Fill from a position source (WGS84 ``LonLat``): "use my position"."""
        self.paste.clear()
        self.datum.setCurrentIndex(self.DATUMS.index("wgs84"))
        self.lon.setText(f"{point.lon:.7f}")  # type: ignore[attr-defined]
        self.lat.setText(f"{point.lat:.7f}")  # type: ignore[attr-defined]

    def value(self) -> object:
        pasted = self.paste.text().strip()
        if pasted:
            return pasted
        lon, lat = self.lon.text().strip(), self.lat.text().strip()
        if not lon and not lat:
            return None
        try:
            return {"lon": float(lon), "lat": float(lat)}
        except ValueError:
            return f"{lon},{lat}"

    def set_value(self, value: object) -> None:
        self.paste.clear()
        self.lon.clear()
        self.lat.clear()
        if isinstance(value, dict) and "lon" in value and "lat" in value:
            self.lon.setText(_fmt_degree(value["lon"]))
            self.lat.setText(_fmt_degree(value["lat"]))
        elif not is_empty(value):
            self.paste.setText(str(value))
            self._apply_paste()

    def focus_target(self) -> QWidget:
        return self.lon

    def set_datum(self, datum: str) -> None:
        """Where pasted points come from: 'wgs84', 'gcj02' (高德/腾讯) or 'bd09' (百度)."""
        self.datum.setCurrentIndex(self.DATUMS.index(datum))

    def _apply_paste(self) -> bool:
        from app.core import geo  # pulls in pyproj: only when a point is pasted

        text = self.paste.text().strip()
        if not text:
            return False
        try:
            point = geo.to_wgs(geo.parse_coordinates(text), self.DATUMS[self.datum.currentIndex()])
            point = geo.check_range(point)
        except geo.GeoError:
            return False  # the text stays; validation says what is wrong
        self.lon.setText(_fmt_degree(point.lon))
        self.lat.setText(_fmt_degree(point.lat))
        self.paste.clear()
        return True

    def _commit(self) -> None:
        self._apply_paste()

    def _retranslate(self) -> None:
        self.lon.setPlaceholderText(tr("lon", self.lang))
        self.lat.setPlaceholderText(tr("lat", self.lang))
        self.paste.setPlaceholderText(tr("coords_paste", self.lang))
        self.paste.setToolTip(self._help_text())
        for i, datum in enumerate(self.DATUMS):
            self.datum.setItemText(i, tr(f"datum_{datum}", self.lang))
        self.datum.setToolTip(tr("coords_datum_tip", self.lang))


def _fmt_degree(value: object) -> str:
    try:
        return f"{float(value):.7f}".rstrip("0").rstrip(".")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)


# --------------------------------------------------------------------------- references


class ReferenceField(FieldWidget):
    """reference: shows the referenced record's title; typing searches the store (name,
    pinyin initials, address, number tails) among records of the target form; 新建 asks the
    editor to create one (``createRequested(target_form)``)."""

    compound = True

    createRequested = Signal(str)

    def __init__(
        self,
        field: Field,
        formset: FormSet,
        lang: str = "zh",
        parent: QWidget | None = None,
        store: Any = None,
    ) -> None:
        super().__init__(field, formset, lang, parent)
        self.store = store
        self._value: str | None = None
        self._title = ""
        self.edit = QLineEdit(self)
        self._add(self.edit, 1)
        self._watch(self.edit)
        self.create_button = QToolButton(self)
        self.create_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.create_button.clicked.connect(lambda: self.createRequested.emit(field.target or ""))
        self._add(self.create_button)
        self._completer: QCompleter | None = None  # made on the first search
        self._results = QStandardItemModel(self)
        self.edit.textEdited.connect(self.search)
        self._retranslate()

    @property
    def completer(self) -> QCompleter:
        """The search popup's completer (made on first use: a form opens without one)."""
        if self._completer is None:
            self._completer = QCompleter(self._results, self)
            self._completer.setWidget(self.edit)
            self._completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
            self._completer.activated[QModelIndex].connect(self._picked)
        return self._completer

    def value(self) -> object:
        return self._value

    def set_value(self, value: object) -> None:
        record_id = None if is_empty(value) else str(value)
        self._value = record_id
        self._title = self._title_of(record_id)
        self.edit.setText(self._title)
        self.changed.emit()

    def focus_target(self) -> QWidget:
        return self.edit

    def title(self) -> str:
        return self._title

    def search(self, text: str) -> int:
        """Fill the popup with records of the target form matching ``text``; returns how many."""
        self._results.clear()
        found = (
            self.store.search(text, form=self.field.target, limit=20)
            if self.store and text.strip()
            else []
        )
        for summary in found:
            item = QStandardItem(f"{summary.title}  ·  {summary.grid or ''}".rstrip(" ·"))
            item.setData(summary.id, CODE_ROLE)
            item.setData(summary.title, _TITLE_ROLE)
            self._results.appendRow(item)
        if found:
            self.completer.complete()
        else:
            self.completer.popup().hide()
        return len(found)

    def _picked(self, index: QModelIndex) -> None:
        record_id = index.data(CODE_ROLE)
        if record_id:
            self.set_value(str(record_id))
            self._emit_committed()

    def _title_of(self, record_id: str | None) -> str:
        if record_id is None:
            return ""
        record = self.store.get(record_id) if self.store is not None else None
        if record is None or record.deleted:
            return f"{record_id} {tr('ref_missing', self.lang)}"
        return record.title or record_id

    def _commit(self) -> None:
        if self._completer is not None:
            self._completer.popup().hide()
        text = self.edit.text().strip()
        if text == self._title:
            return
        if not text:
            self.set_value(None)
            return
        if self.search(text) == 1:  # one match: that is the one meant
            self.completer.popup().hide()
            self.set_value(self._results.item(0).data(CODE_ROLE))
            return
        self.completer.popup().hide()
        self.edit.setText(self._title)  # search text is not data: show the current choice again

    def _retranslate(self) -> None:
        self.edit.setPlaceholderText(tr("ref_placeholder", self.lang))
        self.edit.setToolTip(self._help_text())
        self.create_button.setText(tr("ref_create", self.lang))
        if self._value is not None:
            self._title = self._title_of(self._value)
            self.edit.setText(self._title)
