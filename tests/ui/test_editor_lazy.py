"""Sections built when needed (issue 17): the editor builds only the sections on screen when it
opens; the others are built when scrolled to, tabbed into, or needed by a value or a message.
Nothing the worker relies on may notice: real widgets, a real store, keys and clicks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget

from app.core.store import Store
from app.ui.editor import RecordEditor
from tests import factories
from tests.ui.test_fields import type_text

SHORT = (900, 480)  # a window where the first section fills the view


@pytest.fixture
def open_editor(qtbot, store: Store) -> Iterator[Callable[..., RecordEditor]]:
    """Open a RecordEditor in an active window (``size``: its size), focus in its first field."""

    def make(
        record_id: str | None = None, *, size: tuple[int, int] = SHORT, **kwargs: Any
    ) -> RecordEditor:
        editor = RecordEditor(store, "resident", record_id, author="网格员甲", **kwargs)
        editor.confirm_close = lambda _e: "discard"
        qtbot.addWidget(editor)
        editor.resize(*size)
        editor.show()
        qtbot.waitExposed(editor)
        editor.activateWindow()
        qtbot.waitUntil(lambda: editor.isAncestorOf(QApplication.focusWidget()))
        return editor

    yield make


def built(editor: RecordEditor, section_id: str) -> bool:
    return editor.body.section_box(section_id).built


def section_of(editor: RecordEditor, field_id: str) -> str:
    return editor.form.fields[field_id].section


def in_field(editor: RecordEditor, field_id: str) -> bool:
    """The keyboard focus is in ``field_id``'s widget (without building any other section)."""
    widget = editor.body.built_widgets().get(field_id)
    focus = QApplication.focusWidget()
    return widget is not None and focus is not None and widget.isAncestorOf(focus)


def focus_in(qtbot, editor: RecordEditor, field_id: str) -> None:
    editor.widget(field_id).focus_target().setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(lambda: in_field(editor, field_id))


def press(qtbot, key: Qt.Key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(QApplication.focusWidget(), key, modifier)


def shown_fields(editor: RecordEditor, section_id: str) -> list[str]:
    fields = editor.form.fields.values()
    return [f.id for f in fields if f.section == section_id and editor.is_field_visible(f.id)]


def save_record(store: Store, data: dict[str, Any], status: str = "complete") -> str:
    return store.save("resident", data, status=status, author="网格员甲").id


def registered_resident(**overrides: Any) -> dict[str, Any]:
    """A 户籍 resident with values in every section that shows for one (household, tags)."""
    data = factories.resident(
        household_number="330106001",
        head_id_number=factories.id_number(dt.date(1960, 1, 2), seq=111),
        head_name="张大山",
        household_relation="20",
        head_phone="13900139000",
        is_focus=True,
        left_behind="01",
        special_group=["01", "06"],
    )
    data.update(overrides)
    return data


# --------------------------------------------------------------------------- opening


def test_open_builds_only_what_is_on_screen_and_scrolling_builds_the_rest(
    qtbot, open_editor
) -> None:
    """New behaviour: the first section is built at open, the later ones when scrolled to."""
    editor = open_editor()
    assert built(editor, "person")
    assert not built(editor, "residence") and not built(editor, "tags")
    bar = editor.scroll.verticalScrollBar()
    assert bar.maximum() > 0  # the unbuilt sections hold their room: the form scrolls
    bar.setValue(bar.maximum())
    qtbot.waitUntil(lambda: built(editor, "tags"))
    assert built(editor, "residence")
    assert not built(editor, "registered")  # hidden (no population type yet): never built


def test_a_section_half_on_screen_gets_only_its_rows_on_screen(qtbot, open_editor) -> None:
    """New behaviour: rows are built from the top of a section as far as the view reaches."""
    editor = open_editor(size=(900, 700))
    box = editor.body.section_box("residence")
    assert 0 < box.count < len(box.fields)
    viewport = editor.scroll.viewport()
    last = editor.widget(box.fields[box.count - 1].id)
    assert last.mapTo(viewport, last.rect().topLeft()).y() < viewport.height()  # on screen
    editor.scroll.verticalScrollBar().setValue(editor.scroll.verticalScrollBar().maximum())
    qtbot.waitUntil(lambda: box.built)


# --------------------------------------------------------------------------- keyboard


def test_tab_from_the_last_built_field_goes_into_the_next_section(qtbot, open_editor) -> None:
    """Guard (Tab order) with a new precondition: the next section is not built before the Tab."""
    editor = open_editor()
    last = shown_fields(editor, "person")[-1]
    assert not built(editor, "residence")
    focus_in(qtbot, editor, last)
    press(qtbot, Qt.Key.Key_Tab)
    first = shown_fields(editor, "residence")[0]
    qtbot.waitUntil(lambda: in_field(editor, first))
    assert built(editor, "residence")
    press(qtbot, Qt.Key.Key_Tab)  # on through the new section, in the order shown
    second = shown_fields(editor, "residence")[1]
    assert in_field(editor, second)
    type_text(qtbot, QApplication.focusWidget(), "幸福路12号")  # every key lands in the field
    assert editor.values()[second] == "幸福路12号"
    press(qtbot, Qt.Key.Key_Tab, Qt.KeyboardModifier.ShiftModifier)
    press(qtbot, Qt.Key.Key_Tab, Qt.KeyboardModifier.ShiftModifier)
    assert in_field(editor, last)  # and back again


def test_shift_tab_from_the_buttons_goes_into_the_last_section(qtbot, open_editor) -> None:
    editor = open_editor()
    assert not built(editor, "tags")
    editor.save_button.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is editor.save_button)
    press(qtbot, Qt.Key.Key_Tab, Qt.KeyboardModifier.ShiftModifier)
    last = shown_fields(editor, "tags")[-1]
    qtbot.waitUntil(lambda: in_field(editor, last))
    assert built(editor, "tags")


