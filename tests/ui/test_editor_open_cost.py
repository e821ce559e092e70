"""What opening an editor does not pay for (issue 17: resident form open <= 1.5x a bare form),
and that the behaviour those savings replaced still holds."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QShortcut
from PySide6.QtWidgets import QApplication, QComboBox

from app.core.store import Store
from app.ui.editor import RecordEditor
from app.ui.fields import make_field_widget


@pytest.fixture
def open_editor(qtbot, store: Store) -> Iterator[Callable[..., RecordEditor]]:
    def make(form: str = "resident") -> RecordEditor:
        editor = RecordEditor(store, form, author="网格员甲")
        editor.confirm_close = lambda _e: "discard"
        qtbot.addWidget(editor)
        editor.resize(900, 800)
        editor.show()
        qtbot.waitExposed(editor)
        editor.activateWindow()
        qtbot.waitUntil(lambda: editor.isAncestorOf(QApplication.focusWidget()))
        return editor

    yield make


def test_editor_keys_need_no_shortcut_objects(qtbot, open_editor) -> None:
    """Ctrl+S, Ctrl+Enter and Escape reach the editor from a drop-down, a line edit and a
    button, with no QShortcut made per open."""
    editor = open_editor()
    assert editor.findChildren(QShortcut) == []
    combo = editor.widget("population_type").focus_target()
    assert isinstance(combo, QComboBox) and QApplication.focusWidget() is combo
    with qtbot.waitSignal(editor.saved):
        qtbot.keyClick(combo, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    editor.set_value("name", "李四")
    edit = editor.widget("name").focus_target()
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert "需要改正" in editor.status_label.text()  # Complete ran, and errors blocked it
    assert not editor.is_closed()
    editor.save_button.setFocus()
    with qtbot.waitSignal(editor.closed):
        qtbot.keyClick(editor.save_button, Qt.Key.Key_Escape)
    assert editor.is_closed()


def test_an_unfilled_dropdown_reports_one_change_per_value_shown(qtbot, formset) -> None:
    """Showing a value in a drop-down not filled yet (the cursor alone no longer fills it)
    is one change: the blank first item it adds is not reported as a change of its own."""
    field = formset.form("resident").fields["population_type"]
    choice = make_field_widget(field, formset, "zh")
    qtbot.addWidget(choice)
    seen: list[object] = []
    choice.changed.connect(lambda: seen.append(choice.value()))
    choice.set_value("2")
    assert seen == ["2"] and choice.combo.count() == 2  # the blank and the value, no more


def test_the_conflict_panel_gets_its_style_sheet_when_it_first_shows(qtbot, open_editor) -> None:
    editor = open_editor()
    panel = editor.conflict_panel
    assert panel.styleSheet() == "" and not panel.isVisibleTo(editor)
    entry = {"mine": "甲", "theirs": "乙"}
    panel.show_conflicts({"name": entry}, str, lambda _f, v: str(v), "zh")
    assert "conflictBanner" in panel.styleSheet() and panel.isVisibleTo(editor)


def test_a_record_without_a_grid_reads_no_grid_boundaries(qtbot, open_editor, monkeypatch) -> None:
    """The location warning needs a boundary only for a record in a grid: checking a new
    record's values (as the editor does when a field is left, and on Complete) reads none,
    while a record with a grid still gets the warning (test_editor: a point outside the grid)."""
    reads: list[str] = []
    real = RecordEditor._grid_boundary

    def counted(self: RecordEditor, code: str) -> list[tuple[float, float]]:
        reads.append(code)
        return real(self, code)

    monkeypatch.setattr(RecordEditor, "_grid_boundary", counted)
    editor = open_editor()
    editor.set_value("name", "李四")
    editor.complete()  # every rule runs, the location warning included
    assert "需要改正" in editor.status_label.text() and reads == []


def test_a_record_in_a_grid_reads_its_grids_boundary_only(
    qtbot, open_editor, store: Store, monkeypatch
) -> None:
    """Checking a house's location reads its own grid's boundary, once, not every grid's."""
    from app.core.store import Grid

    square = [(120.0, 30.0), (120.01, 30.0), (120.01, 30.01), (120.0, 30.01)]
    for code in ("G-1", "G-2", "G-3"):
        store.put_grid(Grid(code, code, "C1", "社区", polygon=square))
    read: list[str] = []
    every: list[bool] = []
    one, all_grids = store.grid_boundary, store.grids
    monkeypatch.setattr(store, "grid_boundary", lambda code: read.append(code) or one(code))
    monkeypatch.setattr(
        store, "grids", lambda boundaries=True: every.append(boundaries) or all_grids(boundaries)
    )
    editor = open_editor("house")
    editor.set_value("grid", "G-2")
    editor.set_value("location", {"lon": 120.05, "lat": 30.05})
    editor.complete()
    assert "不在所属网格" in editor.message("location")
    editor.complete()
    assert read == ["G-2"] and True not in every


def test_a_grid_field_on_the_first_screen_reads_no_boundaries(
    qtbot, open_editor, store: Store, monkeypatch
) -> None:
    """The house form's grid field is built as the editor opens: it lists the grids by name,
    in the store's order, without reading their boundaries (30 of them took ~4.7 ms)."""
    from app.core.store import Grid

    square = [(120.0, 30.0), (120.01, 30.0), (120.01, 30.01), (120.0, 30.01)]
    store.put_grid(Grid("G-B", "乙网格", "C1", "社区", polygon=square))
    store.put_grid(Grid("G-A", "甲网格", "C1", "社区", polygon=square))
    asked: list[bool] = []
    real = store.grids

    def grids(boundaries: bool = True) -> list[Grid]:
        asked.append(boundaries)
        return real(boundaries)

    monkeypatch.setattr(store, "grids", grids)
    editor = open_editor("house")
    combo = editor.widget("grid").combo
    assert [combo.itemData(i) for i in range(combo.count())] == [None, "G-A", "G-B"]
    assert combo.itemText(1) == "甲网格（社区）"
    assert asked and True not in asked
