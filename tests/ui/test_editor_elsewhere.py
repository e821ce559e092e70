# ruff: noqa: F811 - the platform fixture is imported, then requested by name
"""An open editor tab and its record changed elsewhere: nothing saved elsewhere is undone.

Each source of change is driven through the real app: the household view's buttons, a sync
against the REAL platform server over loopback HTTP, a second editor tab, a scan of the
record's code, and a write by another process (a second connection to the same file, as the
nightly ``gridcollect sync`` or an import makes). The editor takes in the fields the person
has not touched, keeps the ones they changed, and asks about fields changed on both sides."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.core import qrpayload, scan
from app.core.forms import FormSet
from app.core.store import Grid, Store
from app.ui.editor import RecordEditor
from app.ui.syncui import Credentials, install_sync
from app.ui.window import MainWindow
from sync.client import Client
from sync.session import SyncSession
from tests.factories import resident
from tests.sync.conftest import PASSWORD, platform  # noqa: F401 - fixture
from tests.sync.devicekit import GRID_A, db_url, no_wait  # noqa: F401 - fixture: SQLite only
from tests.ui.test_fields import type_text

MOVED = "2026-12-06"
WAIT_MS = 60_000


@pytest.fixture
def house(store: Store) -> str:
    store.put_grid(Grid(GRID_A, "一网格", "330106001", "幸福社区"))
    data = {"house_code": "H101", "address_text": "幸福路8号1栋101室", "grid": GRID_A}
    return store.save("house", data, status="complete").id


@pytest.fixture
def person(store: Store, house: str) -> str:
    data = resident(name="张小明", seq=3, house_ref=house, household_relation="20")
    return store.save("resident", data, status="draft", author="seed").id


@pytest.fixture
def window(qtbot: Any, store: Store) -> Iterator[MainWindow]:
    win = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.runner.cancel_all()
    win.runner.wait()


@pytest.fixture
def elsewhere(store: Store, formset: FormSet) -> Iterator[Store]:
    """A second connection to the same data dir: another process writing the record."""
    other = Store(store.path, formset)
    yield other
    other.close()


def open_editor(window: MainWindow, record_id: str) -> RecordEditor:
    editor = window.open_record(record_id)
    assert isinstance(editor, RecordEditor)
    editor.confirm_close = lambda _e: "discard"
    return editor


def type_into(qtbot: Any, editor: RecordEditor, field_id: str, text: str) -> None:
    """Click into a text field, select what is there and type over it, as a person does."""
    window = editor.window()
    window.activateWindow()
    target = editor.widget(field_id).focus_target()
    editor.scroll.ensureWidgetVisible(target)
    qtbot.mouseClick(target, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is target)
    target.selectAll()
    type_text(qtbot, target, text)
    qtbot.keyClick(target, Qt.Key.Key_Tab)  # leave the field: it commits


def shown(editor: RecordEditor, field_id: str) -> object:
    return editor.widget(field_id).value()


def last_changes(store: Store, record_id: str) -> dict[str, list[Any]]:
    return store.history(record_id)[-1].changes


def sync_in_window(qtbot: Any, window: MainWindow, url: str) -> None:
    """The worker's sync from the window (wang signs in), waited for to its end."""
    ctl = install_sync(window)
    ctl.ask = lambda: Credentials(url, "wang", PASSWORD)
    handle = ctl.trigger()
    assert handle is not None
    qtbot.waitUntil(lambda: not handle.running, timeout=WAIT_MS)
    assert handle.outcome == "finished"


def restore_after_crash(qtbot: Any, store: Store) -> tuple[MainWindow, RecordEditor]:
    """The app started again after a crash: its one autosaved editor restored."""
    win = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(win)
    win.ask_restore = lambda _n: "restore"
    assert win.offer_restore() == 1
    restored = win.open_editors()[0]
    restored.confirm_close = lambda _e: "discard"
    return win, restored


def move_out_in_household(window: MainWindow, house: str, person: str) -> None:
    view = window.open_household(house)
    assert view is not None
    view.ask_move_out_date = lambda _member: dt.date.fromisoformat(MOVED)
    view.select_member(person)
    view.move_out_button.click()


# -- the household view ---------------------------------------------------------------------