def test_enter_from_the_last_built_field_goes_into_the_next_section(qtbot, open_editor) -> None:
    editor = open_editor()
    last = shown_fields(editor, "person")[-1]
    focus_in(qtbot, editor, last)
    press(qtbot, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: in_field(editor, shown_fields(editor, "residence")[0]))


# --------------------------------------------------------------------------- values


def test_values_in_unbuilt_sections_survive_a_save_unchanged(
    qtbot, open_editor, store: Store
) -> None:
    """New behaviour: an existing record's values in sections never built are saved as stored."""
    record_id = save_record(store, registered_resident())
    stored = store.get(record_id)
    assert stored is not None
    editor = open_editor(record_id)
    later = ("residence", "registered", "tags")
    assert not any(built(editor, s) for s in later)
    assert not editor.is_dirty()
    focus_in(qtbot, editor, "name")
    editor.widget("name").focus_target().selectAll()  # type: ignore[attr-defined]
    type_text(qtbot, QApplication.focusWidget(), "李四")
    assert editor.is_dirty()
    with qtbot.waitSignal(editor.saved, timeout=2000):
        qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    assert not any(built(editor, s) for s in later)  # saved without building them
    saved = store.get(record_id)
    assert saved is not None
    assert saved.data == {**stored.data, "name": "李四"}
    assert not editor.is_dirty()


def test_unbuilt_values_show_when_their_section_is_built(qtbot, open_editor, store) -> None:
    data = registered_resident()
    editor = open_editor(save_record(store, data))
    assert not built(editor, "registered")
    assert editor.widget("head_name").value() == data["head_name"]  # built on the way
    assert editor.widget("special_group").value() == data["special_group"]
    assert editor.raw_values()["household_relation"] == data["household_relation"]
    assert not editor.is_dirty()  # showing a value is not an edit


# --------------------------------------------------------------------------- validation


