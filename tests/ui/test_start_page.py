# ruff: noqa: F811 - the platform fixture is imported, then requested by name
"""First run: an empty data dir opens the start page; the worker's name is set there; the
platform start runs the first sync against the REAL server, the demo start fills the lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from app.core.store import Store
from app.ui.main import FirstRunQuit, build
from app.ui.settings import load_settings
from app.ui.start_page import StartChoice, StartPage, is_first_run
from app.ui.syncui import SERVER_KEY, USER_KEY, load_password
from tests.factories import resident
from tests.sync.conftest import PASSWORD, platform  # noqa: F401 - fixture
from tests.sync.devicekit import GRID_A, db_url  # noqa: F401 - fixture: SQLite only

WAIT_MS = 60_000


def _drive(qtbot: Any, page: StartPage, **typed: str) -> StartChoice | None:
    """Type into the page's real widgets and click 开始, as a worker would."""
    qtbot.addWidget(page)
    if typed.pop("demo", ""):
        qtbot.mouseClick(page.demo_radio, Qt.MouseButton.LeftButton)
    for name, text in typed.items():
        edit = getattr(page, name)
        edit.setFocus()
        if text.isascii():
            qtbot.keyClicks(edit, text)
        else:  # Chinese arrives from the input method, not as key presses
            edit.insert(text)
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    return page.choice() if page.result() == StartPage.DialogCode.Accepted else None


def test_missing_name_or_login_is_said_and_nothing_is_stored(qtbot: Any, store: Store) -> None:
    page = StartPage(store, "zh")
    assert _drive(qtbot, page, server="http://127.0.0.1:9", user="wang") is None
    assert (
        "请填写采集员姓名" in page.message.text() and "Enter your name" not in page.message.text()
    )
    page.name.setText("王小明")
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    assert "请填写服务器地址、用户名和密码" in page.message.text()
    page.password.setText("pw")
    page.server.setText("grid.example.cn")
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    assert "http://" in page.message.text() and page.result() != StartPage.DialogCode.Accepted
    assert store.meta(SERVER_KEY) is None and store.meta(USER_KEY) is None


def test_an_empty_data_dir_asks_and_a_configured_one_does_not(tmp_path: Path, qtbot: Any) -> None:
    asked: list[str] = []

    def quit_page(store: Store, lang: str) -> None:
        asked.append(lang)
        return None

    with pytest.raises(FirstRunQuit):
        build(tmp_path / "empty", "zh", first_run=quit_page)
    assert asked == ["zh"]

    store = Store.open(tmp_path / "used")
    store.save("resident", resident(seq=3), status="draft")
    assert not is_first_run(store)
    store.close()
    _app, window = build(tmp_path / "used", "zh", first_run=quit_page)
    qtbot.addWidget(window)
    assert asked == ["zh"]  # not asked again: the data dir has records
    window.close()
    window.store.close()


def test_the_demo_start_sets_the_name_and_fills_the_lists(tmp_path: Path, qtbot: Any) -> None:
    def demo(store: Store, lang: str) -> StartChoice | None:
        return _drive(qtbot, StartPage(store, lang), name="李网格", demo="yes")

    _app, window = build(tmp_path, "zh", first_run=demo)
    qtbot.addWidget(window)
    try:
        assert window.settings.worker_name == "李网格"
        assert load_settings(window.store).worker_name == "李网格"  # saved, not just shown
        qtbot.waitUntil(lambda: window.first_run_handle is not None, timeout=5000)
        qtbot.waitUntil(lambda: not window.first_run_handle.running, timeout=WAIT_MS)
        assert window.first_run_handle.outcome == "finished"
        assert window.store.count() > 100 and window.store.grids()
    finally:
        window.close()
        window.store.close()


def test_the_platform_start_runs_the_first_sync_with_progress(
    tmp_path: Path,
    qtbot: Any,
    platform: Any,  # noqa: F811
) -> None:
    other = platform.client("wang")
    remote_id = "0190aaaa-0000-7000-8000-0000000000f1"
    other.push(
        [other.op(remote_id, "create", {**resident(seq=65, grid=GRID_A), "_status": "draft"})]
    )

    def connect(store: Store, lang: str) -> StartChoice | None:
        return _drive(
            qtbot,
            StartPage(store, lang),
            name="王小明",
            server=platform.url,
            user="wang",
            password=PASSWORD,
        )

    _app, window = build(tmp_path, "zh", first_run=connect)
    qtbot.addWidget(window)
    try:
        qtbot.waitUntil(lambda: window.first_run_handle is not None, timeout=5000)
        handle = window.first_run_handle
        assert getattr(handle, "dialog", None) is not None  # the progress dialog
        qtbot.waitUntil(lambda: not handle.running, timeout=WAIT_MS)
        assert handle.outcome == "finished"
        store = window.store
        assert store.get(remote_id) is not None  # pulled by the first sync
        assert store.meta(SERVER_KEY) == platform.url and store.meta(USER_KEY) == "wang"
        assert load_password(store) == ""  # not ticked: not remembered
        assert window.settings.worker_name == "王小明"
    finally:
        window.close()
        window.store.close()
