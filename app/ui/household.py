"""The household view (户): a house, the people living in it and the units in it.

Moving out keeps the person's house link and sets the move-out date: the residence ends,
the record and its history stay, and the view lists current residents unless "show moved
out" is ticked. A household has one head (与户主关系 = 02 户主): making someone head asks
what the previous head's relation becomes, and both saves happen in one transaction.
Questions to the person go through ``ask_*`` methods so tests can answer them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLayout,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import inherit
from app.core.display import status_text
from app.core.store import Store, browse
from app.core.store.browse import HEAD_CODE, RELATION_TABLE, Household, Member
from app.ui.flow import ElidedLabel, FlowLayout, WholeButton, WholeTable
from app.ui.i18n import register, tr
from app.ui.move_out import MoveOut, MoveOutDialog

MOVED_OUT_COLUMN = 5  # the last of hh.cols

register(
    {
        "hh.residents": ("居住人员", "Residents"),
        "hh.units": ("单位", "Units"),
        "hh.show_moved": ("显示已迁出", "Show moved out"),
        "hh.add": ("添加居民", "Add resident"),
        "hh.add_unit": ("添加单位", "Add unit"),
        "hh.open": ("打开", "Open"),
        "hh.open_house": ("打开房屋信息", "Open house record"),
        "hh.head": ("设为户主", "Make head"),
        "hh.relation": ("与户主关系…", "Relation…"),
        "hh.move_out": ("迁出…", "Move out…"),
        "hh.move_back": ("迁回", "Move back"),
        "hh.cols": (
            "姓名|与户主关系|性别|出生日期|状态|迁出日期",
            "Name|Relation|Gender|Born|Status|Moved out",
        ),
        "hh.unit_cols": ("单位名称|状态", "Unit|Status"),
        "hh.old_head": (
            "原户主 {name} 的与户主关系改为：",
            "{name} was the head; their relation becomes:",
        ),
        "hh.ask_relation": ("{name} 与户主关系：", "Relation of {name} to the head:"),
        "hh.move_title": ("迁出", "Move out"),
        "hh.move_label": (
            "{name} 的迁出日期（记录保留为历史）：",
            "Date {name} moved out (the record stays as history):",
        ),
        "hh.move_date": ("迁出日期", "Moved out on"),
        "hh.move_reason": ("迁出原因", "Reason"),
        "hh.move_to": ("去向", "Moved to"),
        "hh.move_to_hint": ("新住址或去向，如：上海市浦东新区", "New address or destination"),
        "hh.move_need_reason": (
            "请选择迁出原因（如：迁往外地、死亡、登记有误）。",
            "Choose why they moved out (e.g. moved away, died, registered by mistake).",
        ),
        "hh.move_need_to": (
            "请填写去向：新住址，或“不详”。",
            'Fill in where they went: the new address, or "unknown".',
        ),
        "hh.no_head": ("未设户主", "no head set"),
        "hh.heads": ("户主：{names}", "Head: {names}"),
        "hh.count": ("现居 {n} 人", "{n} living here"),
        "hh.moved": ("已迁出", "Moved out"),
    }
)
OLD_HEAD_DEFAULT = "97"  # 其他亲属: offered first when the previous head steps down


class HouseholdView(QWidget):
    """One house's household; writes go through ``Store.save`` with the worker as author."""

    openRecordRequested = Signal(str)
    newRecordRequested = Signal(str, dict)  # form id, prefill
    changed = Signal(str)  # a record this view saved

    def __init__(
        self,
        store: Store,
        house_id: str,
        *,
        lang: str = "zh",
        author: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("householdView")
        self.store, self.lang, self.author = store, lang, author
        self.fields = browse.household_fields(store.formset)
        self.house_id = house_id
        self.household: Household | None = None
        self._build()
        self.retranslate(lang)
        self.set_house(house_id)

    # -- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.title_label = ElidedLabel(self)  # one line; "…1栋2单元302室" when narrow
        self.title_label.setObjectName("householdTitle")
        bold = self.title_label.font()
        bold.setBold(True)
        self.title_label.setFont(bold)
        self.info_label = ElidedLabel(self, Qt.TextElideMode.ElideRight)
        self.open_house_button = WholeButton(self)
        self.open_house_button.clicked.connect(lambda: self.openRecordRequested.emit(self.house_id))
        top = QHBoxLayout()
        top.addWidget(self.title_label, 1)
        top.addWidget(self.open_house_button)
        layout.addLayout(top)
        self.residents_label = QLabel(self)
        self.show_moved = QCheckBox(self)
        self.show_moved.toggled.connect(lambda _on: self.refresh())
        row = QHBoxLayout()  # one row for 居住人员, the grid/head/count line and the filter
        row.addWidget(self.residents_label)
        row.addWidget(self.info_label, 1)
        row.addWidget(self.show_moved)
        layout.addLayout(row)
        self.members_table = self._table(6)
        self.members_table.itemActivated.connect(lambda _item: self.open_selected())
        self.members_table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.members_table, 3)
        buttons = FlowLayout()  # wraps rather than cutting the buttons in a narrow pane
        self.add_button = self._button(buttons, self.add_resident)
        self.open_button = self._button(buttons, self.open_selected)
        self.head_button = self._button(buttons, self._make_selected_head)
        self.relation_button = self._button(buttons, self._ask_selected_relation)
        self.move_out_button = self._button(buttons, self._move_selected_out)
        self.move_back_button = self._button(buttons, self._move_selected_back)
        layout.addLayout(buttons)
        self.units_label = QLabel(self)
        unit_row = QHBoxLayout()  # 单位 and its 添加单位 button on one line
        unit_row.addWidget(self.units_label, 1)
        layout.addLayout(unit_row)
        self.units_table = self._table(2)
        self.units_table.whole_rows = 1  # a house rarely has more; they scroll
        self.units_table.itemActivated.connect(self._open_unit)
        layout.addWidget(self.units_table, 0)
        self.add_unit_button = WholeButton(self)
        self.add_unit_button.clicked.connect(lambda _checked=False: self.add_unit())
        unit_row.addWidget(self.add_unit_button)

    def _table(self, columns: int) -> QTableWidget:
        table = WholeTable(0, columns, self)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        return table

    def _button(self, layout: QLayout, slot: Any) -> QPushButton:
        button = WholeButton(self)
        button.clicked.connect(lambda _checked=False: slot())
        layout.addWidget(button)
        return button

    def retranslate(self, lang: str) -> None:
        """Show every label in ``lang`` (zh or en)."""
        self.lang = lang
        self.open_house_button.setText(tr("hh.open_house", lang))
        self.residents_label.setText(tr("hh.residents", lang))
        self.show_moved.setText(tr("hh.show_moved", lang))
        self.units_label.setText(tr("hh.units", lang))
        for button, key in (
            (self.add_button, "add"),
            (self.open_button, "open"),
            (self.head_button, "head"),
            (self.relation_button, "relation"),
            (self.move_out_button, "move_out"),
            (self.move_back_button, "move_back"),
            (self.add_unit_button, "add_unit"),
        ):
            button.setText(tr(f"hh.{key}", lang))
        self.members_table.setHorizontalHeaderLabels(tr("hh.cols", lang).split("|"))
        self.units_table.setHorizontalHeaderLabels(tr("hh.unit_cols", lang).split("|"))
        if self.household is not None:
            self._fill()

    # -- data ------------------------------------------------------------------------------

    def set_house(self, house_id: str) -> None:
        """Show another house (the view is reused as the tree selection moves)."""
        self.house_id = house_id
        self.refresh()

    def refresh(self) -> None:
        """Read the household again (after a save here or in an editor)."""
        self.household = browse.household(
            self.store, self.house_id, include_moved_out=self.show_moved.isChecked()
        )
        self._fill()

    def _fill(self) -> None:
        hh = self.household
        assert hh is not None
        lang, formset = self.lang, self.store.formset
        grid_name = browse.grid_names(self.store).get(hh.house.grid or "", hh.house.grid or "")
        self.title_label.setText(hh.house.title)
        current = [m for m in hh.members if not m.moved_out_on]
        heads = ", ".join(m.title for m in hh.heads) or tr("hh.no_head", lang)
        self.info_label.setText(
            f"{grid_name}  ·  {tr('hh.heads', lang, names=heads)}  ·  {tr('hh.count', lang, n=len(current))}"
        )
        relation = formset.table(RELATION_TABLE)
        gender = formset.table("gender")
        selected = self.selected_member()
        self.members_table.setRowCount(len(hh.members))
        for row, m in enumerate(hh.members):
            cells = (
                m.title,
                relation.label(m.relation, lang) if m.relation in relation else (m.relation or ""),
                gender.label(m.gender, lang) if m.gender in gender else "",
                m.birth_date or "",
                status_text(m.status, lang),
                m.moved_out_on or "",
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, m.id)
                if m.moved_out_on:
                    item.setForeground(Qt.GlobalColor.gray)
                if m.is_head and col == 0:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.members_table.setItem(row, col, item)
        if selected is not None:
            self.select_member(selected.id)
        self.units_table.setRowCount(len(hh.units))
        for row, unit in enumerate(hh.units):
            for col, text in enumerate((unit.title, status_text(unit.status, lang))):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, unit.id)
                self.units_table.setItem(row, col, item)
        # 迁出日期 is blank for everyone shown unless moved-out people are: no empty column
        self.members_table.setColumnHidden(MOVED_OUT_COLUMN, not self.show_moved.isChecked())
        for table in (self.members_table, self.units_table):
            table.updateGeometry()  # WholeTable's minimum follows its rows and columns
        self._update_buttons()

    def member_ids(self) -> list[str]:
        """Ids of the people listed (current residents, plus moved out when shown)."""
        return [m.id for m in self.household.members] if self.household else []

    def member(self, record_id: str) -> Member | None:
        return (
            next((m for m in self.household.members if m.id == record_id), None)
            if self.household
            else None
        )

    def selected_member(self) -> Member | None:
        rows = self.members_table.selectionModel().selectedRows() if self.household else []
        if not rows:
            return None
        return self.member(str(rows[0].data(Qt.ItemDataRole.UserRole)))

    def select_member(self, record_id: str) -> None:
        for row in range(self.members_table.rowCount()):
            item = self.members_table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == record_id:
                self.members_table.selectRow(row)
                return

    def _update_buttons(self) -> None:
        m = self.selected_member()
        for button in (self.open_button, self.head_button, self.relation_button):
            button.setEnabled(m is not None)
        self.head_button.setEnabled(
            m is not None
            and not m.is_head
            and not m.moved_out_on
            and self.fields.relation is not None
        )
        self.move_out_button.setEnabled(
            m is not None and not m.moved_out_on and bool(self.fields.moved_out)
        )
        self.move_back_button.setEnabled(m is not None and bool(m.moved_out_on))

    # -- actions ---------------------------------------------------------------------------

    def prefill(self) -> dict[str, Any]:
        """Values a new resident of this house starts with: house link, grid, address and
        area (``inherit.from_house``) and, when the household has a head, the register's
        number and the head's ID number, name and phone (``inherit.from_head``)."""
        house = self.household.house if self.household else self.store.get(self.house_id)
        assert house is not None
        resident = self.store.formset.form(browse.RESIDENT_FORM)
        members = self.household.members if self.household else []
        records = [r for r in (self.store.get(m.id) for m in members) if r is not None]
        values = inherit.from_house(self.store.formset, resident, house, records)
        head = next((r for m, r in zip(members, records, strict=False) if m.is_head), None)
        if head is not None:
            values.update(inherit.from_head(resident, head))
        return values

    def add_resident(self) -> None:
        """Ask the window for a new resident editor pre-filled with this house."""
        self.newRecordRequested.emit(browse.RESIDENT_FORM, self.prefill())

    def add_unit(self) -> None:
        """Ask for a new unit editor pre-filled with this house, its grid and address."""
        unit = self.store.formset.form(browse.UNIT_FORM)
        house = self.household.house if self.household else None
        if house is None or browse.house_ref_field(unit) is None:
            return
        self.newRecordRequested.emit(
            browse.UNIT_FORM, inherit.from_house(self.store.formset, unit, house)
        )

    def open_selected(self) -> None:
        m = self.selected_member()
        if m is not None:
            self.openRecordRequested.emit(m.id)

    def _open_unit(self, item: QTableWidgetItem) -> None:
        self.openRecordRequested.emit(str(item.data(Qt.ItemDataRole.UserRole)))

    def _save(self, record_id: str, changes: dict[str, Any]) -> None:
        """Merge ``changes`` into a stored record, keeping its status (None clears a field)."""
        record = self.store.get(record_id)
        if record is None:
            raise KeyError(record_id)
        data = {**record.data, **changes}
        self.store.save(
            record.form, data, record_id=record_id, status=record.status, author=self.author
        )

    def set_head(self, record_id: str) -> bool:
        """Make a resident the head; a current head's relation changes first (asked).

        Returns False when the person cancelled the question about the previous head.
        """
        rel = self.fields.relation
        if rel is None:
            return False
        old_heads = [
            m for m in (self.household.heads if self.household else []) if m.id != record_id
        ]
        new_relations: dict[str, str] = {}
        for old in old_heads:
            code = self.ask_old_head_relation(old)
            if code is None:
                return False
            new_relations[old.id] = code
        with self.store.transaction():
            for old_id, code in new_relations.items():
                self._save(old_id, {rel: code})
            self._save(record_id, {rel: HEAD_CODE})
        self.refresh()
        for changed in (*new_relations, record_id):
            self.changed.emit(changed)
        return True

    def set_relation(self, record_id: str, code: str) -> None:
        """Set someone's 与户主关系; choosing 户主 goes through ``set_head``."""
        if code == HEAD_CODE:
            self.set_head(record_id)
            return
        if self.fields.relation is None:
            return
        self._save(record_id, {self.fields.relation: code})
        self.refresh()
        self.changed.emit(record_id)

    def move_out(self, record_id: str, on: dt.date | MoveOut | None = None) -> None:
        """End a residence: the date, reason and destination; the house link and the history
        stay. The selection stays on the row it was on (the next member), not the top."""
        if not self.fields.moved_out:
            return
        move = on if isinstance(on, MoveOut) else MoveOut(on or dt.date.today())
        changes: dict[str, Any] = {self.fields.moved_out: move.on.isoformat()}
        if self.fields.moved_out_reason and move.reason:
            changes[self.fields.moved_out_reason] = move.reason
        if self.fields.moved_out_to and move.destination:
            changes[self.fields.moved_out_to] = move.destination
        row = self.members_table.currentRow()
        self._save(record_id, changes)
        self.refresh()
        self._select_row_near(row, record_id)
        self.changed.emit(record_id)

    def _select_row_near(self, row: int, moved_id: str) -> None:
        """Keep the selection where it was: the moved person if still listed, else the
        person now in that row (the one after them), else the last."""
        if moved_id in self.member_ids():
            self.select_member(moved_id)
        elif self.members_table.rowCount():
            self.members_table.selectRow(min(max(row, 0), self.members_table.rowCount() - 1))

    def move_back(self, record_id: str) -> None:
        """Undo a move-out (a mistake or a return): clear the date, reason and destination."""
        if not self.fields.moved_out:
            return
        fields = (self.fields.moved_out, self.fields.moved_out_reason, self.fields.moved_out_to)
        self._save(record_id, {f: None for f in fields if f})
        self.refresh()
        self.select_member(record_id)
        self.changed.emit(record_id)

    # -- questions (tests replace these) ---------------------------------------------------

    def _relation_items(self, exclude_head: bool) -> list[tuple[str, str]]:
        table = self.store.formset.table(RELATION_TABLE)
        return [
            (c.code, f"{c.code} {c.label(self.lang)}")
            for c in table.codes.values()
            if not (exclude_head and c.code in browse.HEAD_CODES)
        ]

    def _choose_relation(self, prompt: str, default: str | None, exclude_head: bool) -> str | None:
        items = self._relation_items(exclude_head)
        codes = [c for c, _ in items]
        current = codes.index(default) if default in codes else 0
        text, ok = QInputDialog.getItem(
            self,
            tr("hh.relation", self.lang),
            prompt,
            [label for _, label in items],
            current,
            False,
        )
        return items[[label for _, label in items].index(text)][0] if ok and text else None

    def ask_old_head_relation(self, old: Member) -> str | None:
        """What the previous head's relation becomes (None: cancel making a new head)."""
        return self._choose_relation(
            tr("hh.old_head", self.lang, name=old.title), OLD_HEAD_DEFAULT, True
        )

    def ask_relation(self, member: Member) -> str | None:
        return self._choose_relation(
            tr("hh.ask_relation", self.lang, name=member.title), member.relation, False
        )

    def move_out_reasons(self) -> list[tuple[str, str]]:
        """(code, label) of the reason field's table; empty when the form has none."""
        reason = self.fields.moved_out_reason
        fld = self.store.formset.form("resident").fields.get(reason or "")
        if fld is None or not fld.codes:
            return []
        table = self.store.formset.table(fld.codes)
        return [(c.code, c.label(self.lang)) for c in table.codes.values()]

    def ask_move_out_date(self, member: Member) -> MoveOut | None:
        dialog = MoveOutDialog(member.title, self.lang, self, self.move_out_reasons())
        return dialog.move_out() if dialog.exec() == QDialog.DialogCode.Accepted else None

    def _make_selected_head(self) -> None:
        m = self.selected_member()
        if m is not None:
            self.set_head(m.id)

    def _ask_selected_relation(self) -> None:
        m = self.selected_member()
        if m is not None and (code := self.ask_relation(m)) is not None:
            self.set_relation(m.id, code)

    def _move_selected_out(self) -> None:
        m = self.selected_member()
        if m is not None and (on := self.ask_move_out_date(m)) is not None:
            self.move_out(m.id, on)

    def _move_selected_back(self) -> None:
        m = self.selected_member()
        if m is not None:
            self.move_back(m.id)
