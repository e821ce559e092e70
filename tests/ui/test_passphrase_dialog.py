"""The passphrase dialog that runs before the main window, clicked as a person would: first-run
setup (typed twice, strength hint, too short, mismatch), a wrong passphrase and a retry, and a
plaintext store encrypted once the passphrase is chosen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from app.core.forms import FormSet
from app.core.store import Store, driver
from app.core.vault import keyfile, keys, sources
from app.ui.passphrase import PassphraseDialog, unlock
from tests.factories import resident

FAST = {"n": 2**12, "r": 8, "p": 1}


@pytest.fixture(autouse=True)
def _no_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    keys.forget()
    monkeypatch.delenv(sources.ENV_VAR, raising=False)
    monkeypatch.setattr(keyfile, "DEFAULT_KDF", FAST)


def _type(qtbot: Any, dialog: PassphraseDialog, first: str, again: str = "") -> None:
    dialog.passphrase.clear()
    dialog.again.clear()
    qtbot.keyClicks(dialog.passphrase, first)
    if again:
        qtbot.keyClicks(dialog.again, again)
    qtbot.mouseClick(dialog.ok, Qt.MouseButton.LeftButton)


def test_first_run_setup_checks_length_and_match_then_creates_the_key(
    qtbot: Any, tmp_path: Path, formset: FormSet
) -> None:
    db = tmp_path / "gridcollect.sqlite"
    dialog = PassphraseDialog(db, "zh")
    qtbot.addWidget(dialog)
    assert dialog.setup_mode
    _type(qtbot, dialog, "short", "short")
    assert "至少需要 8 个字符" in dialog.error.text() and dialog.key is None
    _type(qtbot, dialog, "abcdefgh", "abcdefgX")
    assert "不一致" in dialog.error.text() and not keys.key_path(db).exists()
    dialog.passphrase.clear()
    qtbot.keyClicks(dialog.passphrase, "abcdefgh")
    assert "弱" in dialog.hint.text()
    _type(qtbot, dialog, "Grid-Worker-2026!", "Grid-Worker-2026!")
    assert "强" in dialog.hint.text()
    assert dialog.result() == PassphraseDialog.DialogCode.Accepted and dialog.key
    store = Store(db, formset)  # the key stays unlocked for every Store in this process
    store.save("resident", resident(seq=3))
    store.close()
    assert driver.is_encrypted(db)


def test_a_wrong_passphrase_says_so_and_the_dialog_stays_for_a_retry(
    qtbot: Any, tmp_path: Path, formset: FormSet
) -> None:
    db = tmp_path / "gridcollect.sqlite"
    keys.setup(db, "right passphrase")
    Store(db, formset).close()
    keys.forget()
    dialog = PassphraseDialog(db, "en")
    qtbot.addWidget(dialog)
    assert not dialog.setup_mode
    _type(qtbot, dialog, "wrong passphrase")
    assert dialog.error.text() == "wrong passphrase; please try again."
    assert dialog.result() != PassphraseDialog.DialogCode.Accepted
    _type(qtbot, dialog, "right passphrase")
    assert dialog.result() == PassphraseDialog.DialogCode.Accepted
    assert keys.cached(db) == dialog.key


def test_a_plaintext_store_is_encrypted_when_the_passphrase_is_set(
    qtbot: Any, tmp_path: Path, formset: FormSet
) -> None:
    db = tmp_path / "gridcollect.sqlite"
    store = Store(db, formset)
    record = store.save("resident", resident(seq=5))
    store.close()
    dialog = PassphraseDialog(db, "zh")
    qtbot.addWidget(dialog)
    assert "未加密" in "".join(w.text() for w in dialog.findChildren(type(dialog.intro)))
    _type(qtbot, dialog, "Grid-Worker-2026!", "Grid-Worker-2026!")
    assert driver.is_encrypted(db)
    store = Store(db, formset)
    assert store.get(record.id) is not None
    store.close()


def test_unlock_asks_nothing_when_a_passphrase_file_is_given(
    tmp_path: Path, formset: FormSet
) -> None:
    db = tmp_path / "gridcollect.sqlite"
    given = tmp_path / "pass"
    given.write_text("Grid-Worker-2026!\n", encoding="utf-8")
    given.chmod(0o600)
    assert unlock(db, "zh", passphrase_file=given) == keys.cached(db)


def test_the_app_asks_before_the_main_window_and_a_cancel_opens_nothing(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.ui import main
    from app.ui.window import MainWindow

    data = tmp_path / "data"
    seen: list[str] = []

    def answer(cancel: bool) -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, PassphraseDialog)
        seen.append("dialog")
        assert not [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        if cancel:
            dialog.reject()
            return
        dialog.passphrase.setText("Grid-Worker-2026!")
        dialog.again.setText("Grid-Worker-2026!")
        dialog.submit()
        QTimer.singleShot(300, QApplication.quit)  # the main window is up: close the app

    # an empty data dir then shows the first-run start page: the worker closes it there
    monkeypatch.setattr("app.ui.start_page.ask_start", lambda _store, _lang: None)
    QTimer.singleShot(100, lambda: answer(cancel=True))
    assert main.run(data, "zh") == 0
    assert seen == ["dialog"] and not (data / "gridcollect.key").exists()
    QTimer.singleShot(100, lambda: answer(cancel=False))
    assert main.run(data, "zh") == 0
    assert seen == ["dialog", "dialog"]
    assert driver.is_encrypted(data / "gridcollect.sqlite")


def test_a_damaged_store_says_so_in_a_window_and_changes_nothing(
    qtbot: Any, tmp_path: Path, formset: FormSet
) -> None:
    """The passphrase is right but the data file cannot be opened (damaged here; in use past
    the lock wait behaves alike): the person is told in a message box what to do, the app
    ends with code 2, and the file is left as it was (a traceback on stderr is nothing a
    desktop user sees)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.ui import main

    data = tmp_path / "data"
    data.mkdir()
    db = data / "gridcollect.sqlite"
    passphrase = tmp_path / "pass"
    passphrase.write_text("Grid-Worker-2026!\n", encoding="utf-8")
    passphrase.chmod(0o600)
    store = Store(db, formset, keys.setup(db, "Grid-Worker-2026!"))
    for n in range(200):
        store.save("resident", resident(name=f"居民{n}"), status="complete")
    store.close()
    raw = db.read_bytes()
    damaged = raw[:4096] + bytes(b ^ 0x5A for b in raw[4096:])  # every page after the first
    db.write_bytes(damaged)
    keys.forget()
    shown: list[str] = []

    def read_and_close() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):  # not up yet
            QTimer.singleShot(50, read_and_close)
            return
        shown.append(box.text())
        box.accept()

    QTimer.singleShot(50, read_and_close)
    assert main.run(data, "zh", passphrase_file=passphrase) == 2
    assert len(shown) == 1 and "数据文件无法打开" in shown[0] and "备份" in shown[0]
    assert db.read_bytes() == damaged


