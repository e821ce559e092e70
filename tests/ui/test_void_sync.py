# ruff: noqa: F811 - the platform fixture is imported, then requested by name
"""作废 syncs as a delete the REAL platform keeps: a tombstone with its data, not a removal."""

from __future__ import annotations

from typing import Any

from app.core.store import Store
from app.ui.syncui import Credentials
from app.ui.window import MainWindow
from sync import replica
from tests.factories import resident
from tests.sync.conftest import PASSWORD, platform  # noqa: F401 - fixture
from tests.sync.devicekit import GRID_A, db_url  # noqa: F401 - fixture: SQLite only

WAIT_MS = 60_000


def _sync(qtbot: Any, window: MainWindow, url: str) -> None:
    handle = window.sync_ctl.start(Credentials(url, "wang", PASSWORD))
    assert handle is not None
    qtbot.waitUntil(lambda: not handle.running, timeout=WAIT_MS)
    assert handle.outcome == "finished"


def test_a_voided_record_reaches_the_platform_as_a_kept_tombstone(
    qtbot: Any,
    store: Store,
    platform: Any,  # noqa: F811
) -> None:
    window = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(window)
    try:
        record = store.save("resident", resident(seq=71, grid=GRID_A), status="complete")
        _sync(qtbot, window, platform.url)
        editor = window.open_record(record.id)
        editor.ask_void_reason = lambda: "duplicate"
        editor.void_button.click()
        assert replica.pending_count(store) == 1

        _sync(qtbot, window, platform.url)

        assert replica.pending_count(store) == 0
        answer = platform.client("wang").record(record.id)
        assert answer.status_code == 200, answer.text
        kept = answer.json()
        assert kept["deleted"] is True  # a tombstone the platform keeps …
        assert kept["data"]["name"] == record.data["name"]  # … with its data
    finally:
        window.runner.cancel_all()
        window.runner.wait()
        window.close()
