"""The household view (户): members, adding a resident, moving out, the one head."""

from __future__ import annotations

import datetime as dt

import pytest

from app.core.store import Grid, Store, browse
from app.ui.household import HouseholdView
from app.ui.window import MainWindow
from tests.factories import resident

GRID = "330106001001"
ADDRESS = "幸福路8号1栋101室"


@pytest.fixture
def house(store: Store) -> str:
    store.put_grid(Grid(GRID, "第一网格", "330106001", "幸福社区"))
    data = {
        "house_code": "H101",
        "address_text": ADDRESS,
        "grid": GRID,
        "building": "1栋",
        "owner_name": "业主",
    }
    return store.save("house", data, status="complete").id


def _person(
    store: Store, house: str, name: str, seq: int, relation: str, status: str = "complete"
) -> str:  # noqa: E501
    data = resident(name=name, seq=seq, grid=GRID, house_ref=house, household_relation=relation)
    return store.save("resident", data, status=status, author="seed").id


@pytest.fixture
def family(store: Store, house: str) -> dict[str, str]:
    return {
        "father": _person(store, house, "张建国", 1, "02"),
        "mother": _person(store, house, "李秀英", 2, "10"),
        "son": _person(store, house, "张小明", 3, "20", status="draft"),
    }


@pytest.fixture
def view(store: Store, house: str, family: dict[str, str], qtbot) -> HouseholdView:  # noqa: ANN001
    v = HouseholdView(store, house, lang="zh", author="W007")
    qtbot.addWidget(v)
    v.show()
    return v


def test_lists_current_residents_with_the_head_first(view: HouseholdView, family) -> None:  # noqa: ANN001
    assert view.member_ids()[0] == family["father"]
    assert set(view.member_ids()) == set(family.values())
    assert view.members_table.item(0, 1).text() == "户主"
    assert "张建国" in view.info_label.text() and "现居 3 人" in view.info_label.text()


def test_add_resident_is_prefilled_with_house_grid_and_address(
    view: HouseholdView, store: Store, house: str, qtbot
) -> None:  # noqa: ANN001, E501
    with qtbot.waitSignal(view.newRecordRequested) as blocker:
        view.add_button.click()
    form_id, prefill = blocker.args
    hf = browse.household_fields(store.formset)
    assert form_id == "resident"
    father = store.get(view.household.heads[0].id)
    assert prefill == {
        hf.house_ref: house,
        hf.grid: GRID,
        hf.address: ADDRESS,
        "residence_region": "330106",  # as the other residents give it
        "head_id_number": father.data["id_number"],  # the head's own ID, name and phone
        "head_name": "张建国",
        "head_phone": father.data["phone"],
        # what one 户口簿 gives all its members, as the head has it
        **{f: father.data[f] for f in store.formset.form("resident").roles.household},
    }
    new = store.save(
        "resident", {**prefill, "name": "张小红"}, author="W007"
    ).id  # as the editor would
    view.refresh()
    assert new in view.member_ids()


def test_move_out_keeps_the_record_and_history_and_hides_them(
    view: HouseholdView, store: Store, family, house: str
) -> None:  # noqa: ANN001, E501
    son = family["son"]
    view.select_member(son)
    view.ask_move_out_date = lambda member: dt.date(2025, 3, 1)  # the date the worker enters
    view.move_out_button.click()
    assert son not in view.member_ids()  # current residents only
    record = store.get(son)
    assert record is not None and not record.deleted
    assert record.data["moved_out_on"] == "2025-03-01"
    assert record.data["house_ref"] == house  # the residence ended; the link stays as history
    assert record.status == "draft"  # moving out does not change the record's status
    last = store.history(son)[-1]
    assert last.changes["moved_out_on"] == [None, "2025-03-01"] and last.author == "W007"
    view.show_moved.setChecked(True)
    assert son in view.member_ids()
    assert view.member(son).moved_out_on == "2025-03-01"
    view.select_member(son)
    assert view.move_back_button.isEnabled() and not view.move_out_button.isEnabled()
    view.move_back_button.click()
    assert "moved_out_on" not in store.get(son).data
    view.show_moved.setChecked(False)
    assert son in view.member_ids()


def test_moving_out_defaults_to_today_when_no_date_given(
    view: HouseholdView, store: Store, family
) -> None:  # noqa: ANN001, E501
    view.move_out(family["mother"])
    assert store.get(family["mother"]).data["moved_out_on"] == dt.date.today().isoformat()


def test_a_new_head_asks_what_the_old_head_becomes(
    view: HouseholdView, store: Store, family
) -> None:  # noqa: ANN001, E501
    asked: list[str] = []

    def answer(old):  # noqa: ANN001, ANN202
        asked.append(old.id)
        return "50"  # 父母

    view.ask_old_head_relation = answer
    view.select_member(family["son"])
    view.head_button.click()
    assert asked == [family["father"]]
    assert store.get(family["son"]).data["household_relation"] == "02"
    assert store.get(family["father"]).data["household_relation"] == "50"
    assert [m.id for m in view.household.heads] == [family["son"]]
    assert view.member_ids()[0] == family["son"]


def test_cancelling_the_question_changes_nobody(view: HouseholdView, store: Store, family) -> None:  # noqa: ANN001, E501
    before = {k: store.get(v).data["household_relation"] for k, v in family.items()}
    view.ask_old_head_relation = lambda old: None
    assert view.set_head(family["mother"]) is False
    assert {k: store.get(v).data["household_relation"] for k, v in family.items()} == before


def test_choosing_head_as_a_relation_goes_through_the_head_rule(
    view: HouseholdView, store: Store, family
) -> None:  # noqa: ANN001, E501
    view.ask_old_head_relation = lambda old: "10"
    view.set_relation(family["mother"], "02")
    heads = [m.id for m in view.household.heads]
    assert heads == [family["mother"]]
    assert store.get(family["father"]).data["household_relation"] == "10"


def test_a_moved_out_head_is_no_longer_head(view: HouseholdView, family) -> None:  # noqa: ANN001
    view.move_out(family["father"], dt.date(2024, 1, 1))
    assert view.household.heads == []
    assert "未设户主" in view.info_label.text()


# -- in the main window, with the real record editor -----------------------------------------


@pytest.fixture
def window(store: Store, family, qtbot):  # noqa: ANN001, ANN201
    w = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


def test_add_a_resident_from_the_household_in_the_window(
    window: MainWindow, store: Store, house: str, qtbot
) -> None:  # noqa: ANN001, E501
    view = window.open_household(house)
    assert view is not None
    view.add_button.click()
    editor = window.doc_tabs.currentWidget()
    assert editor is not view and editor in window.open_editors()
    values = editor.values()
    assert values["house_ref"] == house and values["grid"] == GRID
    assert values["residence_address"] == ADDRESS
    editor.set_value("name", "张小红")
    new_id = editor.save_draft()
    assert new_id in view.member_ids()  # the household refreshed on save
    assert store.get(new_id).created_by == window.author
    resident_list = window.lists["resident"]
    assert resident_list.row_of(new_id) is not None  # and the list shows it


def test_open_a_member_from_the_household(window: MainWindow, family, house: str) -> None:  # noqa: ANN001
    view = window.open_household(house)
    view.select_member(family["mother"])
    view.open_button.click()
    editor = window.doc_tabs.currentWidget()
    assert editor.record_id == family["mother"]
    view.open_button.click()  # the same record again: its tab comes forward, no second tab
    assert window.doc_tabs.count() == 2