@pytest.mark.parametrize(
    ("lang", "restore", "first_run"),
    [("zh", "请从备份恢复", "首次使用"), ("en", "restore it from a backup", "First run")],
)
def test_an_encrypted_store_whose_key_file_is_lost_says_restore_it_not_first_run(
    qtbot: Any, tmp_path: Path, formset: FormSet, lang: str, restore: str, first_run: str
) -> None:
    """No key file, but the store is encrypted: not a first run. The dialog says at once to
    restore the key file (naming it) and offers no passphrase to set, since a new key could
    not open the store; clicking does not make one."""
    db = tmp_path / "gridcollect.sqlite"
    keys.setup(db, "right passphrase")
    store = Store(db, formset)
    store.save("resident", resident(seq=4))
    store.close()
    keys.key_path(db).unlink()
    keys.forget()
    dialog = PassphraseDialog(db, lang)
    qtbot.addWidget(dialog)
    dialog.show()
    shown = " ".join(w.text() for w in dialog.findChildren(QLabel) if w.isVisible())
    assert restore in shown and str(keys.key_path(db)) in shown
    assert first_run not in shown
    assert not dialog.passphrase.isVisible() and not dialog.again.isVisible()
    assert not dialog.ok.isEnabled()
    qtbot.mouseClick(dialog.ok, Qt.MouseButton.LeftButton)
    assert dialog.key is None and dialog.result() != PassphraseDialog.DialogCode.Accepted
    assert not keys.key_path(db).exists()


def test_a_key_file_another_process_set_up_meanwhile_is_unlocked_not_replaced(
    qtbot: Any, tmp_path: Path, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dialog opened on a new data dir; the nightly sync set it up with the same
    passphrase (from its file) before the worker clicked: the dialog opens that key."""
    db = tmp_path / "gridcollect.sqlite"
    dialog = PassphraseDialog(db, "en")
    qtbot.addWidget(dialog)
    assert dialog.setup_mode
    keys.setup(db, "same passphrase")  # the sync's first run
    store = Store(db, formset)
    store.save("resident", resident(seq=9))
    store.close()
    keys.forget()
    _type(qtbot, dialog, "same passphrase", "same passphrase")
    assert dialog.result() == PassphraseDialog.DialogCode.Accepted and dialog.key
    store = Store(db, formset)
    assert store.count("resident") == 1
    store.close()


def test_setup_typed_once_full_width_and_once_half_width_is_one_passphrase(
    qtbot: Any, tmp_path: Path, formset: FormSet
) -> None:
    """The IME switched to full-width between the two fields: both derive the same key, so
    the dialog does not call them different; the half-width form then unlocks."""
    db = tmp_path / "gridcollect.sqlite"
    dialog = PassphraseDialog(db, "zh")
    qtbot.addWidget(dialog)
    # an IME commits its text whole (no key events: QTest cannot click full-width keys)
    dialog.passphrase.setText("ｇｒｉｄ－ｗｏｒｋｅｒ２０２６")
    dialog.again.setText("grid-worker2026")
    qtbot.mouseClick(dialog.ok, Qt.MouseButton.LeftButton)
    assert dialog.result() == PassphraseDialog.DialogCode.Accepted, dialog.error.text()
    keys.forget()
    unlocker = PassphraseDialog(db, "zh")
    qtbot.addWidget(unlocker)
    _type(qtbot, unlocker, "grid-worker2026")
    assert unlocker.result() == PassphraseDialog.DialogCode.Accepted, unlocker.error.text()


def test_a_wrong_given_passphrase_file_is_said_in_the_dialog(
    qtbot: Any, tmp_path: Path, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``gridcollect --passphrase-file F`` with a stale F: the dialog that then asks says the
    file was wrong, naming it, instead of asking as if none had been given."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    db = tmp_path / "gridcollect.sqlite"
    keys.setup(db, "right passphrase")
    Store(db, formset).close()
    keys.forget()
    stale = tmp_path / "stale"
    stale.write_text("an old passphrase\n", encoding="utf-8")
    stale.chmod(0o600)
    seen: list[str] = []

    def read_and_answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, PassphraseDialog):
            QTimer.singleShot(50, read_and_answer)
            return
        seen.append(dialog.error.text())
        dialog.passphrase.setText("right passphrase")
        dialog.submit()

    QTimer.singleShot(50, read_and_answer)
    assert unlock(db, "en", passphrase_file=stale) == keys.cached(db)
    assert len(seen) == 1 and str(stale) in seen[0] and "wrong passphrase" in seen[0]
