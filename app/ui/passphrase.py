"""The passphrase dialog that runs before the main window: unlock the data dir's key, or, the
first time, choose a passphrase (typed twice, with a strength hint).

Why a separate dialog and not part of a start page: it is needed wherever a data dir is
opened (the start page, a switch of data dir, a tool), always before any ``Store``; it returns
only once the key is unlocked in this process (``app.core.vault.keys``), so every Store opened
afterwards on the file finds it. A wrong passphrase says so and the dialog stays open.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app.core.store import driver
from app.core.vault import access, keyfile, keys, sources
from app.core.vault.sources import PassphraseError
from app.core.vault.texts import TEXTS
from app.ui.i18n import register, tr

register(
    {
        "pp_title": ("网格采集 · 数据口令", "GridCollect · data passphrase"),
        "pp_unlock_intro": (
            "本机数据已加密。请输入数据口令以打开。",
            "The data on this device is encrypted. Enter the data passphrase to open it.",
        ),
        "pp_setup_intro": (
            "首次使用：请设置数据口令。居民信息将加密保存在本机，没有口令无法读取。"
            "口令遗失则数据无法恢复（可从平台重新同步）。",
            "First run: choose a data passphrase. Residents' data is kept encrypted on this "
            "device and cannot be read without it. A lost passphrase cannot be recovered "
            "(sync again from the platform).",
        ),
        "pp_migrate_intro": (
            "本机已有未加密的数据。设置口令后将就地加密（可能需要一些时间）。",
            "This device holds unencrypted data. Once you choose a passphrase it is encrypted "
            "in place (this may take a while).",
        ),
        "pp_passphrase": ("口令", "Passphrase"),
        "pp_again": ("再次输入", "Type it again"),
        "pp_open": ("打开", "Open"),
        "pp_set": ("设置并打开", "Set and open"),
        "pp_cancel": ("退出", "Quit"),
        "pp_store_busy": (
            "数据文件无法使用，请关闭其他正在使用该数据目录的程序后重试。",
            "The data file cannot be used; close other programs using the data dir and retry.",
        ),
    }
)


WRONG_SOURCE = ("wrong_file", "wrong_env")  # a passphrase file's passphrase did not open it


class PassphraseDialog(QDialog):
    """Unlock (one field), first-run setup (two fields and a strength hint), or, for an
    encrypted store whose key file is gone, only the advice to restore it."""

    def __init__(self, db_path: Path, lang: str = "zh", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db_path = db_path
        self.lang = lang
        self.key: bytes | None = None
        self.setup_mode = not keyfile.exists(keys.key_path(db_path))
        # not a first run: a new key could not open the store (restore the key file instead)
        self.key_lost = self.setup_mode and driver.is_encrypted(db_path)
        self.setWindowTitle(tr("pp_title", lang))
        self.setMinimumWidth(420)
        layout = QVBoxLayout(self)
        self.intro = QLabel(self._intro(), self)
        self.intro.setWordWrap(True)
        layout.addWidget(self.intro)
        if self.setup_mode and driver.is_plaintext(db_path):
            migrate = QLabel(tr("pp_migrate_intro", lang), self)
            migrate.setWordWrap(True)
            layout.addWidget(migrate)
        form = QFormLayout()
        self.passphrase = self._field()
        form.addRow(tr("pp_passphrase", lang), self.passphrase)
        self.again = self._field()
        self.hint = QLabel("", self)
        if self.setup_mode:
            form.addRow(tr("pp_again", lang), self.again)
            form.addRow("", self.hint)
            self.passphrase.textChanged.connect(self._show_strength)
        else:
            self.again.hide()
        if self.key_lost:
            for widget in (self.passphrase, self.again, self.hint):
                widget.hide()
        else:
            layout.addLayout(form)
        self.error = QLabel("", self)
        self.error.setObjectName("passphraseError")
        self.error.setStyleSheet("color: #b00020")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText(tr("pp_set" if self.setup_mode else "pp_open", lang))
        cancel = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        cancel.setText(tr("pp_cancel", lang))
        self.ok.setEnabled(not self.key_lost)
        buttons.accepted.connect(self.submit)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _intro(self) -> str:
        if self.key_lost:
            return TEXTS.text("key_file_missing", self.lang, path=str(keys.key_path(self.db_path)))
        return tr("pp_setup_intro" if self.setup_mode else "pp_unlock_intro", self.lang)

    def _field(self) -> QLineEdit:
        field = QLineEdit(self)
        field.setEchoMode(QLineEdit.EchoMode.Password)
        return field

    def _show_strength(self, text: str) -> None:
        self.hint.setText(TEXTS.text(f"strength_{sources.strength(text)}", self.lang))

    def submit(self) -> None:
        """Try the passphrase; stay open with a message if it is wrong or not acceptable."""
        if self.key_lost:
            return
        self.error.setText("")
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self.key = self._unlock_or_setup(self.passphrase.text())
        except PassphraseError as exc:
            self.error.setText(exc.text(self.lang))
            self.passphrase.selectAll()
            self.passphrase.setFocus()
            return
        except driver.Error:  # the store is in use elsewhere or damaged: say so, stay open
            self.error.setText(tr("pp_store_busy", self.lang))
            return
        finally:
            QApplication.restoreOverrideCursor()
        self.accept()

    def _unlock_or_setup(self, passphrase: str) -> bytes:
        if self.setup_mode:
            problem = sources.check_new(passphrase)
            if problem is not None:
                raise problem
            # compared as the key derives them: an IME switched to full-width mid-way is no mismatch
            if keyfile.normalised(passphrase) != keyfile.normalised(self.again.text()):
                raise PassphraseError("mismatch")
        try:
            key = self._setup(passphrase) if self.setup_mode else self._unlock(passphrase)
        except keyfile.KeyFileError as exc:
            raise sources.key_file_problem(exc, keys.key_path(self.db_path)) from exc
        access.finish(self.db_path, key)  # encrypt a plaintext store, tighten permissions
        return key

    def _setup(self, passphrase: str) -> bytes:
        try:
            return keys.setup(self.db_path, passphrase)
        except FileExistsError:  # another process (the sync) set it up meanwhile: open that
            return self._unlock(passphrase)

    def _unlock(self, passphrase: str) -> bytes:
        try:
            return keys.unlock(self.db_path, passphrase)
        except keyfile.WrongPassphrase as exc:
            raise PassphraseError("wrong") from exc


def unlock(
    db_path: Path,
    lang: str = "zh",
    parent: QWidget | None = None,
    passphrase_file: str | Path | None = None,
) -> bytes | None:
    """The store's key before the main window opens: from a source that needs no person
    (``--passphrase-file``, its variable, the keyring if turned on, the demo file), else asked
    for, saying so if a passphrase file was wrong. None if the person cancelled."""
    try:
        return access.open_key(db_path, passphrase_file)
    except PassphraseError as exc:
        failed = exc
    dialog = PassphraseDialog(db_path, lang, parent)
    if failed.key in WRONG_SOURCE:  # a file was given or set: say it was wrong, then ask
        dialog.error.setText(failed.text(lang))
    return dialog.key if dialog.exec() == QDialog.DialogCode.Accepted else None
