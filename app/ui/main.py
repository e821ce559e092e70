"""Start the desktop app (Qt lives only under app/ui and app/printing)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QApplication, QMessageBox

from app.core.store import Store
from app.core.store.schema import SchemaTooNewError

if TYPE_CHECKING:
    from app.ui.window import MainWindow


def application() -> QApplication:
    """The QApplication (created once, reused by tests and tools)."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("GridCollect")
    app.setApplicationDisplayName("网格采集 GridCollect")
    app.setOrganizationName("GridCollect")
    return app  # type: ignore[return-value]


def build(
    data_dir: str | Path | None = None, lang: str | None = "zh"
) -> tuple[QApplication, MainWindow]:
    """Open the data dir and make the main window (not shown). ``lang=None``: the saved choice.

    Opening is cheap on any size of store: the window fetches one page of one list and
    counts everything else in the background.
    """
    from app.ui.settings import load_settings
    from app.ui.window import MainWindow

    app = application()
    store = Store.open(data_dir)
    settings = load_settings(store)
    window = MainWindow(store, lang=lang or settings.lang, settings=settings)
    return app, window


def run(data_dir: str | Path | None = None, lang: str | None = "zh") -> int:
    """Create the QApplication and the main window; returns the exit code."""
    app = application()
    try:
        _, window = build(data_dir, lang)
    except SchemaTooNewError as exc:
        QMessageBox.critical(None, "网格采集 GridCollect", str(exc))
        return 2
    if window.fit_to_screen():
        window.showMaximized()
    else:
        window.show()
    code = int(app.exec())
    window.store.close()
    return code
