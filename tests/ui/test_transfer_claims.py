"""Transfer claims (迁入/迁出) in the UI: the supervisor's review view shows where the person
comes from, and a rejected claim (迁入申请被驳回) reaches the worker's conflict view with its
reason. Real devices, the real platform server, a supervisor's real decision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.forms import FormSet
from app.ui.conflicts import ConflictView
from app.ui.reviews import ReviewView
from tests.factories import id_number, resident
from tests.sync.conftest import platform  # noqa: F401 - fixture
from tests.sync.devicekit import GRID_A, GRID_B, db_url, make_device  # noqa: F401


def test_a_rejected_transfer_says_why_in_the_conflict_view(
    qtbot: Any,
    platform: Any,  # noqa: F811
    tmp_path: Path,
    formset: FormSet,
) -> None:
    li = make_device(platform.url, tmp_path, formset, "li")
    wang = make_device(platform.url, tmp_path, formset, "wang")
    boss = make_device(platform.url, tmp_path, formset, "chen")
    try:
        number = id_number(seq=231)
        li.save("resident", resident(grid=GRID_B, seq=231, id_number=number), status="complete")
        li.sync()
        mine = wang.save("resident", resident(grid=GRID_A, seq=231, id_number=number))
        wang.sync()
        board = ReviewView(boss.client, "zh")
        qtbot.addWidget(board)
        assert board.reload() and board.table.rowCount() == 1
        assert board.table.item(0, 2).text().startswith("迁入申请")
        assert board.table.item(0, 3).text() == f"{GRID_B} → {GRID_A}"
        assert board.decide(0, "different") is not None
        assert wang.sync().open_conflicts == 1

        view = ConflictView(wang.store, "zh", author="wang")
        qtbot.addWidget(view)
        assert view.record_id == mine.id
        row = [e["field"] for e in view.entries].index("id_number")
        label = view.table.cellWidget(row, 0).text()
        assert "迁入申请被驳回" in label and "证件号码" in label
        assert view.table.cellWidget(row, 2).text() == number  # mine: the typed number
    finally:
        for device in (li, wang, boss):
            device.close()


def test_the_review_view_follows_the_windows_language(
    qtbot: Any,
    platform: Any,  # noqa: F811
    tmp_path: Path,
    formset: FormSet,
) -> None:
    """The supervisor's 重复审核 view, opened from the window's menu, kept its headers,
    buttons, reasons, status line and tab in the language it was opened in."""
    from app.ui.syncui import Credentials
    from app.ui.window import MainWindow
    from tests.sync.devicekit import PASSWORD

    li = make_device(platform.url, tmp_path, formset, "li")
    wang = make_device(platform.url, tmp_path, formset, "wang")
    boss = make_device(platform.url, tmp_path, formset, "chen")
    window = MainWindow(boss.store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(window)
    try:
        number = id_number(seq=232)
        li.save("resident", resident(grid=GRID_B, seq=232, id_number=number), status="complete")
        li.sync()
        wang.save("resident", resident(grid=GRID_A, seq=232, id_number=number))
        wang.sync()
        action = window.reviews_action
        action.ask = lambda: Credentials(platform.url, "chen", PASSWORD)
        view = action.open_view()
        assert isinstance(view, ReviewView) and view.table.rowCount() == 1
        tabs = window.doc_tabs
        assert tabs.tabText(tabs.indexOf(view)) == "重复审核"

        window.lang_actions["en"].trigger()
        assert action.text() == "Duplicate &review…"
        assert tabs.tabText(tabs.indexOf(view)) == "Duplicate review"
        headers = [view.table.horizontalHeaderItem(c).text() for c in range(4)]
        buttons = [b.text() for b in view.buttons.values()]
        texts = [*headers, *buttons, view.status.text(), view.table.item(0, 2).text()]
        assert all(t.isascii() for t in texts), texts
        assert view.status.text().startswith("1")  # the count, said again in English
        assert view.table.item(0, 3).text() == f"{GRID_B} → {GRID_A}"

        window.lang_actions["zh"].trigger()
        assert view.table.item(0, 2).text().startswith("迁入申请")
        assert tabs.tabText(tabs.indexOf(view)) == "重复审核"
    finally:
        window.lang_actions["zh"].trigger()
        view_client = getattr(locals().get("view"), "client", None)
        if view_client is not None:
            view_client.close()
        window.close()
        for device in (li, wang, boss):
            device.close()
