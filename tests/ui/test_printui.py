"""The 打印 Print menu in the real main window: each entry renders its job (the preview dialog
is replaced by rendering to a real QPrinter, so nothing blocks), and 扫码 opens the record."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtPrintSupport import QPrinter
from PySide6.QtWidgets import QInputDialog

from app.core import qrpayload, scan
from app.core.store import Store
from app.core.store.browse import Scope
from app.printing import preview
from app.ui import scanner as scanner_mod
from app.ui.printui import install_print_actions
from app.ui.window import MainWindow
from tests.factories import resident

GRID = "330106001001"


@pytest.fixture
def window(qtbot: Any, store: Store) -> MainWindow:
    win = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(win)
    yield win
    win.runner.cancel_all()
    win.runner.wait()


@pytest.fixture
def rendered(monkeypatch: Any, tmp_path: Any) -> list[int]:
    """Replace the preview dialog's exec by rendering to a PDF printer; page counts land here."""
    pages: list[int] = []

    def fake_preview(parent: Any, render_fn: Any, lang: str = "zh") -> bool:
        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
        printer.setOutputFileName(str(tmp_path / f"out{len(pages)}.pdf"))
        render_fn(printer)
        pages.append((tmp_path / f"out{len(pages)}.pdf").stat().st_size)
        return True

    monkeypatch.setattr(preview, "show_print_preview", fake_preview)
    return pages


def _house(store: Store, room: str) -> str:
    data = {
        "house_code": f"H{room}",
        "address_text": f"幸福路8号1幢{room}室",
        "grid": GRID,
        "building": "1幢",
        "room": room,
        "owner_name": "业主",
    }
    return store.save("house", data, status="complete").id


def _select(window: MainWindow, form: str, record_id: str, qtbot: Any) -> None:
    from app.ui.window import FORM_TABS

    window.list_tabs.setCurrentIndex(FORM_TABS.index(form))
    model = window.current_model()
    qtbot.waitUntil(lambda: model.rowCount() > 0 and not model.loading, timeout=10_000)
    row = next(r for r in range(model.rowCount()) if model.record_id(r) == record_id)
    window.current_view().selectRow(row)


def test_preview_household_and_labels_render(
    qtbot: Any, window: MainWindow, store: Store, rendered: list[int], monkeypatch: Any
) -> None:
    house = _house(store, "101")
    _house(store, "102")
    person = store.save("resident", resident(house_ref=house, grid=GRID), status="complete").id
    window.data_changed()
    actions = install_print_actions(window)
    assert [a.objectName() for a in actions.menu.actions()] == [
        "print_preview",
        "print_household",
        "print_labels",
        "print_scan",
    ]
    assert actions.preview_current() is False and actions.message is not None  # nothing selected

    _select(window, "resident", person, qtbot)
    actions.actions["preview"].trigger()
    assert len(rendered) == 1 and rendered[0] > 1000

    _select(window, "house", house, qtbot)
    assert actions.selected_house() == house
    actions.actions["household"].trigger()
    assert len(rendered) == 2

    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(lambda *a, **k: (a[3][0], True)))
    actions.scope = Scope(grids=(GRID,), building="1幢")
    actions.actions["labels"].trigger()
    assert len(rendered) == 3
    actions.scope = Scope(grids=("999999999999",))
    assert actions.labels("A4-24") is False and actions.message is not None  # no houses there


def test_scan_action_opens_the_record(
    qtbot: Any, window: MainWindow, store: Store, monkeypatch: Any
) -> None:
    rid = store.save("resident", resident(), status="complete").id
    actions = install_print_actions(window)
    key = scan.deployment_key(store, create=True)
    code = qrpayload.encode(rid, "resident", store.get(rid).server_version or 1, key)
    monkeypatch.setattr(
        scanner_mod.ScanDialog, "get_code", classmethod(lambda cls, parent=None, lang="zh": code)
    )
    actions.actions["scan"].trigger()
    assert window.doc_tabs.currentWidget().record_id == rid
    actions.scanner.uninstall()
