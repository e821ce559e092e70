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
