"""The record editor on the shipped forms: real widgets, a real store, keys and clicks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
import shiboken6
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox, QPushButton, QWidget

from app.core import idnumber
from app.core import rules as core_rules
from app.core.forms import FormSet
from app.core.store import Store
from app.ui import editor as editor_module
from app.ui.editor import RecordEditor
from app.ui.i18n import language
from app.ui.style import TOUCH_TARGET_PX, apply_touch_mode
from tests import factories
from tests.ui.test_fields import type_text

GRID = "330106001001-01"


@pytest.fixture
def open_editor(qtbot, store: Store) -> Iterator[Callable[..., RecordEditor]]:
    """Open a RecordEditor in an active window, focus in its first field."""

    def make(
        form: str = "resident", record_id: str | None = None, *, owned: bool = True, **kwargs
    ) -> RecordEditor:
        editor = RecordEditor(store, form, record_id, author="网格员甲", **kwargs)
        editor.confirm_close = lambda _e: "discard"  # tests that care set their own
        if owned:  # closed by qtbot at the end (a test that kills the editor opts out)
            qtbot.addWidget(editor)
        editor.resize(900, 800)
        editor.show()
        qtbot.waitExposed(editor)
        editor.activateWindow()
        qtbot.waitUntil(lambda: editor.isAncestorOf(QApplication.focusWidget()))
        return editor

    yield make


def focused() -> QWidget:
    return QApplication.focusWidget()


def field_with_focus(editor: RecordEditor) -> str | None:
    widget = focused()
    for fid in editor.form.fields:
        if editor.widget(fid).isAncestorOf(widget):
            return fid
    return None


def press(
    qtbot, key: Qt.Key, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier
) -> None:
    qtbot.keyClick(focused(), key, modifier)


def wrong_check_digit(number: str) -> str:
    last = "0" if number[-1] != "0" else "1"
    return number[:-1] + last


def fill_valid(editor: RecordEditor, **overrides: object) -> None:
    """Everything a complete 户籍 resident needs, set through the editor's API."""
    for fid, value in factories.resident(**overrides).items():
        editor.set_value(fid, value)


# --------------------------------------------------------------------------- keyboard entry


