"""Address search (issue 16 item 1): any run of an address's characters, or the pinyin
initials of its words, finds the record in every list and in the 所在房屋 picker, nearest
first; an older store gets the index on first open."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QInputMethodEvent
from PySide6.QtWidgets import QApplication, QWidget

from app.core.store import Grid, Store, browse
from app.core.store.places import MIGRATION as ADDRESS_INDEX_STEP
from app.core.store.schema import MIGRATIONS
from app.ui import fields as F
from app.ui.models import RecordListModel
from app.ui.window import MainWindow
from tests.factories import resident, undo_record_keys_step, undo_sort_key_step
from tests.ui.test_fields import _focus


def type_text(qtbot, widget: QWidget, text: str) -> None:  # noqa: ANN001
    """Latin letters as key presses; anything with Chinese as one input-method commit (how a
    pinyin IME hands over "听涛雅苑1栋" typed in one go)."""
    if text.isascii():
        qtbot.keyClicks(widget, text)
        return
    event = QInputMethodEvent()
    event.setCommitString(text)
    QApplication.sendEvent(widget, event)


GRID = "330106001001"
STREET = "浙江省杭州市西湖区清溪街道云溪社区文澜街18号"
ESTATE = "听涛雅苑"


def _house(store: Store, room: str, building: str = "1栋", estate: str = ESTATE) -> str:
    address = f"{STREET}{estate}{building}1单元{room}室"
    data = {
        "house_code": f"H{estate}{building}{room}",
        "address_text": address,
        "grid": GRID,
        "building": building,
        "room": room,
        "owner_name": "业主",
    }
    return store.save("house", data, status="complete").id


@pytest.fixture
def street(store: Store) -> dict[str, str]:
    store.put_grid(Grid(GRID, "第一网格", "330106001", "云溪社区"))
    ids = {room: _house(store, room) for room in ("201", "202", "1201")}
    ids["other"] = _house(store, "201", estate="望湖花园")
    ids["张三"] = store.save(
        "resident",
        resident(
            name="张三",
            grid=GRID,
            house_ref=ids["201"],
            residence_address=f"{STREET}{ESTATE}1栋1单元201室",
        ),
    ).id
    ids["building"] = store.save(
        "address",
        {"address_code": "A1", "full_address": f"{STREET}{ESTATE}1栋", "grid": GRID},
    ).id
    return ids


@pytest.fixture
def window(store: Store, street: dict[str, str], qtbot):  # noqa: ANN001, ANN201
    w = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    yield w
    w.close()


def _ids(model: RecordListModel) -> list[str]:
    return [model.summary(row).id for row in range(model.rowCount())]


@pytest.mark.parametrize(
    ("form", "typed", "expected"),
    [
        ("house", ESTATE, ["201", "202", "1201"]),
        ("house", "文澜街", ["201", "202", "1201", "other"]),
        ("house", "听涛雅苑1栋1单元201", ["201"]),
        ("house", "ttya", ["201", "202", "1201"]),  # 听涛雅苑: initials
        ("house", "雅苑1栋", ["201", "202", "1201"]),  # a run from the middle
        ("resident", ESTATE, ["张三"]),
        ("resident", "ttya", ["张三"]),
        ("address", "文澜街", ["building"]),
    ],
)
def test_any_run_of_an_address_finds_it_in_every_list(  # noqa: PLR0913
    window: MainWindow, street: dict[str, str], qtbot, form: str, typed: str, expected: list[str]
) -> None:  # noqa: ANN001
    window.list_tabs.setCurrentIndex(("resident", "house", "unit", "address").index(form))
    window.search_box.setFocus()
    type_text(qtbot, window.search_box, typed)
    model = window.current_model()
    want = {street[k] for k in expected}
    qtbot.waitUntil(lambda: model.query.text == typed and set(_ids(model)) == want, timeout=5_000)


def test_nearest_match_comes_first(store: Store, street: dict[str, str]) -> None:
    """ "201" is in rooms 201 and 1201 of two estates: the shortest address holding it first,
    the longer 1201 after them."""
    found = [s.id for s in browse.search(store, "听涛雅苑1栋1单元201", "house")]
    assert found == [street["201"]]
    found = [s.id for s in browse.search(store, "201室", "house")]
    assert set(found[:2]) == {street["201"], street["other"]}
    assert found[2:] == [street["1201"]]


def test_two_characters_of_an_address_still_find_it(store: Store, street: dict[str, str]) -> None:
    """A run shorter than a trigram is looked up as the start of an address word."""
    assert {s.id for s in browse.search(store, "听涛", "house")} == {
        street[k] for k in ("201", "202", "1201")
    }
    assert {s.id for s in browse.search(store, "望湖", "house")} == {street["other"]}
    assert {s.id for s in browse.search(store, "12", "house")} == {street["1201"]}


def test_the_house_picker_finds_an_address_by_any_run(
    qtbot,  # noqa: ANN001
    store: Store,
    street: dict[str, str],
) -> None:
    picker = F.make_field_widget(
        store.formset.form("resident").fields["house_ref"], store.formset, "zh", store=store
    )
    qtbot.addWidget(picker)
    _focus(qtbot, picker.focus_target())
    type_text(qtbot, picker.focus_target(), "听涛雅苑1栋1单元201")
    qtbot.waitUntil(lambda: picker.completer.popup().isVisible())
    top = picker.completer.popup().model().index(0, 0).data(F.base.CODE_ROLE)
    assert top == street["201"]
    picker.focus_target().clear()
    type_text(qtbot, picker.focus_target(), "ttya")
    qtbot.waitUntil(lambda: picker.completer.popup().model().rowCount() == 3)
    with qtbot.waitSignal(picker.changed):
        qtbot.keyClick(picker.completer.popup(), Qt.Key.Key_Down)
        qtbot.keyClick(picker.completer.popup(), Qt.Key.Key_Return)
    assert picker.value() in {street["201"], street["202"], street["1201"]}


def test_an_older_store_gets_the_index_on_first_open(tmp_path: Path) -> None:
    store = Store(tmp_path / "old.sqlite")
    house = _house(store, "201")
    # the store as the previous version left it: no address index
    undo_sort_key_step(store.conn)  # the step after the index
    undo_record_keys_step(store.conn)
    store.conn.execute("DROP TABLE address_search")
    step = next(i for i, sql in enumerate(MIGRATIONS) if sql is ADDRESS_INDEX_STEP)
    store.conn.execute(f"PRAGMA user_version = {step}")  # later steps run again: idempotent
    store.close()
    upgraded = Store(tmp_path / "old.sqlite")
    assert [s.id for s in browse.search(upgraded, ESTATE, "house")] == [house]
    assert [s.id for s in upgraded.search("ttya", form="house")] == [house]
    upgraded.close()
