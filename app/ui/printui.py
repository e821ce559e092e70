"""The 打印 Print menu: preview the current record, print a household, door-plate labels for
the navigation's grid or building, and 扫码 Scan; also installs the keyboard-scanner filter.

Why a module apart from the window: printing and scanning are done components
(app/printing, app/ui/scanner.py); this only decides *what* to print from what the person is
looking at (the selected list row or open editor, the selected house, the tree's scope).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QMessageBox

from app.core.messages import Catalog
from app.core.store.browse import Scope
from app.printing import preview
from app.printing.labels import DEFAULT_STOCK, STOCKS
from app.printing.select import SelectionError, select_houses, select_records

_TEXT = {
    "menu": ("打印", "Print"),
    "preview": ("打印预览当前记录…", "Print preview of the current record…"),
    "household": ("打印本户…", "Print this household…"),
    "labels": ("门牌标签…", "Door-plate labels…"),
    "scan": ("扫码…", "Scan…"),
    "stock": ("标签纸规格", "Label stock"),
    "stock_prompt": ("选择标签纸：", "Choose the label stock:"),
    "no_record": ("请先在列表中选中一条记录。", "Select a record in a list first."),
    "no_house": (
        "请先选中一处房屋（房屋列表或本户视图）。",
        "Select a house first (house list or household view).",
    ),
}

HOUSE_FORM = "house"
RESIDENT_FORM = "resident"


_T = Catalog(_TEXT)


class PrintActions:
    """The menu's actions and what they act on; ``show`` previews (tests replace it)."""

    def __init__(self, window: Any) -> None:
        self.window = window
        self.scope = Scope()
        self.show: Callable[[Any, Any, str], bool] = preview.show_print_preview
        self.message: QMessageBox | None = None
        window.navigation.scopeSelected.connect(self._on_scope)

    @property
    def lang(self) -> str:
        return str(self.window.lang)

    def _on_scope(self, scope: Scope) -> None:
        self.scope = scope

    # -- what is selected ------------------------------------------------------------------

    def selected_record(self) -> str | None:
        """The open editor's record, else the current list's selected row."""
        tabs = getattr(self.window, "doc_tabs", None)
        editor = tabs.currentWidget() if tabs is not None and tabs.isVisible() else None
        rid = getattr(editor, "record_id", None)
        if isinstance(rid, str) and rid:
            return rid
        view = self.window.current_view()
        rows = view.selectionModel().selectedRows() if view.selectionModel() else []
        if rows:
            return str(view.model().record_id(rows[0].row()))
        return None

    def selected_house(self) -> str | None:
        """The household view's house, else the selected record if it is a house (or the
        house a selected resident lives in)."""
        household = getattr(self.window, "household_view", None)
        house = getattr(household, "house_id", None)
        if isinstance(house, str) and house:
            return house
        rid = self.selected_record()
        record = self.window.store.get(rid) if rid else None
        if record is None:
            return None
        if record.form == HOUSE_FORM:
            return record.id
        ref = self.window.store.formset.form(record.form).roles.house
        value = record.data.get(ref) if ref else None
        return str(value) if value else None

    # -- actions ---------------------------------------------------------------------------

    def preview_current(self) -> bool:
        rid = self.selected_record()
        if rid is None:
            return self._tell(_T.text("no_record", self.lang))
        return self._preview(lambda: [rid])

    def print_household(self) -> bool:
        house = self.selected_house()
        if house is None:
            return self._tell(_T.text("no_house", self.lang))
        store = self.window.store
        return self._preview(lambda: select_records(store, RESIDENT_FORM, house=house))

    def labels(self, stock_id: str | None = None) -> bool:
        stock_id = stock_id or self.ask_stock()
        if stock_id is None:
            return False
        store, scope = self.window.store, self.scope

        def houses() -> list[str]:
            if scope.grids is None:
                return select_houses(store, everything=True)
            if scope.building is not None:
                return select_houses(store, grid=scope.grid, building=scope.building)
            out: list[str] = []
            for grid in scope.grids:
                try:
                    out += select_houses(store, grid=grid)
                except SelectionError:
                    continue
            return out or select_houses(store)  # none: the selection's own message

        try:
            house_ids = houses()
        except SelectionError as exc:
            return self._tell(exc.message(self.lang))
        fn = preview.labels_render_fn(store, house_ids, stock_id)
        if not preview.fonts_ok(self.window, self.lang):
            return False
        return bool(self.show(self.window, fn, self.lang))

    def ask_stock(self) -> str | None:
        ids = list(STOCKS)
        names = [STOCKS[i].describe(self.lang) for i in ids]
        current = ids.index(DEFAULT_STOCK) if DEFAULT_STOCK in ids else 0
        text, ok = QInputDialog.getItem(
            self.window,
            _T.text("stock", self.lang),
            _T.text("stock_prompt", self.lang),
            names,
            current,
            False,
        )
        return ids[names.index(text)] if ok and text in names else None

    def _preview(self, ids: Callable[[], list[str]]) -> bool:
        try:
            record_ids = ids()
            fn = preview.sheets_render_fn(self.window.store, record_ids, self.lang)
        except SelectionError as exc:
            return self._tell(exc.message(self.lang))
        if not preview.fonts_ok(self.window, self.lang):
            return False
        return bool(self.show(self.window, fn, self.lang))

    def _tell(self, text: str) -> bool:
        box = QMessageBox(
            QMessageBox.Icon.Information, _T.text("menu", self.lang), text, parent=self.window
        )
        box.setObjectName("printMessage")
        box.open()
        self.message = box
        return False


def install_print_actions(window: Any) -> PrintActions:
    """Add the 打印 Print menu and the scanner to ``window``; returns the actions object
    (``.scanner``, ``.scan_ctl`` from ``install_scanning``)."""
    from app.ui.scanner import install_scanning

    actions = PrintActions(window)
    lang = str(window.lang)
    menu = window.menuBar().addMenu(f"{_T.text('menu', 'zh')} {_T.text('menu', 'en')}")
    actions.menu = menu  # type: ignore[attr-defined]
    actions.scanner, actions.scan_ctl = install_scanning(  # type: ignore[attr-defined]
        window, lambda: window.store, window.open_record, lambda: str(window.lang)
    )
    made = {}
    for key, slot in (
        ("preview", actions.preview_current),
        ("household", actions.print_household),
        ("labels", actions.labels),
        ("scan", actions.scan_ctl.ask),  # type: ignore[attr-defined]
    ):
        action = QAction(_T.text(key, lang), window)
        action.setObjectName(f"print_{key}")
        action.triggered.connect(lambda _c=False, s=slot: s())
        menu.addAction(action)
        made[key] = action
    actions.actions = made  # type: ignore[attr-defined]
    return actions


__all__ = ["PrintActions", "install_print_actions"]
