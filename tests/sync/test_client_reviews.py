"""Client.reviews / decide_review against the real server, and the supervisor's review view."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.ids import uuid7
from sync.client import Client, ProtocolError, Retry
from tests.factories import resident
from tests.sync.conftest import GRID_A, PASSWORD, Platform
from tests.sync.devicekit import db_url  # noqa: F401 - fixture: SQLite only


def _client(platform: Platform, user: str) -> Client:
    client = Client(platform.url, f"dev-{user}-{uuid7()}", retry=Retry(attempts=1))
    client.login(user, PASSWORD)
    return client


def _two_zhang_san(platform: Platform) -> tuple[str, str]:
    wang = platform.client("wang")
    a, b = uuid7(), uuid7()
    for rid, seq in ((a, 1), (b, 3)):
        data = {**resident(grid=GRID_A, seq=seq, name="张三"), "_status": "complete"}
        wang.push([wang.op(rid, "create", data)])
    return a, b


def test_supervisor_lists_and_decides_reviews(platform: Platform) -> None:
    a, b = _two_zhang_san(platform)
    boss = _client(platform, "chen")
    try:
        [item] = boss.reviews().reviews
        assert (item.record_id, item.other_id, item.state) == (b, a, "open")
        outcome = boss.decide_review(item.id, "same")
        assert outcome.merged_into == a and outcome.review.state == "same"
        assert boss.reviews().reviews == []
        assert [r.state for r in boss.reviews("all").reviews] == ["same"]
        with pytest.raises(ProtocolError) as err:
            boss.decide_review(item.id, "different")
        assert err.value.code == "already_decided"
    finally:
        boss.close()


def test_worker_may_not_review(platform: Platform) -> None:
    worker = _client(platform, "wang")
    try:
        with pytest.raises(ProtocolError) as err:
            worker.reviews()
        assert err.value.code == "forbidden"
    finally:
        worker.close()


def test_review_view_shows_and_decides(qtbot: Any, platform: Platform) -> None:
    from app.ui.reviews import ReviewView

    a, b = _two_zhang_san(platform)
    boss = _client(platform, "chen")
    try:
        view = ReviewView(boss, "zh")
        qtbot.addWidget(view)
        assert view.reload() and view.table.rowCount() == 1
        assert view.table.item(0, 0).text() == "张三" and "出生日期" in view.table.item(0, 2).text()
        outcome = view.decide(0, "different")
        assert outcome is not None and outcome.merged_into is None
        assert view.table.rowCount() == 0
        worker_view = ReviewView(_client(platform, "wang"), "en")
        qtbot.addWidget(worker_view)
        assert not worker_view.reload() and worker_view.status.text().startswith("Failed")
        worker_view.client.close()
    finally:
        boss.close()


def test_review_action_in_the_main_window(qtbot: Any, platform: Platform, store: Any) -> None:
    from app.ui.syncui import Credentials
    from app.ui.window import MainWindow

    _two_zhang_san(platform)
    win = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(win)
    win.reviews_action.ask = lambda: Credentials(platform.url, "chen", PASSWORD)
    view = win.reviews_action.open_view()
    assert view is not None and view.table.rowCount() == 1
    assert win.doc_tabs.currentWidget() is view
    win.reviews_action.ask = lambda: Credentials(platform.url, "chen", "wrong")
    from PySide6.QtWidgets import QMessageBox

    seen: list[str] = []
    original = QMessageBox.warning
    QMessageBox.warning = staticmethod(lambda *a, **k: seen.append(a[2]))  # type: ignore[assignment]
    try:
        assert win.reviews_action.open_view() is None
    finally:
        QMessageBox.warning = original  # type: ignore[assignment]
    assert seen and seen[0]
    view.client.close()
    win.runner.cancel_all()
    win.runner.wait()