def test_fill_and_complete_a_resident_from_the_keyboard(qtbot, open_editor, store: Store) -> None:
    editor = open_editor()
    number = factories.id_number(dt.date(1990, 3, 7), seq=124)  # even: female
    typed = {
        "population_type": "1",  # short list: the code selects 1 户籍人口
        "id_number": number,
        "name": "王小红",
        "ethnicity": "hanzu",  # searchable picker: full pinyin of 汉族
        "phone": "13800138000",
        "hukou_region": "330106",  # picker: the code
        "hukou_address": "浙江省杭州市西湖区文三路1号",
        "residence_region": "杭州市/西湖区",  # picker: part of the region path
        "residence_address": "幸福路12号3栋2单元501室",
        "grid": GRID,
        "hukou_consistency": "01",
    }
    visited: list[str] = []
    assert field_with_focus(editor) == "population_type"  # the first field has the cursor
    while (fid := field_with_focus(editor)) is not None:
        assert fid not in visited, f"Enter came back to {fid}"
        visited.append(fid)
        if fid in typed:
            type_text(qtbot, focused(), typed[fid])
        press(qtbot, Qt.Key.Key_Return)
    assert focused() is editor.complete_button  # Enter on the last field lands on Complete
    assert "household_number" in visited  # the 户籍 block was shown and walked
    assert "inflow_reason" not in visited  # the 流动 block was not
    with qtbot.waitSignal(editor.completed, timeout=2000) as done:
        press(qtbot, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert editor.issues() == [], [i.message(editor.form) for i in editor.issues()]
    record = store.get(done.args[0])
    assert record is not None and record.status == "complete"
    assert record.data["gender"] == "2" and record.data["birth_date"] == "1990-03-07"
    assert record.data["ethnicity"] == "01"
    assert record.data["residence_region"] == "330106"
    assert record.data["hukou_consistency"] == "01"
    assert record.data["id_type"] == "111"  # the form's default
    assert record.created_by == "网格员甲"
    assert store.autosaves() == []  # a save clears the autosave


def test_enter_skips_hidden_fields(qtbot, open_editor) -> None:
    editor = open_editor()
    editor.set_value("population_type", "3")  # 境外人员: no 民族, no 籍贯
    assert not editor.is_field_visible("ethnicity")
    editor.widget("birth_date").focus_target().setFocus()
    qtbot.waitUntil(lambda: field_with_focus(editor) == "birth_date")
    press(qtbot, Qt.Key.Key_Return)
    assert field_with_focus(editor) == "marital_status"


def test_tab_order_is_the_visual_order(qtbot, open_editor) -> None:
    editor = open_editor("house")
    editor.set_value("is_rental", True)
    expected = [fid for fid in editor.form.fields if editor.is_field_visible(fid)]
    seen: list[str] = []
    while (fid := field_with_focus(editor)) is not None:
        if not seen or seen[-1] != fid:  # a point field has three boxes in a row
            seen.append(fid)
        assert len(seen) <= len(expected), seen
        press(qtbot, Qt.Key.Key_Tab)
    assert seen == expected


def test_ctrl_s_saves_a_draft_with_errors(qtbot, open_editor, store: Store) -> None:
    editor = open_editor()
    type_text(qtbot, focused(), "9")  # 9 is no population type code: nothing selected
    editor.widget("name").focus_target().setFocus()
    qtbot.waitUntil(lambda: field_with_focus(editor) == "name")
    type_text(qtbot, focused(), "李四")
    with qtbot.waitSignal(editor.saved) as saved:
        press(qtbot, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    record = store.get(saved.args[0])
    assert record.status == "draft" and record.data["name"] == "李四"
    assert not editor.is_dirty()


# --------------------------------------------------------------------------- ID numbers


def test_wrong_id_number_shows_message_blocks_complete_but_draft_keeps_it(
    qtbot, open_editor, store: Store
) -> None:
    editor = open_editor()
    fill_valid(editor)
    editor.set_value("id_number", "")
    bad = wrong_check_digit(factories.id_number())
    editor.widget("id_number").focus_target().setFocus()
    qtbot.waitUntil(lambda: field_with_focus(editor) == "id_number")
    type_text(qtbot, focused(), bad[:17])
    assert editor.message("id_number") == ""  # not complete yet: no nagging
    type_text(qtbot, focused(), bad[17])
    assert "校验位" in editor.message("id_number")  # checked as typed, beside the field
    editor.widget("name").focus_target().setFocus()  # move away
    completed: list[str] = []
    editor.completed.connect(completed.append)
    assert editor.complete() is False
    assert completed == []
    assert field_with_focus(editor) == "id_number"  # the first problem has the cursor
    record_id = editor.save_draft()
    record = store.get(record_id)
    assert record.status == "draft"
    assert record.data["id_number"] == bad


def test_valid_id_fills_birth_date_and_gender(qtbot, open_editor) -> None:
    editor = open_editor()
    number = factories.id_number(dt.date(1979, 12, 31), seq=37)
    editor.widget("id_number").focus_target().setFocus()
    qtbot.waitUntil(lambda: field_with_focus(editor) == "id_number")
    type_text(qtbot, focused(), number)
    assert editor.values()["birth_date"] == "1979-12-31"
    assert editor.values()["gender"] == "1"
    assert editor.widget("birth_date").focus_target().text() == "1979-12-31"
    assert editor.message("id_number") == ""


def test_typed_birth_date_that_disagrees_with_the_id_is_flagged(qtbot, open_editor) -> None:
    editor = open_editor()
    editor.set_value("birth_date", "1980-01-01")
    editor.set_value("gender", "2")
    editor.widget("id_number").focus_target().setFocus()
    qtbot.waitUntil(lambda: field_with_focus(editor) == "id_number")
    type_text(qtbot, focused(), factories.id_number(dt.date(1979, 12, 31), seq=37))
    assert editor.values()["birth_date"] == "1980-01-01"  # never overwritten
    assert "不一致" in editor.message("birth_date")
    assert "不一致" in editor.message("gender")


def test_passport_numbers_are_not_checked_as_citizen_ids(qtbot, open_editor) -> None:
    editor = open_editor()
    editor.set_value("id_type", "414")
    editor.set_value("id_number", "E12345678")
    editor.widget("id_number").commit()
    editor.widget("id_number").committed.emit()
    assert editor.message("id_number") == ""


# --------------------------------------------------------------------------- duplicate guard


def test_known_id_number_shows_banner_and_opens_the_existing_record(
    qtbot, open_editor, store: Store
) -> None:
    existing = store.save("resident", factories.resident(), status="complete", author="乙")
    editor = open_editor()
    editor.widget("id_number").focus_target().setFocus()
    qtbot.waitUntil(lambda: field_with_focus(editor) == "id_number")
    type_text(qtbot, focused(), factories.id_number())
    qtbot.waitUntil(editor.banner.isVisible)
    banner_text = " ".join(w.text() for w in editor.banner.findChildren(QLabel))
    assert "证件号码已登记" in banner_text and "张三" in banner_text and GRID in banner_text
    button = editor.banner_button("open", existing.id)
    assert button.text() == "打开已有记录"
    with qtbot.waitSignal(editor.openRecordRequested) as opened:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert opened.args == [existing.id]
    slots = {row[0]: row for row in store.autosaves()}
    assert slots[editor.slot][3]["id_number"] == factories.id_number()  # typed data kept
    assert store.decisions(editor.slot)[0][:2] == (existing.id, "open_existing")


def test_create_anyway_dismisses_the_exact_match(qtbot, open_editor, store: Store) -> None:
    existing = store.save("resident", factories.resident(), status="complete")
    editor = open_editor()
    editor.set_value("id_number", factories.id_number())
    editor.run_duplicate_check()
    qtbot.mouseClick(editor.banner_button("different", existing.id), Qt.MouseButton.LeftButton)
    assert not editor.banner.isVisible()


def test_possible_same_person_must_be_answered_before_completing(
    qtbot, open_editor, store: Store
) -> None:
    existing = store.save("resident", factories.resident(), status="complete")
    editor = open_editor()
    fill_valid(editor, seq=125)  # same name and birth date, another ID number
    assert editor.complete() is False
    assert editor.banner.isVisible()
    fuzzy = editor.duplicate_candidates()
    assert [c.record_id for c in fuzzy] == [existing.id] and not fuzzy[0].exact
    labels = " ".join(w.text() for w in editor.banner.findChildren(QLabel))
    assert "可能是同一人" in labels and "姓名和出生日期相同" in labels
    qtbot.mouseClick(editor.banner_button("different", existing.id), Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(editor.completed) as done:
        assert editor.complete() is True
    decisions = store.decisions(done.args[0])
    assert [(d[0], d[1], d[2]) for d in decisions] == [(existing.id, "different", "网格员甲")]
    assert store.get(done.args[0]).dup_state == "different"


def test_same_person_opens_the_existing_record(qtbot, open_editor, store: Store) -> None:
    existing = store.save("resident", factories.resident(), status="complete")
    editor = open_editor()
    editor.set_value("name", "张三")
    editor.set_value("birth_date", "1985-06-15")
    qtbot.waitUntil(editor.banner.isVisible)
    with qtbot.waitSignal(editor.openRecordRequested) as opened:
        qtbot.mouseClick(editor.banner_button("same", existing.id), Qt.MouseButton.LeftButton)
    assert opened.args == [existing.id]
    assert store.decisions(editor.slot)[0][:2] == (existing.id, "same")


def test_a_person_called_different_by_name_is_still_already_registered_by_id_number(
    qtbot, open_editor, store: Store
) -> None:
    """A "different person" answer to a same-name-and-birth guess; typing that person's very ID
    number afterwards is certain, and must still say "already registered"."""
    existing = store.save("resident", factories.resident(), status="complete")
    editor = open_editor()
    editor.set_value("name", "张三")
    editor.set_value("birth_date", "1985-06-15")
    qtbot.waitUntil(editor.banner.isVisible)
    qtbot.mouseClick(editor.banner_button("different", existing.id), Qt.MouseButton.LeftButton)
    assert not editor.banner.isVisible()
    editor.widget("id_number").focus_target().setFocus()
    qtbot.waitUntil(lambda: field_with_focus(editor) == "id_number")
    type_text(qtbot, focused(), factories.id_number().lower())
    qtbot.waitUntil(editor.banner.isVisible)
    banner_text = " ".join(w.text() for w in editor.banner.findChildren(QLabel))
    assert "证件号码已登记" in banner_text
    assert editor.banner_button("open", existing.id).isVisible()
    fill_valid(editor)
    assert editor.complete() is False  # the exact match is answered first


def test_a_different_person_answer_holds_when_either_record_is_opened_again(
    qtbot, open_editor, store: Store
) -> None:
    """ "Different person" to a same-name-and-birth guess is a fact about the two records
    (``dedup_decisions``): reopening the saved record, or opening the other one, does not ask
    again; both stay candidates, answered."""
    existing = store.save("resident", factories.resident(), status="complete")
    editor = open_editor()
    fill_valid(editor, seq=125)  # same name and birth date, another ID number
    editor.run_duplicate_check()
    qtbot.mouseClick(editor.banner_button("different", existing.id), Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(editor.completed) as done:
        assert editor.complete() is True
    saved = done.args[0]
    editor.close()

    again = open_editor(record_id=saved)
    assert [c.record_id for c in again.run_duplicate_check()] == [existing.id]
    assert not again.banner.isVisible()
    other = open_editor(record_id=existing.id)
    assert [c.record_id for c in other.run_duplicate_check()] == [saved]
    assert not other.banner.isVisible()
    # the same person's ID number typed into it is certain: that still asks
    other.set_value("id_number", factories.id_number(seq=125))
    other.run_duplicate_check()
    assert other.banner.isVisible() and other.banner_button("open", saved).isVisible()


def test_enter_on_a_banner_button_chooses_it(qtbot, open_editor, store: Store) -> None:
    """Keyboard only: Complete puts the cursor on the banner's first button; Enter there
    opens the existing record (as Enter opens everywhere else), Tab moves to the next."""
    existing = store.save("resident", factories.resident(), status="complete")
    editor = open_editor()
    fill_valid(editor)
    assert editor.complete() is False
    open_button = editor.banner_button("open", existing.id)
    qtbot.waitUntil(lambda: focused() is open_button)
    press(qtbot, Qt.Key.Key_Tab)
    assert focused() is editor.banner_button("different", existing.id)
    press(qtbot, Qt.Key.Key_Backtab)
    assert focused() is open_button
    with qtbot.waitSignal(editor.openRecordRequested, timeout=1000) as opened:
        press(qtbot, Qt.Key.Key_Return)
    assert opened.args == [existing.id]


def test_tab_from_the_id_number_reaches_the_banner_next(qtbot, open_editor, store: Store) -> None:
    """Keyboard only: the banner's buttons come right after the field that raised them (they
    are made when it shows, and a late widget would join the tab chain at the window's end);
    after them Tab goes on to the field that followed, and Shift+Tab comes back the same way."""
    existing = store.save("resident", factories.resident(), status="complete")
    editor = open_editor()
    editor.widget("id_number").focus_target().setFocus()
    qtbot.waitUntil(lambda: field_with_focus(editor) == "id_number")
    id_edit = focused()
    type_text(qtbot, id_edit, factories.id_number())
    qtbot.waitUntil(editor.banner.isVisible)
    following = editor.body.first_visible(after="id_number")
    open_button = editor.banner_button("open", existing.id)
    other_button = editor.banner_button("different", existing.id)
    press(qtbot, Qt.Key.Key_Tab)
    assert focused() is open_button
    press(qtbot, Qt.Key.Key_Tab)
    assert focused() is other_button
    press(qtbot, Qt.Key.Key_Tab)
    assert field_with_focus(editor) == following
    press(qtbot, Qt.Key.Key_Backtab)
    assert focused() is other_button
    press(qtbot, Qt.Key.Key_Backtab)
    press(qtbot, Qt.Key.Key_Backtab)
    assert focused() is id_edit


def test_tab_from_a_name_and_birth_date_reaches_the_guess_next(
    qtbot, open_editor, store: Store
) -> None:
    """The same for a guess (same name and birth date): its buttons follow the field typed last."""
    existing = store.save("resident", factories.resident(), status="complete")
    editor = open_editor()
    editor.set_value("name", "张三")
    editor.widget("birth_date").focus_target().setFocus()
    qtbot.waitUntil(lambda: field_with_focus(editor) == "birth_date")
    editor.set_value("birth_date", "1985-06-15")
    qtbot.waitUntil(editor.banner.isVisible)
    press(qtbot, Qt.Key.Key_Tab)
    assert focused() is editor.banner_button("same", existing.id)


# --------------------------------------------------------------------------- conditions


def test_migrant_block_shows_and_hides_live(qtbot, open_editor) -> None:
    editor = open_editor()
    migrant_box = editor.body.section_box("migrant")
    assert not migrant_box.isVisible()
    press(qtbot, Qt.Key.Key_2)  # the cursor is in 人口类型: 2 流动人口
    assert editor.values()["population_type"] == "2"
    assert migrant_box.isVisible()
    assert editor.is_field_visible("inflow_reason") and editor.is_field_required("inflow_reason")
    assert not editor.body.section_box("registered").isVisible()
    assert not editor.is_field_visible("permit_number")  # shown once a permit type is set
    editor.set_value("permit_type", "01")
    assert editor.is_field_visible("permit_number") and editor.is_field_required("permit_number")
    editor.set_value("permit_type", "99")
    assert editor.is_field_visible("permit_number") and not editor.is_field_required(
        "permit_number"
    )
    qtbot.wait(QApplication.keyboardInputInterval() + 50)  # a new search, not "21"
    press(qtbot, Qt.Key.Key_1)  # back to 户籍人口
    assert editor.values()["population_type"] == "1"
    assert not migrant_box.isVisible()
    assert editor.body.section_box("registered").isVisible()
    assert editor.values()["permit_type"] == "99"  # hidden, but what was typed is kept


def test_required_marker_follows_required_when(qtbot, open_editor) -> None:
    editor = open_editor()
    body = editor.body
    editor.set_value("population_type", "4")  # 未落户: 户籍地 shown but optional
    assert editor.is_field_visible("hukou_region") and not editor.is_field_required("hukou_region")
    assert not body.is_marked("hukou_region")
    editor.set_value("population_type", "1")
    assert editor.is_field_required("hukou_region") and body.is_marked("hukou_region")
    assert body.label("hukou_region").text() == "户籍地"  # the * is painted by the box


def test_only_dependent_fields_are_re_evaluated(qtbot, open_editor, monkeypatch) -> None:
    editor = open_editor()
    calls: list[str] = []
    real = core_rules.is_visible

    def counting(fld, data):
        calls.append(fld.id)
        return real(fld, data)

    monkeypatch.setattr(core_rules, "is_visible", counting)
    editor.set_value("name", "赵六")  # no condition reads the name
    assert calls == []
    editor.set_value("population_type", "2")
    readers = {
        f.id
        for f in editor.form.fields.values()
        if "population_type" in str(f.show_when) + str(f.required_when)
    }
    assert set(calls) == readers and len(calls) < len(editor.form.fields)


# --------------------------------------------------------------------------- never lose typed data


def test_killed_editor_reopens_with_what_was_typed(qtbot, open_editor, store: Store) -> None:
    editor = open_editor(owned=False)
    press(qtbot, Qt.Key.Key_1)
    editor.widget("name").focus_target().setFocus()
    qtbot.waitUntil(lambda: field_with_focus(editor) == "name")
    type_text(qtbot, focused(), "孙七")
    editor.widget("birth_date").focus_target().setText("1985/6/15")  # as typed, not yet left
    qtbot.waitUntil(
        lambda: any(row[3].get("name") == "孙七" for row in store.autosaves()), timeout=3000
    )
    slot = editor.slot
    shiboken6.delete(editor)  # the app dies: no close, no save
    reopened = Store(store.path, store.formset)
    try:
        rows = [row for row in reopened.autosaves() if row[0] == slot]
        assert rows, "the autosave survived"
        restored = RecordEditor.restore(reopened, rows[0])
        qtbot.addWidget(restored)
        assert restored.values()["name"] == "孙七"
        assert restored.values()["population_type"] == "1"
        assert restored.widget("birth_date").focus_target().text() == "1985/6/15"
        assert restored.values()["birth_date"] == "1985-06-15"
        assert restored.is_dirty()
        record_id = restored.save_draft()
        assert record_id == slot  # a new record is saved under its autosave slot
        assert reopened.autosaves() == []
    finally:
        reopened.close()


def test_edits_to_an_existing_record_autosave_under_its_id(
    qtbot, open_editor, store: Store
) -> None:
    existing = store.save("resident", factories.resident())
    editor = open_editor(record_id=existing.id)
    assert not editor.is_dirty()
    editor.set_value("phone", "13900139000")
    editor.autosave_now()
    row = store.autosaves()[0]
    assert row[0] == existing.id and row[2] == existing.id and row[3]["phone"] == "13900139000"
    editor.set_value("phone", "13800138000")  # back to the stored value: nothing to keep
    editor.autosave_now()
    assert store.autosaves() == []


def test_closing_a_dirty_editor_asks(qtbot, open_editor, store: Store) -> None:
    editor = open_editor()
    editor.set_value("name", "周八")
    asked: list[str] = []

    def answer(choice: str):
        def ask(_editor: RecordEditor) -> str:
            asked.append(choice)
            return choice

        return ask

    editor.confirm_close = answer("cancel")
    assert editor.request_close() is False
    assert asked == ["cancel"] and editor.isVisible() and not editor.is_closed()
    editor.autosave_now()
    editor.confirm_close = answer("discard")
    with qtbot.waitSignal(editor.closed):
        assert editor.request_close() is True
    assert store.autosaves() == []  # discarded on purpose
    assert store.count("resident") == 0


def test_close_question_save_keeps_a_draft(qtbot, open_editor, store: Store) -> None:
    editor = open_editor()
    editor.set_value("name", "吴九")
    editor.confirm_close = lambda _e: "save"
    with qtbot.waitSignal(editor.saved) as saved, qtbot.waitSignal(editor.closed):
        editor.request_close()
    assert store.get(saved.args[0]).data["name"] == "吴九"


def test_escape_asks_with_a_real_message_box(qtbot, open_editor) -> None:
    editor = open_editor()
    editor.set_value("name", "郑十")
    editor.confirm_close = editor_module.ask_close
    seen: list[str] = []

    def click_cancel() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        seen.append(box.text())
        cancel = next(b for b in box.buttons() if b.text() == "取消")
        cancel.click()

    QTimer.singleShot(200, click_cancel)
    press(qtbot, Qt.Key.Key_Escape)
    editor.confirm_close = lambda _e: "discard"  # no real box at teardown
    assert seen and "未保存" in seen[0]
    assert not editor.is_closed()


def test_clean_editor_closes_without_asking(qtbot, open_editor) -> None:
    editor = open_editor()
    with qtbot.waitSignal(editor.closed):
        press(qtbot, Qt.Key.Key_Escape)
    assert editor.is_closed()


# --------------------------------------------------------------------------- history, references


def test_history_lists_changes_with_labels(qtbot, open_editor, store: Store) -> None:
    existing = store.save("resident", factories.resident(gender="1"), author="甲")
    editor = open_editor(record_id=existing.id)
    editor.set_value("gender", "2")
    editor.set_value("id_number", factories.id_number(seq=124))
    editor.save_draft()
    qtbot.mouseClick(editor.history_button, Qt.MouseButton.LeftButton)
    panel = editor.history_panel
    assert panel.isVisible()
    rows = [
        [panel.topLevelItem(i).text(c) for c in range(5)] for i in range(panel.topLevelItemCount())
    ]
    gender_rows = [r for r in rows if r[2] == "性别"]
    assert gender_rows[0][1:] == [
        "网格员甲",
        "性别",
        "男性",
        "女性",
    ]  # newest first, labels not codes
    assert any(r[1] == "甲" for r in rows)  # the creation is listed too


def test_create_new_reference_in_a_nested_editor(qtbot, open_editor, store: Store) -> None:
    editor = open_editor()
    editor.set_value("grid", GRID)
    ref = editor.widget("house_ref")
    qtbot.mouseClick(ref.create_button, Qt.MouseButton.LeftButton)
    nested = editor.nested_editor
    assert nested is not None and nested.form.id == "house"
    assert nested.values()["grid"] == GRID  # same grid carried over
    nested.set_value("house_code", "H-77")
    nested.set_value("address_text", "幸福路12号")
    with qtbot.waitSignal(nested.closed):
        house_id = nested.save_draft()
        nested.request_close()
    assert editor.values()["house_ref"] == house_id
    assert ref.focus_target().text() == store.get(house_id).title


# --------------------------------------------------------------------------- touch, language


def test_touch_mode_enlarges_targets(qtbot, open_editor) -> None:
    editor = open_editor()
    edit = editor.widget("name").focus_target()
    button: QPushButton = editor.save_button
    assert edit.minimumSizeHint().height() < TOUCH_TARGET_PX
    apply_touch_mode(editor, True)
    QApplication.processEvents()
    assert edit.minimumHeight() >= TOUCH_TARGET_PX and edit.height() >= TOUCH_TARGET_PX
    assert button.minimumHeight() >= TOUCH_TARGET_PX
    assert editor.widget("gender").focus_target().minimumHeight() >= TOUCH_TARGET_PX
    apply_touch_mode(editor, False)
    QApplication.processEvents()
    assert edit.minimumHeight() < TOUCH_TARGET_PX


def test_language_switch_retranslates(qtbot, open_editor) -> None:
    editor = open_editor()
    editor.set_value("population_type", "1")
    holder = language()
    try:
        holder.set_lang("en")
        assert editor.body.label("name").text().startswith("Name")
        assert editor.save_button.text() == "Save draft"
        assert (
            editor.widget("population_type")
            .combo.currentText()
            .endswith("Registered (hukou) resident")
        )
        editor.complete()
        assert "required" in editor.message("name")
    finally:
        holder.set_lang("zh")
    assert editor.save_button.text() == "保存草稿"
    assert "必填" in editor.message("name")


@pytest.mark.parametrize("switch", [False, True], ids=["same_language", "switched"])
def test_a_language_switch_keeps_what_is_being_typed_in_a_code_picker(
    qtbot, open_editor, switch: bool
) -> None:
    """The worker types a name into 民族 and, before leaving the field, switches the language
    (View menu: the field keeps the focus); leaving it then takes what was typed."""
    editor = open_editor()
    target = editor.widget("ethnicity").focus_target()
    editor.scroll.ensureWidgetVisible(target)
    qtbot.mouseClick(target, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: focused() is target)
    type_text(qtbot, target, "维吾尔族")
    if switch:
        language().set_lang("en")
    # leave the field (the key goes where a real one goes: the open list if there is one)
    qtbot.keyClick(QApplication.activePopupWidget() or focused(), Qt.Key.Key_Tab)
    assert editor.values().get("ethnicity") == "05"


def test_every_form_opens_with_defaults_and_saves(
    qtbot, open_editor, store: Store, formset: FormSet
) -> None:
    for form_id, form in formset.forms.items():
        editor = open_editor(form_id)
        assert set(editor.body.widgets) == set(form.fields)  # a widget for every field, by type
        defaults = {f.id for f in form.fields.values() if f.default is not None}
        assert defaults <= set(editor.values())
        assert not editor.is_dirty()  # defaults are not unsaved changes
        record_id = editor.save_draft()
        assert store.get(record_id).form == form_id


def test_unknown_stored_keys_survive_an_edit(qtbot, open_editor, store: Store) -> None:
    existing = store.save("resident", {**factories.resident(), "legacy_note": "旧版字段"})
    editor = open_editor(record_id=existing.id)
    editor.set_value("phone", "13900139000")
    editor.save_draft()
    assert store.get(existing.id).data["legacy_note"] == "旧版字段"


def test_id_checks_use_the_project_rules(qtbot, open_editor) -> None:
    editor = open_editor()
    fifteen = "330106850615123"  # a legacy 15-digit number is upgraded
    editor.set_value("id_number", fifteen)
    assert editor.values()["id_number"] == idnumber.upgrade_15(fifteen)


def test_a_point_outside_the_grid_warns_but_does_not_block(open_editor, store: Store) -> None:
    from app.core.store import Grid

    square = [(120.0, 30.0), (120.01, 30.0), (120.01, 30.01), (120.0, 30.01)]
    store.put_grid(Grid("G-SQ", "方格网格", "C1", "社区", polygon=square))
    editor = open_editor("house")
    editor.set_value("grid", "G-SQ")
    editor.set_value("location", {"lon": 120.005, "lat": 30.005})
    editor.complete()  # shows every message
    assert "网格" not in editor.message("location")
    editor.set_value("location", {"lon": 120.05, "lat": 30.05})
    assert "不在所属网格" in editor.message("location")
    stored = editor.values()["location"]
    assert stored["gk3"]["epsg"] == 4528  # zone 40 (central meridian 120°E), zone in easting
    assert not any(i.field == "location" for i in editor.issues())  # a warning, not an error


def test_a_value_the_platform_refuses_is_said_at_the_save_and_nothing_is_saved(
    qtbot, open_editor, store: Store
) -> None:
    """A draft saves whatever its errors, but not a value every sync would have refused (over
    the platform's 10 000 characters): the save says which field and why, keeps the typing and
    goes to the field; shortened, it saves."""
    editor = open_editor()
    fill_valid(editor, name="赵六", seq=77)
    editor.set_value("workplace", "校" * 10_001)
    press(qtbot, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert editor.record_id is None
    assert "服务处所" in editor.status_label.text() and "10000" in editor.status_label.text()
    assert field_with_focus(editor) == "workplace"
    assert editor.values()["workplace"] == "校" * 10_001  # the typing is kept
    editor.set_value("workplace", "校" * 10_000)
    press(qtbot, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert editor.record_id is not None
    assert store.get(editor.record_id).data["workplace"] == "校" * 10_000


def test_a_supervisors_different_pulled_while_the_editor_is_open_stops_the_banner(
    qtbot, open_editor, store: Store
) -> None:
    """A sync that brings a supervisor's "two people" decision (PROTOCOL.md §9.2) while the
    record is open: the banner asks again after the sync and no longer names the other."""
    from sync.protocol import PullResponse
    from sync.replica import apply_pull

    existing = store.save("resident", factories.resident(), status="complete")
    other = store.save("resident", factories.resident(seq=125), status="complete")
    editor = open_editor(record_id=other.id)
    editor.set_value("name", "张三")
    editor.run_duplicate_check()
    assert editor.banner.isVisible() and editor.banner_button("different", existing.id)
    pulled = {"record_id": other.id, "other_id": existing.id, "decided_by": "chen"}
    page = {"records": [], "aliases": [], "removed": [], "cursor": 9, "more": False}
    apply_pull(store, PullResponse.model_validate({**page, "not_duplicates": [pulled]}), "s|w")
    editor.recheck_duplicates()
    assert not editor.banner.isVisible()
    assert store.replica.pending_decisions(10) == []  # the platform's own: not sent back
