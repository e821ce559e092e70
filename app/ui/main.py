"""Start the desktop app (Qt lives only under app/ui and app/printing)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QApplication, QMessageBox

from app.core.store import Store
from app.core.store.schema import SchemaTooNewError
from app.ui.i18n import language

if TYPE_CHECKING:
    from app.ui.start_page import StartChoice
    from app.ui.window import MainWindow


def application() -> QApplication:
    """The QApplication (created once, reused by tests and tools)."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("GridCollect")
    app.setApplicationDisplayName("网格采集 GridCollect")
    app.setOrganizationName("GridCollect")
    return app  # type: ignore[return-value]


class FirstRunQuit(Exception):
    """The worker closed the first-run start page: there is nothing to open."""


FirstRun = Callable[[Store, str], "StartChoice | None"]


def build(
    data_dir: str | Path | None = None,
    lang: str | None = "zh",
    *,
    first_run: FirstRun | None = None,
) -> tuple[QApplication, MainWindow]:
    """Open the data dir and make the main window (not shown). ``lang=None``: the saved choice.

    An empty data dir (no records, grids, platform or worker) first asks ``first_run`` (the
    start page by default) who works here and whether to connect to a platform or open the
    demo; the window then starts that. Raises ``FirstRunQuit`` when the worker quits there.

    Opening is cheap on any size of store: the window fetches one page of one list and
    counts everything else in the background.
    """
    from app.ui.settings import load_settings, save_settings
    from app.ui.start_page import ask_start, is_first_run
    from app.ui.window import MainWindow

    app = application()
    store = Store.open(data_dir)  # the one place the app opens its store
    settings = load_settings(store)
    lang = lang or settings.lang
    choice = None
    if is_first_run(store) and not settings.worker_name:
        language().set_lang(lang)  # the start page's Qt buttons in the same language
        choice = (first_run or ask_start)(store, lang)
        if choice is None:
            store.close()
            raise FirstRunQuit()
        settings.worker_name = choice.worker_name
        save_settings(store, settings)
    window = MainWindow(store, lang=lang, settings=settings)
    if choice is not None:
        window.begin(choice)
    return app, window


def run(data_dir: str | Path | None = None, lang: str | None = "zh") -> int:
    """Create the QApplication and the main window; returns the exit code."""
    app = application()
    try:
        _, window = build(data_dir, lang)
    except SchemaTooNewError as exc:
        QMessageBox.critical(None, "网格采集 GridCollect", str(exc))
        return 2
    except FirstRunQuit:
        return 0
    if window.fit_to_screen():
        window.showMaximized()
    else:
        window.show()
    code = int(app.exec())
    window.store.close()
    return code