def test_an_error_in_an_unbuilt_section_is_shown_there_on_complete(
    qtbot, open_editor, store: Store
) -> None:
    """New behaviour: Complete builds the unbuilt field of the first problem (and the rows of its
    section above it), shows the message under the field and puts the cursor there."""
    bad = factories.id_number(dt.date(1960, 1, 2), seq=111)
    bad = bad[:-1] + ("0" if bad[-1] != "0" else "1")  # wrong check digit
    record_id = save_record(store, registered_resident(head_id_number=bad), status="draft")
    editor = open_editor(record_id)
    assert not editor.body.is_built("head_id_number")
    assert editor.message("head_id_number") == ""
    qtbot.mouseClick(editor.complete_button, Qt.MouseButton.LeftButton)
    assert editor.body.is_built("head_id_number")
    assert editor.message("head_id_number") != ""
    qtbot.waitUntil(lambda: in_field(editor, "head_id_number"))
    widget = editor.widget("head_id_number")
    qtbot.waitUntil(lambda: not widget.visibleRegion().isEmpty())  # scrolled into view
    saved = store.get(record_id)
    assert saved is not None and saved.status == "draft"  # nothing saved


def test_required_fields_of_an_unbuilt_section_are_checked(qtbot, open_editor) -> None:
    editor = open_editor()
    for fid, value in factories.resident().items():
        if section_of(editor, fid) != "registered":
            editor.set_value(fid, value)
    assert editor.is_field_required("hukou_consistency")
    assert not editor.body.is_built("hukou_consistency")
    assert not editor.complete()
    assert editor.body.is_built("hukou_consistency")
    assert "必填" in editor.message("hukou_consistency")
    assert in_field(editor, "hukou_consistency")


# --------------------------------------------------------------------------- the same editor


def _chain(editor: RecordEditor) -> list[tuple[str, str]]:
    """The Tab order through the fields: (field id, widget class) of each stop."""
    owners = {w: fid for fid, w in editor.body.built_widgets().items()}
    out: list[tuple[str, str]] = []
    widget: QWidget = editor.body
    for _ in range(2000):
        widget = widget.nextInFocusChain()
        if widget is editor.body:
            break
        if not widget.focusPolicy() & Qt.FocusPolicy.TabFocus or not editor.isAncestorOf(widget):
            continue
        parent = widget.parentWidget()
        while parent is not None and parent not in owners:
            parent = parent.parentWidget()
        if parent is not None:
            out.append((owners[parent], type(widget).__name__))
    return out


@pytest.mark.parametrize(
    "data",
    [
        registered_resident(),
        factories.resident(population_type="2", inflow_reason="01", permit_type="01"),
        factories.resident(population_type="3", nationality="USA", foreign_surname="SMITH"),
    ],
    ids=["registered", "migrant", "foreign"],
)
def test_lazy_and_eager_editors_agree(qtbot, open_editor, store: Store, data) -> None:
    """Guard: the lazily built editor holds the same values, dirty state, messages and Tab
    order as one built whole at once (``lazy=False``, the editor before issue 17)."""
    record_id = save_record(store, data, status="draft")
    lazy = open_editor(record_id)
    eager = open_editor(record_id, lazy=False)
    assert not all(lazy.body.section_box(s.id).built for s in lazy.form.sections)
    assert lazy.values() == eager.values()
    assert lazy.raw_values() == eager.raw_values()
    assert not lazy.is_dirty() and not eager.is_dirty()
    assert lazy.complete() == eager.complete()
    assert {f: lazy.message(f) for f in lazy.form.fields} == {
        f: eager.message(f) for f in eager.form.fields
    }
    lazy.body.build_all()
    assert _chain(lazy) == _chain(eager)
    assert not lazy.is_dirty()


# --------------------------------------------------------------------------- what a section learns later


def test_a_section_built_after_a_language_switch_speaks_the_new_language(
    qtbot, open_editor
) -> None:
    editor = open_editor()
    assert not built(editor, "tags")
    editor.set_lang("en")
    label = editor.body.label("special_group")  # builds the rows down to it
    assert label.text() == editor.form.fields["special_group"].label.en
    assert editor.body.section_box("tags").title() == editor.form.sections[-1].title.en


def test_task_fields_in_an_unbuilt_section_are_marked_when_built(qtbot, open_editor) -> None:
    editor = open_editor()
    assert not built(editor, "tags")
    editor.set_task_fields(["left_behind", "name"])
    assert editor.body.label("left_behind").property("taskField") is True
    assert editor.body.label("name").property("taskField") is True
    assert editor.body.label("is_focus").property("taskField") is None
