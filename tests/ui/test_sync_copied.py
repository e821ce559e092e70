# ruff: noqa: F811 - the platform fixture is imported, then requested by name
"""The sync action on a data dir that is a copy of another installation's, against the REAL
platform server: the run says the laptop was registered as a new device, and the open window
numbers its next edits under the new id (issue 10 item 3)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from app.core.store import Store
from app.ui.syncui import Credentials, install_sync
from app.ui.window import MainWindow
from sync import replica
from sync.replica.identity import NOTICE
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


def test_copied_data_dir_is_told_and_the_window_uses_the_new_device_id(
    qtbot: Any,
    window: MainWindow,
    store: Store,
    platform: Any,  # noqa: F811
) -> None:
    old_id = store.device_id
    # the installation this data dir was copied from has logged in with the same id
    original = {"username": "wang", "password": PASSWORD, "device_id": old_id}
    resp = requests.post(
        f"{platform.url}/v1/login",
        json={**original, "installation": "the-original-laptop-0001"},
        timeout=30,
    )
    assert resp.status_code == 200 and resp.json()["device_status"] == "new"
    typed = store.save("resident", resident(seq=81, grid=GRID_A))

    ctl = install_sync(window)
    ctl.ask = lambda: Credentials(platform.url, "wang", PASSWORD)
    handle = ctl.trigger()
    assert handle is not None
    qtbot.waitUntil(lambda: not handle.running, timeout=WAIT_MS)

    assert handle.outcome == "finished", ctl.message.text() if ctl.message else ""
    assert ctl.last.summary.new_device and ctl.last.summary.applied == 1
    assert NOTICE[0] in ctl.message.text()
    assert store.device_id != old_id and not store.get(typed.id).dirty
    after = store.save("resident", resident(seq=83, grid=GRID_A))
    (op,) = [o for o in store.pending_ops() if o["record_id"] == after.id]
    assert op["op_id"].startswith(store.device_id + ":")
    assert replica.pending_count(store) == 1
