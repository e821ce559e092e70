"""The main window with real widgets over a real Store: search, filters, tree, settings."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.core.sortkey import sort_key
from app.core.store import Grid, Store, browse
from app.core.store.browse import Filters, Scope
from app.ui import navigation as nav
from app.ui import tasks
from app.ui.i18n import language
from app.ui.models import ListQuery, RecordListModel
from app.ui.settings import Settings, load_settings
from app.ui.style import is_touch_mode
from app.ui.window import MainWindow
from tests.factories import resident

COMMUNITY = "330106001"
G1, G2 = "330106001001", "330106001002"


def _house(store: Store, grid: str, building: str, room: str) -> str:
    data = {
        "house_code": f"H{grid}{building}{room}",
        "address_text": f"幸福路8号{building}{room}室",
        "grid": grid,
        "building": building,
        "room": room,
        "owner_name": "业主",
    }
    return store.save("house", data, status="complete").id


def build_community(store: Store) -> dict[str, str]:
    """Two grids, three buildings, four houses, four residents, one unit."""
    store.put_grid(Grid(G1, "第一网格", COMMUNITY, "幸福社区"))
    store.put_grid(Grid(G2, "第二网格", COMMUNITY, "幸福社区"))
    ids = {
        "h101": _house(store, G1, "1栋", "101"),
        "h102": _house(store, G1, "1栋", "102"),
        "h201": _house(store, G1, "2栋", "201"),
        "g2h": _house(store, G2, "1栋", "101"),
    }
    people = (
        ("张三", 1, "h101", "complete"),
        ("李四", 3, "h101", "draft"),
        ("王五", 5, "h201", "complete"),
        ("赵六", 7, "g2h", "complete"),
    )
    for name, seq, house, status in people:
        grid = G2 if house == "g2h" else G1
        data = resident(
            name=name,
            seq=seq,
            grid=grid,
            house_ref=ids[house],
            household_relation="02" if name == "张三" else "10",
        )
        ids[name] = store.save("resident", data, status=status).id
    ids["unit"] = store.save(
        "unit", {"name": "幸福便利店", "grid": G1, "house_ref": ids["h102"]}
    ).id
    return ids


@pytest.fixture
def community(store: Store) -> dict[str, str]:
    return build_community(store)


@pytest.fixture
def window(store: Store, community: dict[str, str], qtbot):  # noqa: ANN001, ANN201
    w = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(w)
    w.resize(1400, 860)
    w.show()
    yield w
    w.set_touch_mode(False)
    language().set_lang("zh")
    w.close()  # stops timers and background work before the store closes


def titles(model: RecordListModel) -> list[str]:
    return [model.summary(row).title for row in range(model.rowCount())]


def wait_counts(window: MainWindow, qtbot) -> None:  # noqa: ANN001
    qtbot.waitUntil(
        lambda: window.counts_settled and window._status_counts is not None, timeout=10_000
    )


# -- search ----------------------------------------------------------------------------------


def test_search_by_pinyin_initials_finds_the_person(window: MainWindow, qtbot) -> None:  # noqa: ANN001
    model = window.current_model()
    assert set(titles(model)) == {"张三", "李四", "王五", "赵六"}
    resets: list[int] = []
    model.modelReset.connect(lambda: resets.append(1))
    qtbot.keyClicks(window.search_box, "zs")  # 张三 by the initials of zhang san
    qtbot.waitUntil(lambda: titles(model) == ["张三"], timeout=5_000)
    assert len(resets) == 1  # debounced: one query for the two keystrokes


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("lisi", {"李四"}),  # full pinyin
        ("赵", {"赵六"}),  # the name itself
        ("13800138000", {"张三", "李四", "王五", "赵六"}),  # the phone everyone shares
    ],
)
def test_search_other_ways(window: MainWindow, qtbot, typed: str, expected: set[str]) -> None:  # noqa: ANN001
    window.search_box.setText(typed)
    qtbot.waitUntil(lambda: set(titles(window.current_model())) == expected, timeout=5_000)


def test_search_by_id_number_tail(window: MainWindow, store: Store, community, qtbot) -> None:  # noqa: ANN001
    tail = store.get(community["王五"]).data["id_number"][-6:]
    window.search_box.setText(tail)
    qtbot.waitUntil(lambda: titles(window.current_model()) == ["王五"], timeout=5_000)
    window.search_box.clear()  # clearing the search shows the whole list again
    qtbot.waitUntil(lambda: len(titles(window.current_model())) == 4, timeout=5_000)


def test_enter_opens_search_result_row_focus(window: MainWindow, qtbot) -> None:  # noqa: ANN001
    window.search_box.setText("ww")
    window.apply_search()
    assert titles(window.current_model()) == ["王五"]
    window.search_box.returnPressed.emit()  # Enter in the search moves into the list
    assert window.current_view().currentIndex().row() == 0


# -- filters ---------------------------------------------------------------------------------


def test_filters_narrow_the_list(window: MainWindow, store: Store, community, qtbot) -> None:  # noqa: ANN001
    store.conn.execute("UPDATE records SET dirty = 0 WHERE id = ?", (community["王五"],))  # synced
    store.conn.execute("UPDATE records SET conflict = '[]' WHERE id = ?", (community["赵六"],))
    store.decide_duplicate(community["李四"], community["张三"], "open_existing", author="t")
    window.current_model().reload()
    model = window.current_model()

    window.status_filter.setCurrentIndex(window.status_filter.findData("draft"))
    assert set(titles(model)) == {"李四"}
    window.status_filter.setCurrentIndex(window.status_filter.findData("complete"))
    assert set(titles(model)) == {"张三", "王五", "赵六"}
    window.dirty_filter.setChecked(True)  # complete AND changed since the last sync
    assert set(titles(model)) == {"张三", "赵六"}
    window.status_filter.setCurrentIndex(0)
    window.dirty_filter.setChecked(False)
    window.conflict_filter.setChecked(True)
    assert set(titles(model)) == {"赵六"}
    window.conflict_filter.setChecked(False)
    window.dup_filter.setChecked(True)
    assert set(titles(model)) == {"李四"}
    window.dup_filter.setChecked(False)
    assert len(titles(model)) == 4
    wait_counts(window, qtbot)
    assert window.conflicts_label.text() == "冲突 1"


def test_filters_apply_to_the_other_tabs_when_shown(window: MainWindow, qtbot) -> None:  # noqa: ANN001
    window.status_filter.setCurrentIndex(window.status_filter.findData("draft"))
    window.list_tabs.setCurrentIndex(2)  # 单位: the one unit is a draft
    assert titles(window.current_model()) == ["幸福便利店"]
    window.list_tabs.setCurrentIndex(1)  # 房屋: all complete
    assert titles(window.current_model()) == []


# -- the tree --------------------------------------------------------------------------------


def test_tree_grid_building_house_filters_and_opens_the_household(
    window: MainWindow, community, qtbot
) -> None:  # noqa: ANN001, E501
    tree, model = window.navigation, window.current_model()
    community_index = tree.find(nav.COMMUNITY, COMMUNITY)
    tree.select(community_index)
    assert len(titles(model)) == 4
    grid_index = tree.find(nav.GRID, G1, community_index)
    tree.select(grid_index)  # selecting and expanding fetches the buildings
    assert set(titles(model)) == {"张三", "李四", "王五"}
    building = tree.find(nav.BUILDING, "1栋", grid_index)
    assert building.isValid()
    assert tree.tree_model.rowCount(grid_index) == 2  # 1栋 and 2栋, no placeholder left
    tree.select(building)
    assert set(titles(model)) == {"张三", "李四"}  # residents of houses in 1栋 of grid 1
    window.list_tabs.setCurrentIndex(1)
    assert set(titles(window.current_model())) == {"幸福路8号1栋101室", "幸福路8号1栋102室"}
    house = tree.find(nav.HOUSE, community["h101"], building)
    assert house.data() == "101室"  # under its building a house shows only its room
    tree.select(house)
    view = window.household_view
    assert view is not None and window.doc_tabs.currentWidget() is view
    assert {view.member(i).title for i in view.member_ids()} == {"张三", "李四"}
    tree.select(tree.find(nav.HOUSE, community["h102"], building))  # the household tab is reused
    assert window.household_view is view and view.member_ids() == []
    assert [view.units_table.item(0, 0).text()] == ["幸福便利店"]
    assert window.doc_tabs.count() == 1


def test_buildings_sort_naturally(store: Store) -> None:
    for building in ("10栋", "2栋", "1栋"):
        _house(store, G1, building, "101")
    assert [b.name for b in browse.buildings(store, G1)] == ["1栋", "2栋", "10栋"]


# -- lazy model ------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(st.sampled_from(["张三", "李四", "王五", "阿", "Zoe"]), min_size=0, max_size=40),
    page=st.integers(min_value=1, max_value=9),
)
def test_paging_by_keyset_returns_every_row_once_in_order(
    qapp, names: list[str], page: int
) -> None:  # noqa: ANN001, E501
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "s.sqlite")
        try:
            rows = [(None, {"name": n, "grid": G1}, "draft") for n in names]
            ids = store.insert_many("resident", rows) if rows else []
            model = RecordListModel(store, "resident", page_size=page)
            model.set_query(ListQuery())
            while model.canFetchMore():
                model.fetchMore()
            expected = sorted(
                ((store.get(i).title, i) for i in ids), key=lambda t: (sort_key(t[0]), t[1])
            )
            assert [
                (model.summary(r).title, model.record_id(r)) for r in range(model.rowCount())
            ] == expected
        finally:
            store.close()


def test_search_pages_fetch_more_without_repeats(store: Store, qapp) -> None:  # noqa: ANN001
    store.insert_many(
        "resident",
        [(None, {"name": f"张{c}", "grid": G1}, "draft") for c in "一二三四五六七八九十"],
    )
    model = RecordListModel(store, "resident", page_size=3)
    model.set_query(ListQuery(text="zh"))
    assert model.rowCount() == 3 and model.canFetchMore()
    while model.canFetchMore():
        model.fetchMore()
    assert sorted(titles(model)) == sorted(f"张{c}" for c in "一二三四五六七八九十")


def test_scope_and_filters_in_browse_agree_with_count(store: Store, community) -> None:  # noqa: ANN001
    scope = Scope(grids=(G1,), building="1栋")
    listed = browse.page(store, "resident", scope, Filters(status="complete"))
    assert [s.title for s in listed] == ["张三"]
    assert browse.count(store, "resident", scope, Filters(status="complete")) == 1
    assert browse.count(store, "house", Scope(grids=(G1, G2))) == 4


# -- status bar, settings, touch mode, language ----------------------------------------------


def test_status_bar_counts_and_last_sync(window: MainWindow, store: Store, qtbot) -> None:  # noqa: ANN001
    wait_counts(window, qtbot)
    assert window.pending_label.text() == f"待同步 {browse.pending_count(store)}"
    assert browse.pending_count(store) == len(store.pending_ops(10_000)) == 9
    assert window.sync_label.text() == "从未同步"
    assert window.list_tabs.tabText(0) == "居民 (4)"
    store.set_meta("last_sync", "2026-01-02T03:04:05Z")
    window.refresh_counts()
    wait_counts(window, qtbot)
    assert window.sync_label.text() == "上次同步 2026-01-02 03:04"


def test_settings_are_stored_and_used(window: MainWindow, store: Store) -> None:
    window.apply_settings(Settings(worker_name="王芳", worker_id="W001", assigned_grids=(G1,)))
    again = load_settings(store)
    assert (again.worker_name, again.worker_id, again.assigned_grids) == ("王芳", "W001", (G1,))
    assert again.author == "W001" and window.author == "W001"
    assert window.worker_label.text() == "采集员 王芳"
    mine = window.navigation.find(nav.MINE, None)
    assert mine.isValid()
    assert window.navigation.scope_of(mine) == Scope(grids=(G1,))
    assert (
        window.navigation.find(nav.GRID, G1, window.navigation.find(nav.COMMUNITY, COMMUNITY))
        .data()
        .startswith("★")
    )


def test_touch_mode_enlarges_targets(window: MainWindow, store: Store, qtbot) -> None:  # noqa: ANN001
    view = window.current_view()
    row_before = view.rowHeight(0)
    search_before = window.search_box.sizeHint().height()
    button_before = window.new_button.sizeHint().height()
    window.act_touch.trigger()  # 视图 → 触屏模式
    qtbot.waitUntil(lambda: window.search_box.sizeHint().height() > search_before, timeout=2_000)
    assert is_touch_mode(QApplication.instance())
    assert view.rowHeight(0) > row_before
    assert window.new_button.sizeHint().height() >= 48 > button_before
    assert load_settings(store).touch_mode  # remembered for the next start
    window.act_touch.trigger()
    assert not is_touch_mode(QApplication.instance())
    assert view.rowHeight(0) == row_before


def test_language_switch_changes_window_texts(window: MainWindow, community, qtbot) -> None:  # noqa: ANN001
    window.open_household(community["h101"])
    assert window.file_menu.title() == "文件(&F)"
    assert window.list_tabs.tabText(0).startswith("居民")
    window.lang_actions["en"].trigger()
    assert window.lang == "en" and language().lang == "en"
    assert window.file_menu.title() == "&File"
    assert window.list_tabs.tabText(0).startswith("Residents")
    assert window.search_box.placeholderText().startswith("Search")
    assert window.status_filter.itemText(0) == "Any status"
    assert window.current_model().headerData(0, Qt.Orientation.Horizontal) == "Name"
    assert window.household_view.add_button.text() == "Add resident"
    assert window.doc_tabs.tabText(0).startswith("Household")
    assert window.navigation.tree_model.item(0).text() == "All"
    window.lang_actions["zh"].trigger()
    assert window.file_menu.title() == "文件(&F)"
    assert window.household_view.add_button.text() == "添加居民"


def test_ctrl_f_focuses_the_search(window: MainWindow, qtbot) -> None:  # noqa: ANN001
    window.activateWindow()
    qtbot.waitActive(window)
    window.current_view().setFocus()
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.search_box.hasFocus(), timeout=2_000)


# -- opening, creating and restoring records (with the real editor) --------------------------


def test_enter_on_a_row_opens_the_record(window: MainWindow, community, qtbot) -> None:  # noqa: ANN001
    view = window.current_view()
    row = window.current_model().row_of(community["王五"])
    view.setFocus()
    view.setCurrentIndex(window.current_model().index(row, 0))
    qtbot.keyClick(view, Qt.Key.Key_Return)
    editor = window.doc_tabs.currentWidget()
    assert editor.record_id == community["王五"]
    assert window.doc_tabs.tabText(window.doc_tabs.currentIndex()) == "王五"


def test_ctrl_n_creates_a_record_of_the_current_form_in_the_selected_grid(
    window: MainWindow, store: Store, qtbot
) -> None:  # noqa: ANN001, E501
    tree = window.navigation
    tree.select(tree.find(nav.GRID, G2, tree.find(nav.COMMUNITY, COMMUNITY)))
    window.list_tabs.setCurrentIndex(1)  # 房屋
    window.act_new.trigger()
    editor = window.doc_tabs.currentWidget()
    assert editor.form.id == "house"
    assert editor.values()["grid"] == G2
    editor.set_value("address_text", "幸福路9号")
    new_id = editor.save_draft()
    assert store.get(new_id).grid == G2
    assert window.lists["house"].row_of(new_id) is not None
    editor.request_close()
    assert window.doc_tabs.count() == 0 and not window.doc_tabs.isVisible()


def test_unsaved_forms_from_a_crash_are_offered_on_start(
    store: Store, community, qtbot, monkeypatch
) -> None:  # noqa: ANN001, E501
    store.autosave_put(
        "slot-1", "resident", community["李四"], {"name": "李四", "phone": "13912345678"}
    )
    store.autosave_put("slot-2", "resident", None, {"name": "新来的人"})
    monkeypatch.setattr(MainWindow, "ask_restore", lambda self, n: "restore" if n == 2 else "later")
    w = MainWindow(store, lang="zh")
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.doc_tabs.count() == 2, timeout=5_000)
    editors = w.open_editors()
    assert {e.record_id for e in editors} == {community["李四"], None}
    restored = next(e for e in editors if e.record_id == community["李四"])
    assert restored.values()["phone"] == "13912345678"  # what was typed, not what was saved
    new = next(e for e in editors if e.record_id is None)
    assert new.values()["name"] == "新来的人"
    for editor in editors:
        editor.confirm_close = lambda e: "discard"
    w.close()


def test_later_keeps_the_unsaved_forms(store: Store, community, qtbot, monkeypatch) -> None:  # noqa: ANN001, E501
    store.autosave_put("slot-1", "resident", None, {"name": "新来的人"})
    monkeypatch.setattr(MainWindow, "ask_restore", lambda self, n: "later")
    w = MainWindow(store, lang="zh")
    qtbot.addWidget(w)
    assert w.offer_restore() == 0
    assert w.doc_tabs.count() == 0 and len(store.autosaves()) == 1
    w.close()


# -- the duplicate banner of a new record, when the record it names changes ----------------


def _type_id_number(qtbot, editor, number: str) -> None:  # noqa: ANN001
    from tests.ui.test_fields import type_text

    target = editor.widget("id_number").focus_target()
    target.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is target)
    type_text(qtbot, target, number)


def test_the_banner_opens_a_known_record_the_platform_merged_since(
    window: MainWindow, store: Store, qtbot
) -> None:  # noqa: ANN001
    """The banner names 孙八; a sync (another process: the nightly ``gridcollect sync``, no
    word to the window) has the platform merge him into the record it holds, so his id
    changes. "Open the existing record" must open him under his new id, not do nothing."""
    from sync.replica.rekey import rewrite_id

    known = store.save("resident", resident(name="孙八", seq=81), status="complete")
    editor = window.new_record("resident")
    editor.confirm_close = lambda _e: "discard"
    _type_id_number(qtbot, editor, known.data["id_number"])
    qtbot.waitUntil(editor.banner.isVisible)
    held = "0190aaaa-0000-7000-8000-00000000a081"
    rewrite_id(store, known.id, held)
    qtbot.mouseClick(editor.banner_button("open", known.id), Qt.MouseButton.LeftButton)
    opened = window.doc_tabs.currentWidget()
    assert opened is not editor and opened.record_id == held
    opened.confirm_close = lambda _e: "discard"
    assert [d[:2] for d in store.decisions(editor.slot)] == [(held, "open_existing")]


def test_the_banner_forgets_a_record_voided_in_another_tab(
    window: MainWindow, store: Store, qtbot
) -> None:  # noqa: ANN001
    """A new record's banner says 孙八's ID number is already registered; 孙八 is voided in
    his own tab (a wrong record). The new record's banner must not go on saying so, nor
    offer to open a record that is gone."""
    known = store.save("resident", resident(name="孙八", seq=81), status="complete")
    editor = window.new_record("resident")
    editor.confirm_close = lambda _e: "discard"
    _type_id_number(qtbot, editor, known.data["id_number"])
    qtbot.waitUntil(editor.banner.isVisible)
    his = window.open_record(known.id)
    his.ask_void_reason = lambda: "mistake"
    qtbot.mouseClick(his.void_button, Qt.MouseButton.LeftButton)
    assert store.get(known.id).deleted
    window.doc_tabs.setCurrentWidget(editor)
    assert not editor.banner.isVisible()
    assert editor.duplicate_candidates() == []


def test_the_same_id_number_in_two_new_tabs_is_told_when_one_is_saved(
    window: MainWindow, store: Store, qtbot
) -> None:  # noqa: ANN001
    """Two new tabs, the same ID number typed in both; the first is saved. The second must
    say "already registered" then, not only if its number is typed again: its own draft
    save runs no check, and Complete checks only records never saved."""
    number = resident(seq=81)["id_number"]
    first, second = window.new_record("resident"), window.new_record("resident")
    for editor in (first, second):
        editor.confirm_close = lambda _e: "discard"
        window.doc_tabs.setCurrentWidget(editor)
        _type_id_number(qtbot, editor, number)
        qtbot.waitUntil(lambda e=editor: e.widget("id_number").value() == number)  # all keys in
        editor.set_value("name", "孙八")
    window.doc_tabs.setCurrentWidget(first)
    qtbot.wait(second.DEDUP_MS + 50)  # the worker moves to the first tab: both have asked
    assert not second.banner.isVisible()  # nothing registered yet
    qtbot.mouseClick(first.save_button, Qt.MouseButton.LeftButton)
    window.doc_tabs.setCurrentWidget(second)
    assert second.banner.isVisible()
    assert second.banner_button("open", first.record_id).isVisible()


# -- queries over the UI budget move to a worker ---------------------------------------------


@pytest.fixture
def crowd(store: Store) -> Store:
    rows = [
        (None, {"name": f"{s}{g}", "grid": G1 if i % 2 else G2}, "draft")
        for i, (s, g) in enumerate(
            (s, g)
            for s in "张王李赵刘陈杨黄"
            for g in "一二三四五六七八九十伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"
        )
    ]
    store.insert_many("resident", rows)
    return store


def test_a_query_over_budget_is_finished_by_a_worker(crowd: Store, qtbot) -> None:  # noqa: ANN001
    runner = tasks.TaskRunner(crowd.path, crowd.formset)
    slow = RecordListModel(crowd, "resident", page_size=50, runner=runner, budget=0.0)
    quick = RecordListModel(crowd, "resident", page_size=50)  # no runner: always in the UI thread
    quick.set_query(ListQuery(scope=Scope(grids=(G1,))))
    with qtbot.waitSignal(
        slow.loadingChanged, check_params_cb=lambda on: on is False, timeout=10_000
    ):
        slow.set_query(ListQuery(scope=Scope(grids=(G1,))))
        assert slow.loading and slow.rowCount() == 0 and not slow.canFetchMore()
    assert slow.ids() == quick.ids() and len(slow.ids()) == 50
    with qtbot.waitSignal(
        slow.loadingChanged, check_params_cb=lambda on: on is False, timeout=10_000
    ):
        slow.fetchMore()  # the next page goes to the worker too
    while quick.canFetchMore():
        quick.fetchMore()
    qtbot.waitUntil(lambda: not slow.loading)
    while slow.canFetchMore():
        slow.fetchMore()  # in the worker or, when quick enough, right here
        qtbot.waitUntil(lambda: not slow.loading, timeout=10_000)
    assert slow.ids() == quick.ids() and len(quick.ids()) == crowd.count("resident", grid=G1)
    runner.cancel_all()
    assert runner.wait(10)


def test_a_newer_query_wins_over_a_slow_older_one(crowd: Store, qtbot) -> None:  # noqa: ANN001
    runner = tasks.TaskRunner(crowd.path, crowd.formset, max_threads=1)
    model = RecordListModel(crowd, "resident", page_size=50, runner=runner, budget=0.0)
    model.set_query(ListQuery(scope=Scope(grids=(G2,))))
    model.set_query(ListQuery(text="wang"))  # typed on before the first one came back
    qtbot.waitUntil(lambda: not model.loading and runner.active == 0, timeout=10_000)
    assert model.rowCount() > 0
    assert all(t.startswith("王") for t in titles(model))
    runner.cancel_all()
    assert runner.wait(10)


def test_one_latin_letter_does_not_search_yet(window: MainWindow) -> None:
    window.search_box.setText("z")
    window.apply_search()
    assert len(titles(window.current_model())) == 4  # the list is unchanged
    window.search_box.setText("王")  # one Chinese character is a real query
    window.apply_search()
    assert titles(window.current_model()) == ["王五"]


# -- long work from the menus ----------------------------------------------------------------


def test_import_from_the_window_refreshes_lists_and_reports(
    window: MainWindow, store: Store, qtbot, tmp_path: Path
) -> None:  # noqa: ANN001, E501
    from PySide6.QtWidgets import QMessageBox

    from tests.bench.common import resident_rows, write_csv

    csv_file = write_csv(tmp_path / "import.csv", resident_rows(25, seed=9))
    handle = window.start_import(str(csv_file), "resident")
    assert handle.dialog.isVisible()  # type: ignore[attr-defined]  # progress with Cancel
    with qtbot.waitSignal(handle.done, timeout=20_000):
        pass
    qtbot.waitUntil(lambda: len(titles(window.current_model())) == 29, timeout=5_000)
    boxes = [b for b in window.findChildren(QMessageBox) if b.objectName() == "taskMessage"]
    assert boxes and "新建 25" in boxes[-1].text()
    boxes[-1].close()
    wait_counts(window, qtbot)
    assert window.list_tabs.tabText(0) == "居民 (29)"


def test_demo_data_from_the_menu_fills_an_empty_store(store: Store, qtbot) -> None:  # noqa: ANN001
    w = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(w)
    assert w.navigation.tree_model.rowCount() == 1  # only 全部
    handle = w.start_demo(300, seed=3)
    with qtbot.waitSignal(handle.done, timeout=60_000):
        pass
    assert handle.outcome == "finished"
    assert w.navigation.tree_model.rowCount() > 1  # communities appeared
    assert w.current_model().rowCount() == min(200, store.count("resident"))
    w.close()


def test_settings_dialog_edits_a_copy(window: MainWindow, store: Store) -> None:
    from app.ui.settings import SettingsDialog

    dialog = SettingsDialog(store, window.settings, "zh", window)
    dialog.name_edit.setText("李娜")
    dialog.grid_list.item(1).setCheckState(Qt.CheckState.Checked)
    dialog.touch_box.setChecked(True)
    dialog.lang_box.setCurrentIndex(dialog.lang_box.findData("en"))
    edited = dialog.settings()
    assert (edited.worker_name, edited.assigned_grids, edited.touch_mode, edited.lang) == (
        "李娜",
        (G2,),
        True,
        "en",
    )
    assert window.settings.worker_name == ""  # nothing applied before OK


def test_rebuilding_the_tree_keeps_what_the_worker_looks_at(window: MainWindow) -> None:
    tree = window.navigation
    grid = tree.find(nav.GRID, G1, tree.find(nav.COMMUNITY, COMMUNITY))
    tree.select(grid)
    assert window.current_model().query.scope == Scope(grids=(G1,))
    window.data_changed()  # e.g. after an import: the tree is read again
    assert window.current_model().query.scope == Scope(grids=(G1,))
    assert tree.currentIndex().data(nav.KEY_ROLE) == G1
    window.apply_settings(Settings(assigned_grids=(G1,)))  # adds 我的网格 above
    assert tree.currentIndex().data(nav.KEY_ROLE) == G1
    assert window.current_model().query.scope == Scope(grids=(G1,))


def test_build_opens_the_data_dir_with_the_saved_language(tmp_path: Path, qtbot) -> None:  # noqa: ANN001
    from app.ui.main import build
    from app.ui.settings import save_settings

    first = Store.open(tmp_path)
    save_settings(first, Settings(worker_name="王芳", lang="en"))
    first.close()
    _app, w = build(tmp_path, None)  # no language asked for: the saved one
    qtbot.addWidget(w)
    try:
        assert w.lang == "en" and w.file_menu.title() == "&File"
        assert w.settings.worker_name == "王芳"
    finally:
        w.close()
        w.store.close()
        language().set_lang("zh")


def test_a_keystroke_fetches_a_screenful_and_scrolling_the_rest(qapp, store: Store) -> None:  # noqa: ANN001
    """A search's first page is a screenful and a little more (50 rows: what a keystroke
    costs), the list's pages after it; a plain list's first page stays a whole page."""
    first = 50
    rows = [(None, {"name": f"张三{i:03d}", "grid": G1}, "draft") for i in range(300)]
    store.insert_many("resident", rows)
    model = RecordListModel(store, "resident", page_size=200)
    model.set_query(ListQuery(text="张三"))
    assert model.rowCount() == first and model.canFetchMore()
    model.fetchMore()
    assert model.rowCount() == first + 200
    model.fetchMore()
    assert model.rowCount() == 300 and not model.canFetchMore()
    assert len(set(model.ids())) == 300
    model.set_query(ListQuery())
    assert model.rowCount() == 200


def test_a_slow_open_shows_a_busy_dialog_that_goes_away(tmp_path: Path, qtbot, monkeypatch) -> None:  # noqa: ANN001
    """A store keyed or re-indexed after an update can take minutes once: the worker sees a
    dialog saying so instead of nothing; it closes when the store is open."""
    import time

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.ui import main

    Store.open(tmp_path).close()
    real_open = Store.open

    def slow_open(data_dir):  # noqa: ANN001, ANN202
        time.sleep(1.0)
        return real_open(data_dir)

    monkeypatch.setattr(main.Store, "open", staticmethod(slow_open))
    seen: list[str] = []

    def look() -> None:
        seen.extend(
            w.labelText()
            for w in QApplication.topLevelWidgets()
            if w.objectName() == "opening-store" and w.isVisible()
        )

    QTimer.singleShot(600, look)  # patience 0.2 s: the dialog is up by then
    store = main._OpenInBackground(tmp_path).result("zh", patience=0.2)
    try:
        assert seen and "正在打开并整理本机数据" in seen[0]
        qtbot.waitUntil(
            lambda: (
                not any(
                    w.objectName() == "opening-store" and w.isVisible()
                    for w in QApplication.topLevelWidgets()
                )
            ),
            timeout=2000,
        )
    finally:
        store.close()
