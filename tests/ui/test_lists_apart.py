"""Lists tell records apart (issue 16 item 4), with real widgets: residents show room, age,
gender and a masked ID tail; houses and addresses the distinguishing end of the address;
the conflict view shows whole values."""

from __future__ import annotations

from typing import Any

from app.ui.conflicts import ConflictView
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
