"""Mistakes can be undone: 迁出 with reason and destination, the selection staying put."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from app.core.store import Grid, Store
from app.ui.household import HouseholdView
from app.ui.move_out import MoveOutDialog
from tests.factories import resident

GRID = "330106001001"


@pytest.fixture
def house(store: Store) -> str:
    store.put_grid(Grid(GRID, "第一网格", "330106001", "幸福社区"))
    data = {"house_code": "H101", "address_text": "幸福路8号1栋101室", "grid": GRID}
    return store.save("house", data, status="complete").id


@pytest.fixture
def family(store: Store, house: str) -> list[str]:
    people = (("张建国", "02"), ("李秀英", "10"), ("张小明", "20"), ("张小红", "30"))
    return [
        store.save(
            "resident",
            resident(name=name, seq=n, grid=GRID, house_ref=house, household_relation=rel),
            status="complete",
        ).id
        for n, (name, rel) in enumerate(people, start=1)
    ]


@pytest.fixture
def view(store: Store, house: str, family: list[str], qtbot) -> HouseholdView:  # noqa: ANN001
    v = HouseholdView(store, house, lang="zh", author="W007")
    qtbot.addWidget(v)
    v.show()
    return v


def _answer_move_out(qtbot, steps: list) -> list[str]:  # noqa: ANN001
    """When the 迁出 dialog opens, run ``steps`` on it (each sees the dialog); the messages it
    showed are collected."""
    seen: list[str] = []

    def act() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, MoveOutDialog):
            QTimer.singleShot(20, act)
            return
        for step in steps:
            step(dialog)
            seen.append(dialog.message.text())

    QTimer.singleShot(0, act)
    return seen


def _ok(dialog: MoveOutDialog) -> None:
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()


def test_move_out_asks_reason_and_destination_and_keeps_them(
    view: HouseholdView, store: Store, family: list[str], qtbot
) -> None:  # noqa: ANN001
    son = family[2]
    view.select_member(son)

    def pick_reason(dialog: MoveOutDialog) -> None:
        dialog.reason.setCurrentIndex(dialog.reason.findData("02"))  # 迁往外地

    def type_destination(dialog: MoveOutDialog) -> None:
        dialog.destination.setFocus()
        qtbot.keyClicks(dialog.destination, "Shanghai Pudong")

    seen = _answer_move_out(qtbot, [_ok, pick_reason, _ok, type_destination, _ok])
    view.move_out_button.click()

    assert "请选择迁出原因" in seen[0]  # OK without a reason: told what to fix, still open
    assert "请填写去向" in seen[2]
    record = store.get(son)
    assert record.data["moved_out_reason"] == "02"
    assert record.data["moved_out_to"] == "Shanghai Pudong"
    assert record.data["moved_out_on"]
    last = store.history(son)[-1]
    assert last.changes["moved_out_reason"] == [None, "02"] and last.author == "W007"

    view.show_moved.setChecked(True)
    view.select_member(son)
    view.move_back_button.click()  # a mistake: back, and the reason and destination go too
    data = store.get(son).data
    assert not {"moved_out_on", "moved_out_reason", "moved_out_to"} & set(data)


def test_cancelling_the_move_out_changes_nothing(
    view: HouseholdView, store: Store, family: list[str], qtbot
) -> None:  # noqa: ANN001
    view.select_member(family[1])
    before = store.get(family[1]).data

    def cancel(dialog: MoveOutDialog) -> None:
        dialog.reject()

    _answer_move_out(qtbot, [cancel])
    view.move_out_button.click()

    assert store.get(family[1]).data == before and family[1] in view.member_ids()


def test_the_selection_stays_put_after_a_move_out(view: HouseholdView, family: list[str]) -> None:
    """It jumped to nothing (or the head at the top); the next person is where the eye is."""
    listed = view.member_ids()
    moved = listed[1]
    view.select_member(moved)

    view.move_out(moved)

    assert moved not in view.member_ids()
    assert view.selected_member() is not None
    assert view.selected_member().id == listed[2]  # the person after, now in that row
    assert view.members_table.currentRow() == 1


# -- quitting and many open tabs -------------------------------------------------------------


@pytest.fixture
def window(store: Store, qtbot):  # noqa: ANN001, ANN201
    from app.ui.window import MainWindow

    w = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(w)
    yield w
    w.confirm_quit = lambda titles: "discard"
    w.close()


def test_the_quit_prompt_names_the_unsaved_records_and_asks_once(
    window, store: Store, family: list[str], qtbot
) -> None:  # noqa: ANN001
    window.show()
    first = window.open_record(family[0])
    second = window.open_record(family[1])
    untouched = window.open_record(family[2])
    first.set_value("name", "张建军")
    second.set_value("former_name", "李秀")
    new = window.new_record("resident")
    new.set_value("name", "赵新")
    asked: list[list[str]] = []

    def answer(titles: list[str]) -> str:
        asked.append(titles)
        return "cancel"

    window.confirm_quit = answer
    assert not window.close()  # 取消: the window stays, nothing lost
    assert len(asked) == 1 and len(asked[0]) == 3, asked
    joined = " ".join(asked[0])
    assert "张建国" in joined and "李秀英" in joined and "实有人口" in joined
    assert "张小明" not in joined  # no unsaved change there
    assert first.is_dirty() and not first.is_closed()

    window.confirm_quit = lambda titles: "save"
    assert window.close()
    assert store.get(family[0]).data["name"] == "张建军"  # saved as drafts, once asked
    assert store.get(family[1]).data["former_name"] == "李秀"
    assert untouched.is_closed() and new.is_closed()


def test_many_open_records_do_not_push_the_tabs_off_screen(
    window, store: Store, house: str, qtbot
) -> None:  # noqa: ANN001
    ids = [
        store.save(
            "resident",
            resident(name=f"欧阳{n}号长名字居民", seq=20 + n, grid=GRID, house_ref=house),
            status="complete",
        ).id
        for n in range(14)
    ]
    window.resize(1366, 728)
    window.show()
    qtbot.waitExposed(window)
    for rid in ids:
        window.open_record(rid)
    qtbot.wait(50)

    assert window.width() <= 1366
    bar = window.doc_tabs.tabBar()
    right = bar.mapTo(window, bar.rect().topRight()).x()
    assert right <= window.width(), (right, window.width())
    assert window.doc_tabs.mapTo(window, window.doc_tabs.rect().topRight()).x() <= window.width()
    current = bar.tabRect(bar.currentIndex())
    assert bar.rect().contains(current)  # the record just opened is in view


# -- 作废 and reverting a field -------------------------------------------------------------


def test_void_asks_why_leaves_the_lists_and_keeps_the_history(
    store: Store, family: list[str], window, qtbot
) -> None:  # noqa: ANN001
    from app.core.store.writes import VOID_REASON

    window.show()
    model = window.lists["resident"]
    qtbot.waitUntil(lambda: not model.loading and model.rowCount() == 4, timeout=5000)
    wrong = family[3]
    editor = window.open_record(wrong)
    assert editor.void_button.isVisibleTo(editor)
    editor.ask_void_reason = lambda: None  # cancelled: nothing happens
    editor.void_button.click()
    assert not store.get(wrong).deleted and not editor.is_closed()

    editor.ask_void_reason = lambda: "duplicate"
    editor.void_button.click()

    record = store.get(wrong)
    assert record is not None and record.deleted  # a tombstone: data kept
    assert editor.is_closed()
    qtbot.waitUntil(lambda: not model.loading and model.rowCount() == 3, timeout=5000)
    assert wrong not in [model.summary(r).id for r in range(model.rowCount())]
    last = store.history(wrong)[-1]
    assert last.kind == "delete" and last.changes == {VOID_REASON: [None, "duplicate"]}
    ops = store.conn.execute(
        "SELECT kind, fields FROM outbox WHERE record_id = ? ORDER BY rowid DESC LIMIT 1", (wrong,)
    ).fetchone()
    assert ops[0] == "delete" and ops[1] in ("{}", None)  # syncs as a plain delete


def test_the_void_dialog_needs_a_reason(qtbot) -> None:  # noqa: ANN001
    from app.ui.editor.void import VoidDialog

    dialog = VoidDialog("张小红", "zh")
    qtbot.addWidget(dialog)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert "请选择作废原因" in dialog.message.text() and dialog.result() == 0
    dialog.reason.setCurrentIndex(dialog.reason.findData("mistake"))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.result() == VoidDialog.DialogCode.Accepted


def test_a_field_goes_back_to_an_earlier_value_from_the_history(
    window, store: Store, family: list[str], qtbot
) -> None:  # noqa: ANN001
    rid = family[0]
    editor = window.open_record(rid)
    editor.set_value("name", "张建军")  # a typo saved by mistake
    editor.save_draft()
    editor.show_history(True)
    panel = editor.history_panel
    row = next(
        panel.topLevelItem(i)
        for i in range(panel.topLevelItemCount())
        if panel.topLevelItem(i).text(2) == "姓名"
    )
    assert row.text(3) == "张建国" and row.text(4) == "张建军"

    panel.itemActivated.emit(row, 0)  # double-click / Enter on the row

    assert editor.values()["name"] == "张建国" and editor.is_dirty()
    editor.save_draft()
    assert store.get(rid).data["name"] == "张建国"
    assert [h.changes.get("name") for h in store.history(rid)][-2:] == [
        ["张建国", "张建军"],
        ["张建军", "张建国"],
    ]
