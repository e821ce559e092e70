"""我的任务 with real widgets over a real Store: the list with progress bars and overdue marks,
items door to door, an item's record opened with the task's fields highlighted and focused,
"unable" in two taps, progress moving offline at once, a collect task's new form, and the
main window's count of open items."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QProgressBar

from app.core.store import Store
from app.ui.i18n import language
from app.ui.mytasks import MyTasksView
from app.ui.window import MainWindow
from tests.factories import resident, task, task_item

GRID = "330106001001-01"
TODAY = dt.date(2026, 6, 1)


def _house(store: Store, building: str, room: str) -> str:
    data = {
        "house_code": f"H{building}{room}",
        "address_text": f"幸福路12号{building}{room}室",
        "grid": GRID,
        "building": building,
        "room": room,
    }
    return store.save("house", data, status="complete").id


@pytest.fixture
def people(store: Store) -> dict[str, str]:
    """Three 流动人口 without a phone in two buildings, and a verify task over them."""
    places = {"p1201": ("3栋", "1201"), "p501": ("3栋", "501"), "p101": ("10栋", "101")}
    ids = {}
    for n, (key, (building, room)) in enumerate(places.items()):
        house = _house(store, building, room)
        data = resident(seq=100 + n, population_type="2", phone=None, house_ref=house, grid=GRID)
        ids[key] = store.save("resident", data).id
    store.tasks.put_tasks(
        [
            task(id="later", title="核实流动人口电话", due="2026-12-31"),
            task(id="overdue", title="逾期任务", due="2026-05-01", priority=2),
        ]
    )
    store.tasks.put_items(
        [task_item(rid, id=f"i-{key}", task_id="later") for key, rid in ids.items()]
    )
    store.tasks.put_items([task_item(ids["p101"], id="i-old", task_id="overdue")])
    return ids


@pytest.fixture
def window(store: Store, people: dict[str, str], qtbot):  # noqa: ANN001, ANN201
    w = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(w)
    w.resize(1400, 860)
    w.show()
    yield w
    for editor in list(w._editors):
        editor.confirm_close = lambda _e: "discard"
    language().set_lang("zh")
    w.close()


def _open(window: MainWindow) -> MyTasksView:
    window.my_tasks.action.trigger()
    view = window.my_tasks.view
    assert view is not None and window.doc_tabs.currentWidget() is view
    view.today = TODAY
    view.refresh()
    return view


def _states(view: MyTasksView) -> list[str]:
    return [view.item_table.item(r, 3).text() for r in range(view.item_table.rowCount())]


def test_the_window_shows_the_count_of_open_items(window: MainWindow) -> None:
    assert window.my_tasks.action.text() == "我的任务（4）"
    assert window.my_tasks.action in window.sync_ctl.toolbar.actions()


def test_tasks_by_due_date_with_progress_bars_and_overdue_marked(window: MainWindow) -> None:
    view = _open(window)
    table = view.task_table
    assert [table.item(r, 0).text() for r in range(2)] == [
        "[核实] 逾期任务",
        "[核实] 核实流动人口电话",
    ]
    assert table.item(0, 4).text() == "已逾期" and table.item(1, 4).text() == "进行中"
    assert table.item(0, 1).foreground().color().name() == "#b3261e"
    assert table.item(0, 2).text() == "紧急"
    bar = table.cellWidget(1, 3)
    assert isinstance(bar, QProgressBar) and (bar.value(), bar.maximum()) == (0, 3)


def test_items_are_listed_by_building_and_room(window: MainWindow, qtbot) -> None:  # noqa: ANN001
    view = _open(window)
    qtbot.mouseClick(
        view.task_table.viewport(),
        Qt.MouseButton.LeftButton,
        pos=view.task_table.visualItemRect(view.task_table.item(1, 0)).center(),
    )
    assert view.stack.currentIndex() == 1 and view.task_id == "later"
    rows = [
        (view.item_table.item(r, 0).text(), view.item_table.item(r, 1).text())
        for r in range(view.item_table.rowCount())
    ]
    assert rows == [
        ("3栋", "幸福路12号3栋501室"),
        ("3栋", "幸福路12号3栋1201室"),
        ("10栋", "幸福路12号10栋101室"),
    ]
    assert "电话" in view.task_header.text()  # the task's field, by its label


def test_an_item_opens_with_the_task_fields_highlighted_and_the_first_focused(
    window: MainWindow,
    people: dict[str, str],
    qtbot,  # noqa: ANN001
) -> None:
    view = _open(window)
    view.open_task("later")
    view.item_table.selectRow(0)
    qtbot.mouseClick(view.open_button, Qt.MouseButton.LeftButton)
    editor = window.doc_tabs.currentWidget()
    assert editor.record_id == people["p501"]
    assert editor.body.label("phone").property("taskField") is True
    assert editor.body.label("name").property("taskField") is None
    qtbot.waitUntil(lambda: editor.widget("phone").isAncestorOf(QApplication.focusWidget()))


def test_saving_the_record_with_the_fields_filled_moves_progress_at_once(
    window: MainWindow,
    store: Store,
    qtbot,  # noqa: ANN001
) -> None:
    view = _open(window)
    view.open_task("later")
    editor = view.open_item(0)
    editor.set_value("phone", "13912345678")
    assert editor.save_draft() is not None
    assert window.my_tasks.action.text() == "我的任务（3）"
    window.my_tasks.open()
    assert view.task_summary.text() == "共 3 条：已完成 1，无法完成 0，待办 2"
    assert _states(view)[0] == "已完成（待同步）"
    assert [p.wire["state"] for p in store.tasks.pending()] == ["done"]


def test_unable_takes_two_taps(window: MainWindow, store: Store, qtbot) -> None:  # noqa: ANN001
    view = _open(window)
    view.open_task("later")
    view.item_table.selectRow(1)
    qtbot.mouseClick(view.unable_button, Qt.MouseButton.LeftButton)  # tap one
    assert view.unable_panel.isVisible()
    qtbot.mouseClick(view.unable_panel.buttons[1], Qt.MouseButton.LeftButton)  # tap two
    assert not view.unable_panel.isVisible()
    assert _states(view)[1] == "无法完成：拒绝配合（待同步）"
    assert view.task_summary.text() == "共 3 条：已完成 0，无法完成 1，待办 2"
    assert window.my_tasks.action.text() == "我的任务（3）"
    [pending] = store.tasks.pending()
    assert (pending.wire["state"], pending.wire["reason"]) == ("unable", "拒绝配合")


def test_a_done_item_is_not_marked_unable(window: MainWindow, store: Store, qtbot) -> None:  # noqa: ANN001
    view = _open(window)
    view.open_task("later")
    store.tasks.mark_done(view.items[0].id)
    pending = len(store.tasks.pending())
    view.refresh()
    view.item_table.selectRow(0)
    qtbot.mouseClick(view.unable_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(view.unable_panel.buttons[0], Qt.MouseButton.LeftButton)
    assert view.message.text() == "这一条已完成，无需标记无法完成"
    assert len(store.tasks.pending()) == pending and _states(view)[0].startswith("已完成")


def test_other_reason_is_typed_and_an_empty_one_says_what_to_fix(
    window: MainWindow,
    store: Store,
    qtbot,  # noqa: ANN001
) -> None:
    view = _open(window)
    view.open_task("later")
    view.item_table.selectRow(2)
    qtbot.mouseClick(view.unable_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(view.unable_panel.other_button, Qt.MouseButton.LeftButton)
    assert view.unable_panel.other_text.isVisible()
    qtbot.mouseClick(view.unable_panel.other_ok, Qt.MouseButton.LeftButton)
    assert "请选择或填写" in view.message.text() and "reason" in view.message.text()
    assert store.tasks.pending() == [] and _states(view)[2] == "待办"
    view.unable_panel.other_text.insert("门锁三次无人")  # as an input method commits it
    qtbot.keyClick(view.unable_panel.other_text, Qt.Key.Key_Return)
    assert _states(view)[2] == "无法完成：门锁三次无人（待同步）"


def test_a_collect_task_opens_a_new_form_in_its_grid(
    window: MainWindow,
    store: Store,
    qtbot,  # noqa: ANN001
) -> None:
    store.tasks.put_tasks(
        [
            task(
                id="collect",
                kind="collect",
                form="unit",
                fields=(),
                title="登记新市场的单位",
                target=2,
                issued_at="2000-01-01T00:00:00Z",
            )
        ]
    )
    view = _open(window)
    view.open_task("collect")
    assert view.new_button.isVisible() and not view.item_table.isVisible()
    qtbot.mouseClick(view.new_button, Qt.MouseButton.LeftButton)
    editor = window.doc_tabs.currentWidget()
    grid_field = store.formset.form("unit").roles.grid
    assert editor.form.id == "unit" and editor.values()[grid_field] == GRID
    editor.set_value("name", "新市场水果店")
    editor.save_draft()
    window.my_tasks.open()
    assert view.task_summary.text() == "已采集 1 条（目标 2）"


def test_the_view_switches_to_english_at_runtime(window: MainWindow) -> None:
    view = _open(window)
    view.open_task("later")
    window.set_language("en")
    assert window.my_tasks.action.text() == "My tasks (4)"
    assert window.doc_tabs.tabText(window.doc_tabs.indexOf(view)) == "My tasks"
    assert view.task_summary.text() == "3 items: 0 done, 0 unable, 3 open"
    assert view.unable_panel.buttons[0].text() == "No such person"
    assert view.item_table.horizontalHeaderItem(0).text() == "Building"
    view.show_list()
    assert view.task_table.item(0, 4).text() == "Overdue"


def test_an_open_task_that_leaves_the_device_says_why(window: MainWindow, store: Store) -> None:
    """A sync takes a task off the device while it is open (its grid was taken away or it was
    named to another worker, PROTOCOL.md §13.2): the view says so, not "cancelled"; a task
    that was cancelled still says cancelled."""
    view = _open(window)
    view.open_task("later")
    store.tasks.withdraw(["later"])
    window.my_tasks.refresh()
    assert view.message.text() == "这个任务已不再由您负责（网格已调整或已改派他人）"
    assert view.item_table.rowCount() == 0
    view.open_task("overdue")
    store.tasks.put_tasks([task(id="overdue", title="逾期任务", state="cancelled")])
    window.my_tasks.refresh()
    assert view.message.text() == "这个任务已被撤销"
