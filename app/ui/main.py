"""Start the desktop app (Qt lives only under app/ui and app/printing)."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QApplication, QMessageBox

from app.core.store import Store, driver
from app.core.store.schema import SchemaTooNewError
from app.ui.i18n import language, tr

log = logging.getLogger(__name__)

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


def _import_window() -> None:
    """Load the main window's modules (~0.5 s) while the passphrase dialog waits for a person."""
    import app.ui.settings  # noqa: F401
    import app.ui.window  # noqa: F401


WAIT_DIALOG_AFTER = 0.8  # seconds: a normal open (even of 1.6 M records) is done by then


class _OpenInBackground:
    """``Store.open`` on a thread: deriving the key from the passphrase (scrypt, ~0.4 s,
    outside the GIL) overlaps the import of the main window's modules."""

    def __init__(self, data_dir: str | Path | None) -> None:
        self._store: Store | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(data_dir,), daemon=True)
        self._thread.start()

    def _run(self, data_dir: str | Path | None) -> None:
        try:
            self._store = Store.open(data_dir)
        except BaseException as exc:  # handed to the caller's thread
            self._error = exc

    def result(self, lang: str = "zh", patience: float = WAIT_DIALOG_AFTER) -> Store:
        """The opened store; past ``patience`` seconds a busy dialog says what is going on
        (a store keyed or re-indexed after an update can take minutes once)."""
        self._thread.join(timeout=patience)
        if self._thread.is_alive():
            _wait_visibly(self._thread, lang)
        if self._error is not None:
            raise self._error
        assert self._store is not None
        return self._store


def _wait_visibly(thread: threading.Thread, lang: str) -> None:
    from PySide6.QtCore import QEventLoop, Qt
    from PySide6.QtWidgets import QProgressDialog

    from app.ui.i18n import tr

    dialog = QProgressDialog(tr("opening_store", lang), "", 0, 0)
    dialog.setObjectName("opening-store")
    dialog.setCancelButton(None)  # a half-finished open is rolled back, never left halfway
    dialog.setWindowTitle("网格采集 GridCollect")
    dialog.setWindowModality(Qt.WindowModality.ApplicationModal)
    dialog.setMinimumDuration(0)
    dialog.show()
    app = QApplication.instance()
    while thread.is_alive():
        if app is not None:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        thread.join(timeout=0.05)
    dialog.close()
    dialog.deleteLater()


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
    app = application()
    opening = _OpenInBackground(data_dir)  # the one place the app opens its store
    from app.ui.settings import load_settings, save_settings  # imported while the key is derived
    from app.ui.start_page import ask_start, is_first_run
    from app.ui.window import MainWindow

    store = opening.result(lang or "zh")
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


def run(
    data_dir: str | Path | None = None,
    lang: str | None = "zh",
    passphrase_file: str | Path | None = None,
) -> int:
    """Ask for the data passphrase, then create the main window; returns the exit code."""
    from app.core import paths
    from app.ui.passphrase import unlock

    app = application()
    threading.Thread(target=_import_window, daemon=True).start()  # while the person types
    if unlock(paths.db_path(data_dir), lang or "zh", passphrase_file=passphrase_file) is None:
        return 0  # the person cancelled at the passphrase: nothing was opened
    try:
        _, window = build(data_dir, lang)
    except SchemaTooNewError as exc:
        QMessageBox.critical(None, "网格采集 GridCollect", str(exc))
        return 2
    except driver.Error as exc:  # in use past the lock wait (an upgrade elsewhere), or damaged
        log.error("store error at open: %s", type(exc).__name__)  # the kind only: no data
        QMessageBox.critical(None, "网格采集 GridCollect", tr("store_unusable", lang or "zh"))
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
