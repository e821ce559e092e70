"""Start the desktop app (Qt lives only under app/ui and app/printing)."""

from __future__ import annotations

import sys
from pathlib import Path


def run(data_dir: str | Path | None = None, lang: str = "zh") -> int:
    """Create the QApplication and the main window; returns the exit code."""
    from PySide6.QtWidgets import QApplication

    from app.core.store import Store
    from app.ui.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("GridCollect")
    store = Store.open(data_dir)
    window = MainWindow(store, lang=lang)
    window.show()
    return int(app.exec())
