"""Worker identity, assigned grids, touch mode and language.

Where each setting lives, and why:
- worker name/id and assigned grids go to ``store.meta``: they belong to the data file (the
  device's collection scope and the author of every save) and the Qt-free sync client can
  read them;
- touch mode and language are this person's screen preferences: a ``QSettings`` INI file in
  the data dir (``settings.ini``), so tests and several data dirs never share them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QWidget,
)

from app.core.store import Store
from app.ui.i18n import register, tr

META_NAME, META_ID, META_GRIDS = "worker_name", "worker_id", "assigned_grids"
KEY_TOUCH, KEY_LANG = "ui/touch_mode", "ui/lang"
LANGUAGES = (("zh", "中文"), ("en", "English"))

register(
    {
        "settings.title": ("设置", "Settings"),
        "settings.name": ("姓名", "Name"),
        "settings.id": ("工号", "Worker ID"),
        "settings.grids": ("负责网格", "Assigned grids"),
        "settings.touch": ("触屏模式（大按钮、大字体）", "Touch mode (large targets and fonts)"),
        "settings.lang": ("界面语言", "Language"),
        "settings.name_hint": ("保存记录时记为修改人", "Recorded as the author of your saves"),
    }
)


@dataclass
class Settings:
    """Everything the settings dialog edits."""

    worker_name: str = ""
    worker_id: str = ""
    assigned_grids: tuple[str, ...] = field(default_factory=tuple)
    touch_mode: bool = False
    lang: str = "zh"

    @property
    def author(self) -> str:
        """What history records as "who": the worker id, else the name."""
        return self.worker_id.strip() or self.worker_name.strip()


def ui_settings(store: Store) -> QSettings:
    """The per-data-dir INI file for screen preferences."""
    return QSettings(str(store.path.parent / "settings.ini"), QSettings.Format.IniFormat)


def _grids(value: str | None) -> tuple[str, ...]:
    try:
        parsed = json.loads(value) if value else []
    except ValueError:
        return ()
    return tuple(str(v) for v in parsed) if isinstance(parsed, list) else ()


def _bool(value: object) -> bool:
    return value is True or str(value).lower() in ("true", "1", "yes")


def load_settings(store: Store) -> Settings:
    """Read the settings of this data dir (defaults when never set)."""
    qs = ui_settings(store)
    lang = str(qs.value(KEY_LANG, "zh"))
    return Settings(
        worker_name=store.meta(META_NAME, "") or "",
        worker_id=store.meta(META_ID, "") or "",
        assigned_grids=_grids(store.meta(META_GRIDS)),
        touch_mode=_bool(qs.value(KEY_TOUCH, False)),
        lang=lang if lang in dict(LANGUAGES) else "zh",
    )


def save_settings(store: Store, settings: Settings) -> None:
    """Write the settings (meta in one transaction; preferences to the INI file)."""
    with store.transaction():
        store.set_meta(META_NAME, settings.worker_name.strip())
        store.set_meta(META_ID, settings.worker_id.strip())
        store.set_meta(META_GRIDS, json.dumps(list(settings.assigned_grids), ensure_ascii=False))
    qs = ui_settings(store)
    qs.setValue(KEY_TOUCH, settings.touch_mode)
    qs.setValue(KEY_LANG, settings.lang)
    qs.sync()


class SettingsDialog(QDialog):
    """Edit a copy of the settings; ``settings()`` returns the edited copy on accept."""

    def __init__(
        self, store: Store, settings: Settings, lang: str = "zh", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle(tr("settings.title", lang))
        form = QFormLayout(self)
        self.name_edit = QLineEdit(settings.worker_name, self)
        self.name_edit.setPlaceholderText(tr("settings.name_hint", lang))
        self.id_edit = QLineEdit(settings.worker_id, self)
        self.grid_list = QListWidget(self)
        assigned = set(settings.assigned_grids)
        for grid in store.grids():
            item = QListWidgetItem(
                f"{grid.community_name} / {grid.name}  ({grid.code})", self.grid_list
            )
            item.setData(Qt.ItemDataRole.UserRole, grid.code)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if grid.code in assigned else Qt.CheckState.Unchecked
            )
        self.touch_box = QCheckBox(tr("settings.touch", lang), self)
        self.touch_box.setChecked(settings.touch_mode)
        self.lang_box = QComboBox(self)
        for code, label in LANGUAGES:
            self.lang_box.addItem(label, code)
        self.lang_box.setCurrentIndex(max(0, self.lang_box.findData(settings.lang)))
        form.addRow(tr("settings.name", lang), self.name_edit)
        form.addRow(tr("settings.id", lang), self.id_edit)
        form.addRow(tr("settings.grids", lang), self.grid_list)
        form.addRow("", self.touch_box)
        form.addRow(tr("settings.lang", lang), self.lang_box)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def checked_grids(self) -> tuple[str, ...]:
        items = (self.grid_list.item(i) for i in range(self.grid_list.count()))
        return tuple(
            str(it.data(Qt.ItemDataRole.UserRole))
            for it in items
            if it.checkState() == Qt.CheckState.Checked
        )

    def settings(self) -> Settings:
        """The settings as edited in the dialog."""
        return Settings(
            worker_name=self.name_edit.text().strip(),
            worker_id=self.id_edit.text().strip(),
            assigned_grids=self.checked_grids(),
            touch_mode=self.touch_box.isChecked(),
            lang=str(self.lang_box.currentData()),
        )
