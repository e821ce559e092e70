"""The main window (a first version: counts per form; the full app comes with the desktop issue)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMainWindow, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from app.core.store import Store


class MainWindow(QMainWindow):
    """Shows what the local store holds."""

    def __init__(self, store: Store, lang: str = "zh") -> None:
        super().__init__()
        self.store, self.lang = store, lang
        self.setWindowTitle("网格采集 GridCollect")
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.addWidget(QLabel(f"数据文件 / data file: {store.path}"))
        self.table = QTableWidget(0, 3, central)
        self.table.setHorizontalHeaderLabels(["表单 / form", "状态 / status", "数量 / count"])
        layout.addWidget(self.table)
        self.setCentralWidget(central)
        self.refresh()

    def refresh(self) -> None:
        """Reload the counts from the store."""
        totals: dict[tuple[str, str], int] = {}
        for form, status, _grid, count in self.store.stats():
            totals[(form, status)] = totals.get((form, status), 0) + count
        self.table.setRowCount(len(totals))
        for row, ((form, status), count) in enumerate(sorted(totals.items())):
            title = self.store.formset.form(form).title.get(self.lang)
            for col, text in enumerate((title, status, str(count))):
                self.table.setItem(row, col, QTableWidgetItem(text))