def test_a_move_out_in_the_household_survives_the_stale_tab(
    qtbot: Any, window: MainWindow, store: Store, house: str, person: str
) -> None:
    """The issue's steps: open the resident, move them out in the household view, go back
    to the tab, change another field and complete."""
    editor = open_editor(window, person)
    move_out_in_household(window, house, person)
    assert store.get(person).data["moved_out_on"] == MOVED

    window.doc_tabs.setCurrentWidget(editor)
    assert shown(editor, "moved_out_on") == MOVED  # the tab shows it at once
    type_into(qtbot, editor, "phone", "13900139000")
    qtbot.mouseClick(editor.complete_button, Qt.MouseButton.LeftButton)

    record = store.get(person)
    assert record.status == "complete"
    assert record.data["moved_out_on"] == MOVED and record.data["phone"] == "13900139000"
    assert "moved_out_on" not in last_changes(store, person)  # never 2026-12-06 → (empty)
    assert not editor.is_dirty()


def test_typing_before_the_move_out_is_kept_with_it(
    qtbot: Any, window: MainWindow, store: Store, house: str, person: str
) -> None:
    editor = open_editor(window, person)
    type_into(qtbot, editor, "phone", "13900139000")  # typed, not saved
    move_out_in_household(window, house, person)
    window.doc_tabs.setCurrentWidget(editor)
    assert shown(editor, "moved_out_on") == MOVED
    assert shown(editor, "phone") == "13900139000" and editor.is_dirty()
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    data = store.get(person).data
    assert data["moved_out_on"] == MOVED and data["phone"] == "13900139000"
    assert set(last_changes(store, person)) == {"phone"}


# -- another process (no notice at all): the save itself merges ------------------------------


def test_a_save_never_writes_over_a_newer_stored_version(
    qtbot: Any, window: MainWindow, store: Store, elsewhere: Store, person: str
) -> None:
    editor = open_editor(window, person)
    type_into(qtbot, editor, "phone", "13900139000")
    stored = elsewhere.get(person)
    elsewhere.save(
        "resident", {**stored.data, "moved_out_on": MOVED}, record_id=person, status="draft"
    )
    assert shown(editor, "moved_out_on") is None  # nobody told the window
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    data = store.get(person).data
    assert data["moved_out_on"] == MOVED and data["phone"] == "13900139000"
    assert shown(editor, "moved_out_on") == MOVED and not editor.is_dirty()


def test_a_field_changed_on_both_sides_is_asked_about_before_saving(
    qtbot: Any, window: MainWindow, store: Store, elsewhere: Store, person: str
) -> None:
    editor = open_editor(window, person)
    type_into(qtbot, editor, "phone", "13900139000")
    stored = elsewhere.get(person)
    changed = {**stored.data, "phone": "13700137000", "moved_out_on": MOVED}
    elsewhere.save("resident", changed, record_id=person, status="draft")
    history = len(store.history(person))

    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    assert len(store.history(person)) == history  # nothing written over the newer version
    assert store.get(person).data["phone"] == "13700137000"
    panel = editor.conflict_panel
    assert panel.isVisible() and "13900139000" in _text(panel) and "13700137000" in _text(panel)
    assert "选择" in editor.status_label.text()
    assert shown(editor, "moved_out_on") == MOVED  # the other field came in meanwhile
    assert shown(editor, "phone") == "13900139000"  # the person's value until they choose

    qtbot.mouseClick(panel.button("phone", "theirs"), Qt.MouseButton.LeftButton)
    assert not panel.isVisible() and shown(editor, "phone") == "13700137000"
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    assert store.get(person).data["phone"] == "13700137000"


