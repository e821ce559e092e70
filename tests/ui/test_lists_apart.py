"""Lists tell records apart (issue 16 item 4), with real widgets: residents show room, age,
gender and a masked ID tail; houses and addresses the distinguishing end of the address;
the conflict view shows whole values."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from PySide6.QtCore import Qt

from app.core.store import Grid, Store
from app.ui.conflicts import ConflictView
from app.ui.models import COLUMNS
from app.ui.window import MainWindow
from tests.factories import resident
from tests.sync.conftest import platform  # noqa: F401 - fixture
from tests.sync.devicekit import db_url  # noqa: F401 - fixture
from tests.ui.test_conflicts import conflicted  # noqa: F401 - fixture


def test_the_conflict_view_shows_whole_phone_numbers(qtbot: Any, conflicted: Any) -> None:  # noqa: F811
    _a, b, _record_id = conflicted
    view = ConflictView(b.store, "zh", author="wang")
    qtbot.addWidget(view)
    view.resize(700, 600)  # a document tab beside the list on a 1366×768 laptop
    view.show()
    qtbot.waitExposed(view)
    fields = [e["field"] for e in view.entries]
    row = fields.index("phone")
    for column in (1, 2, 3):
        button = view.table.cellWidget(row, column)
        assert len(button.text()) == 11
        assert button.width() >= button.sizeHint().width(), button.text()  # not cut


GRID = "330106001001"
STREET = "浙江省杭州市西湖区清溪街道云溪社区秋实路18号"


@pytest.fixture
def two_zhang_wei(store: Store) -> dict[str, str]:
    """Two 张伟 in two rooms of one building, and their houses."""
    store.put_grid(Grid(GRID, "第一网格", "330106001", "云溪社区"))
    ids: dict[str, str] = {}
    for room, born, seq in (("201", dt.date(1990, 3, 7), 11), ("1202", dt.date(1958, 1, 2), 24)):
        address = f"{STREET}听涛雅苑1栋1单元{room}室"
        ids[f"h{room}"] = store.save(
            "house",
            {"house_code": f"H{room}", "address_text": address, "grid": GRID, "owner_name": "甲"},
        ).id
        ids[room] = store.save(
            "resident",
            resident(
                name="张伟",
                birth=born,
                seq=seq,
                grid=GRID,
                house_ref=ids[f"h{room}"],
                residence_address=address,
            ),
        ).id
    return ids


def _age(born: dt.date) -> int:
    today = dt.date.today()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def test_lists_tell_two_zhang_wei_and_their_houses_apart(
    qtbot: Any, store: Store, two_zhang_wei: dict[str, str]
) -> None:
    window = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    qtbot.waitExposed(window)
    people = window.views["resident"]
    model = people.model()
    qtbot.waitUntil(lambda: model.rowCount() == 2)
    details = {model.record_id(r): model.index(r, COLUMNS.index("detail")).data() for r in range(2)}
    first = store.get(two_zhang_wei["201"]).data["id_number"]
    assert details[two_zhang_wei["201"]] == (
        f"听涛雅苑1栋1单元201室 · {_age(dt.date(1990, 3, 7))}岁 · 男性 · ****{first[-2:]}"
    )
    assert details[two_zhang_wei["1202"]].startswith(
        f"听涛雅苑1栋1单元1202室 · {_age(dt.date(1958, 1, 2))}岁 · 女性 · "
    )
    assert not people.isColumnHidden(COLUMNS.index("detail"))
    # houses: the distinguishing end of the address, the whole one as the tooltip
    window.list_tabs.setCurrentIndex(1)
    houses = window.views["house"].model()
    qtbot.waitUntil(lambda: houses.rowCount() == 2)
    titles = {houses.index(r, 0).data() for r in range(2)}
    assert titles == {"听涛雅苑1栋1单元201室", "听涛雅苑1栋1单元1202室"}
    tip = houses.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("浙江省杭州市")
    assert window.views["house"].isColumnHidden(COLUMNS.index("detail"))
    window.close()
