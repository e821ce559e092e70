# ruff: noqa: F811 - the platform fixture is imported, then requested by name
"""The sync action in the main window against the REAL platform server (tests/sync/conftest.py):
it pushes a local record and pulls, the status bar shows the sync, Cancel stops a run, and a
held lock is refused with a clear reason."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QPushButton

from app.core.store import Store
from app.ui import syncui
from app.ui.syncui import Credentials, SyncDialog, install_sync
from app.ui.window import MainWindow
from sync import replica
from sync.client import Client
from sync.lock import SyncLock
from sync.replica import credential
from tests.factories import resident
from tests.sync.conftest import PASSWORD, platform  # noqa: F401 - fixture
from tests.sync.devicekit import GRID_A, db_url  # noqa: F401 - fixture: SQLite only

WAIT_MS = 60_000


@pytest.fixture
def window(qtbot: Any, store: Store) -> MainWindow:
    win = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(win)
    yield win
    win.runner.cancel_all()
    win.runner.wait()


def _wait(qtbot: Any, handle: Any) -> None:
    qtbot.waitUntil(lambda: not handle.running, timeout=WAIT_MS)


def test_sync_action_pushes_and_pulls_through_the_real_server(
    qtbot: Any,
    window: MainWindow,
    store: Store,
    platform: Any,  # noqa: F811
) -> None:
    ctl = install_sync(window)
    assert ctl.action in window.menuBar().actions()[-1].menu().actions()
    local = store.save("resident", resident(seq=61, grid=GRID_A), status="complete")
    # another device puts a record on the platform that this one must pull
    other = platform.client("wang")
    remote_id = "0190aaaa-0000-7000-8000-000000000001"
    other.push(
        [other.op(remote_id, "create", {**resident(seq=63, grid=GRID_A), "_status": "draft"})]
    )
    assert replica.pending_count(store) == 1 and store.meta("last_sync") is None

    ctl.ask = lambda: Credentials(platform.url, "wang", PASSWORD)
    handle = ctl.trigger()
    assert handle is not None
    _wait(qtbot, handle)

    assert handle.outcome == "finished", ctl.message.text() if ctl.message else ""
    summary = ctl.last.summary
    assert summary.pushed == 1 and summary.applied == 1 and summary.pulled >= 2
    assert replica.pending_count(store) == 0
    assert store.get(local.id).server_version == 1 and not store.get(local.id).dirty
    assert store.get(remote_id) is not None  # pulled
    assert other.record(local.id).status_code == 200  # pushed: the platform has it
    assert store.meta("last_sync")
    assert window.sync_label.text() != "" and "从未" not in window.sync_label.text()
    # the scheduled headless sync can sign in with the credential this sync kept
    assert (credential.load(store, platform.url, "wang") or "").startswith("gcr1_")
    assert "同步完成" in ctl.message.text() or "推送 1" in ctl.message.text()
    assert not SyncLock(syncui.data_dir(store)).acquire().release()  # lock released


def test_cancel_stops_the_run_and_a_later_run_finishes(
    qtbot: Any,
    window: MainWindow,
    store: Store,
    platform: Any,
    monkeypatch: Any,  # noqa: F811
) -> None:
    ctl = install_sync(window)
    store.save("resident", resident(seq=71, grid=GRID_A), status="complete")
    logged_in, go = threading.Event(), threading.Event()
    real_login = Client.login

    def slow_login(self: Client, user: str, password: str) -> Any:
        answer = real_login(self, user, password)
        logged_in.set()
        go.wait(30)
        return answer

    monkeypatch.setattr(Client, "login", slow_login)
    handle = ctl.start(Credentials(platform.url, "wang", PASSWORD))
    assert handle is not None
    assert logged_in.wait(30)
    dialog = handle.dialog
    assert dialog.objectName() == "syncProgress"
    dialog.findChild(QPushButton).click()  # the progress dialog's Cancel button
    assert handle.cancel_requested
    go.set()
    _wait(qtbot, handle)
    assert handle.outcome == "cancelled"
    assert replica.pending_count(store) == 1 and store.meta("last_sync") is None

    go.set()
    again = ctl.start(Credentials(platform.url, "wang", PASSWORD))
    _wait(qtbot, again)
    assert again.outcome == "finished" and replica.pending_count(store) == 0


def test_held_lock_and_bad_password_are_told_not_run(
    qtbot: Any,
    window: MainWindow,
    store: Store,
    platform: Any,  # noqa: F811
) -> None:
    ctl = install_sync(window)
    with SyncLock(syncui.data_dir(store)):
        assert ctl.start(Credentials(platform.url, "wang", PASSWORD)) is None
    assert "另一个同步正在进行" in ctl.message.text()
    assert ctl.start(Credentials("http://192.0.2.10:8765", "wang", PASSWORD)) is None
    assert "https://" in ctl.message.text() and ctl.handle is None  # nothing was sent
    handle = ctl.start(Credentials(platform.url, "wang", "wrong"))
    _wait(qtbot, handle)
    assert ctl.last.summary is None and ctl.last.error_zh
    assert "同步失败" in ctl.message.text() and "wrong" not in ctl.message.text()


def test_dialog_remembers_server_user_and_password_only_when_ticked(
    qtbot: Any, store: Store
) -> None:
    dialog = SyncDialog(store, "en")
    qtbot.addWidget(dialog)
    dialog.server.setText(" http://127.0.0.1:9 ")
    dialog.user.setText("wang")
    dialog.password.setText("s3cret")
    assert dialog.credentials() == Credentials("http://127.0.0.1:9", "wang", "s3cret")
    dialog.keep()
    assert store.meta(syncui.PASSWORD_KEY) == ""
    dialog.remember.setChecked(True)
    dialog.keep()
    assert store.meta(syncui.PASSWORD_KEY) == "s3cret"  # inside the (encrypted) store, no file
    assert not Path(syncui.legacy_password_path(store)).exists()
    again = SyncDialog(store, "zh")
    qtbot.addWidget(again)
    assert (again.server.text(), again.user.text(), again.password.text()) == (
        "http://127.0.0.1:9",
        "wang",
        "s3cret",
    )
    assert again.remember.isChecked()
    again.remember.setChecked(False)
    again.keep()
    assert store.meta(syncui.PASSWORD_KEY) == ""
    again.password.clear()
    assert again.credentials() is None


def test_an_older_versions_password_file_moves_into_the_store(qtbot: Any, store: Store) -> None:
    legacy = Path(syncui.legacy_password_path(store))
    legacy.write_text("0ld-s3cret\n", encoding="utf-8")
    dialog = SyncDialog(store, "en")
    qtbot.addWidget(dialog)
    assert dialog.password.text() == "0ld-s3cret" and dialog.remember.isChecked()
    assert not legacy.exists() and store.meta(syncui.PASSWORD_KEY) == "0ld-s3cret"