def test_keep_mine_writes_the_persons_value(
    qtbot: Any, window: MainWindow, store: Store, elsewhere: Store, person: str
) -> None:
    editor = open_editor(window, person)
    type_into(qtbot, editor, "phone", "13900139000")
    stored = elsewhere.get(person)
    elsewhere.save(
        "resident", {**stored.data, "phone": "13700137000"}, record_id=person, status="draft"
    )
    qtbot.mouseClick(editor.complete_button, Qt.MouseButton.LeftButton)
    assert store.get(person).status == "draft"  # not completed over the other version
    qtbot.mouseClick(editor.conflict_panel.button("phone", "mine"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(editor.complete_button, Qt.MouseButton.LeftButton)
    record = store.get(person)
    assert record.status == "complete" and record.data["phone"] == "13900139000"


def _text(widget: Any) -> str:
    from PySide6.QtWidgets import QLabel

    return " ".join(label.text() for label in widget.findChildren(QLabel))


# -- another tab ------------------------------------------------------------------------------


def test_a_save_in_another_tab_reaches_this_one(
    qtbot: Any, window: MainWindow, store: Store, person: str
) -> None:
    first = open_editor(window, person)
    second = RecordEditor(store, "resident", person, author=window.author, parent=window.doc_tabs)
    second.confirm_close = lambda _e: "discard"
    window._add_editor(second, person, "second")  # two tabs on one record
    type_into(qtbot, second, "phone", "13900139000")

    window.doc_tabs.setCurrentWidget(first)
    type_into(qtbot, first, "name", "张晓明")
    qtbot.mouseClick(first.save_button, Qt.MouseButton.LeftButton)
    assert store.get(person).data["name"] == "张晓明"

    window.doc_tabs.setCurrentWidget(second)
    assert shown(second, "name") == "张晓明" and shown(second, "phone") == "13900139000"
    qtbot.mouseClick(second.save_button, Qt.MouseButton.LeftButton)
    data = store.get(person).data
    assert data["name"] == "张晓明" and data["phone"] == "13900139000"
    assert "name" not in last_changes(store, person)


# -- a scan -------------------------------------------------------------------------------------


def test_a_scan_brings_the_tab_forward_with_the_stored_values(
    qtbot: Any,
    window: MainWindow,
    store: Store,
    elsewhere: Store,
    house: str,
    person: str,
) -> None:
    key = scan.deployment_key(store, create=True)
    record = store.get(person)
    code = qrpayload.encode(person, "resident", scan.record_version(store, record), key)
    editor = open_editor(window, person)
    window.open_household(house)  # the editor's tab is behind
    elsewhere.save("resident", {**record.data, "moved_out_on": MOVED}, record_id=person)
    results: list[Any] = []
    window.scan_ctl._notify = lambda result, _lines: results.append(result)

    window.scan_ctl.handle(code)
    assert window.doc_tabs.currentWidget() is editor
    assert results and results[0].code == "scan.changed"
    assert shown(editor, "moved_out_on") == MOVED  # what the scan says changed, shown
    type_into(qtbot, editor, "phone", "13900139000")
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    assert store.get(person).data["moved_out_on"] == MOVED


# -- a sync pull from the real platform ------------------------------------------------------


def _sync_direct(store: Store, url: str) -> None:
    client = Client(url, store.device_id, retry=no_wait())
    try:
        client.login("wang", PASSWORD)
        SyncSession(store, client).run()
    finally:
        client.close()


def test_a_sync_pull_reaches_the_open_editor(
    qtbot: Any,
    window: MainWindow,
    store: Store,
    platform: Any,
) -> None:
    rid = store.save("resident", resident(name="钱七", seq=71), status="complete").id
    _sync_direct(store, platform.url)
    assert store.get(rid).server_version == 1
    editor = open_editor(window, rid)
    type_into(qtbot, editor, "phone", "13900139000")
    type_into(qtbot, editor, "residence_address", "浙江省杭州市西湖区幸福路十二号五〇二室")

    other = platform.client("wang")  # another worker's device changes the same record
    other.push(
        [
            other.op(
                rid,
                "update",
                {"name": "钱小七", "phone": "13700137000"},
                base_version=1,
            )
        ]
    )
    sync_in_window(qtbot, window, platform.url)
    assert store.get(rid).data["name"] == "钱小七"  # pulled

    assert shown(editor, "name") == "钱小七"  # came in: the person had not touched it
    assert shown(editor, "residence_address").endswith("五〇二室")  # typed: kept
    assert set(editor.conflicts()) == {"phone"}  # both changed: asked
    qtbot.mouseClick(editor.conflict_panel.button("phone", "mine"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(editor.complete_button, Qt.MouseButton.LeftButton)
    data = store.get(rid).data
    assert data["name"] == "钱小七" and data["phone"] == "13900139000"
    assert data["residence_address"].endswith("五〇二室")
    assert "name" not in last_changes(store, rid)


# -- a crash, then the record changed before the tab is restored --------------------------------


def test_a_restored_tab_rebases_the_typing_onto_what_was_saved_since(
    qtbot: Any, store: Store, elsewhere: Store, person: str
) -> None:
    """The autosave holds every field as typed; restoring it over a record saved since (a
    sync, the household view) must not bring the old values back."""
    editor = RecordEditor(store, "resident", person, author="W007")
    editor.set_value("phone", "13900139000")  # as typed
    editor.autosave_now()
    shiboken6.delete(editor)  # the app dies: no close, no save
    stored = elsewhere.get(person)
    elsewhere.save("resident", {**stored.data, "moved_out_on": MOVED}, record_id=person)

    win, restored = restore_after_crash(qtbot, store)
    assert shown(restored, "moved_out_on") == MOVED and shown(restored, "phone") == "13900139000"
    qtbot.mouseClick(restored.save_button, Qt.MouseButton.LeftButton)
    data = store.get(person).data
    assert data["moved_out_on"] == MOVED and data["phone"] == "13900139000"
    assert set(last_changes(store, person)) == {"phone"}


# -- deleted elsewhere while being edited ----------------------------------------------------


@pytest.mark.parametrize("side", ["mine", "theirs"])
def test_a_record_deleted_elsewhere_is_asked_about(
    qtbot: Any, window: MainWindow, store: Store, elsewhere: Store, person: str, side: str
) -> None:
    """Update versus delete is a choice, as in sync (PROTOCOL.md §6): keep the record with
    the typing, or accept the deletion and drop the typing."""
    editor = open_editor(window, person)
    type_into(qtbot, editor, "phone", "13900139000")
    elsewhere.delete(person)
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    assert store.get(person).deleted  # not restored behind the person's back
    assert "删除" in _text(editor.conflict_panel)
    qtbot.mouseClick(editor.conflict_panel.button("_deleted", side), Qt.MouseButton.LeftButton)
    if side == "theirs":
        assert editor.is_closed() and editor not in window.open_editors()
        assert store.get(person).deleted and store.autosaves() == []
        return
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    record = store.get(person)
    assert not record.deleted and record.data["phone"] == "13900139000"


# -- the platform merged the open record into the one it holds (its id changed) --------------


@pytest.mark.parametrize("held_here", [False, True], ids=["renamed", "folded"])
def test_an_open_record_the_platform_merged_keeps_its_typing_on_the_held_record(
    qtbot: Any, window: MainWindow, store: Store, platform: Any, held_here: bool
) -> None:
    """The worker saved a draft of a person the platform already holds and kept the tab open;
    a sync merges it into the held record (``merged_into``: the device renames it, or folds it
    into its copy of the held one). What the worker types next must be saved on that record,
    not under the old id as a second one."""
    other = platform.client("wang")  # another worker registered the person first
    held = "0190aaaa-0000-7000-8000-00000000a081"
    answer = other.push([other.op(held, "create", resident(name="孙八", seq=81))])
    assert answer[0]["status"] == "applied"
    if held_here:
        _sync_direct(store, platform.url)
        assert store.get(held) is not None
    mine = store.save("resident", resident(name="孙八", seq=81), status="draft").id
    editor = open_editor(window, mine)
    sync_in_window(qtbot, window, platform.url)
    assert store.get(mine) is None and store.get(held) is not None  # renamed by the push

    assert window.open_record(held) is editor  # its tab, not a second one
    type_into(qtbot, editor, "phone", "13900139000")
    assert [row.record_id for row in store.autosaves()] == [held]  # a crash restores it there
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    assert store.get(held).data["phone"] == "13900139000"  # the typing is on the person
    assert store.get(mine) is None  # not a second record under the old id
    assert store.count("resident") == 1
    assert store.autosaves() == []


def test_a_crash_after_another_process_merged_the_record_restores_onto_the_held_one(
    qtbot: Any, store: Store, elsewhere: Store, person: str
) -> None:
    """The nightly ``gridcollect sync`` (another process, no notice to the window) has the
    platform merge the open record into the one it holds; the editor goes on autosaving,
    then the app dies. Restoring must bring the typing onto the held record, not make a
    second one under the old id."""
    from sync.replica.rekey import rewrite_id

    editor = RecordEditor(store, "resident", person, author="W007")
    editor.set_value("phone", "13900139000")
    editor.autosave_now()
    held = "0190aaaa-0000-7000-8000-00000000b001"
    rewrite_id(elsewhere, person, held)  # the push's answer: merged_into
    editor.set_value("residence_address", "浙江省杭州市西湖区幸福路十二号五〇二室")
    editor.autosave_now()  # still typing: nothing told the editor
    shiboken6.delete(editor)  # the app dies: no close, no save

    win, restored = restore_after_crash(qtbot, store)
    win.show()
    qtbot.waitExposed(win)
    assert restored.save_button.isVisible()
    qtbot.mouseClick(restored.save_button, Qt.MouseButton.LeftButton)
    data = store.get(held).data
    assert data["phone"] == "13900139000" and data["residence_address"].endswith("五〇二室")
    assert store.get(person) is None and store.count("resident") == 1
    assert store.autosaves() == []
