"""The 同步 Sync menu and toolbar action: ask for the server and credentials, then run one
``SyncSession`` off the UI thread behind a progress dialog with a working Cancel.

Why the lock is taken in the GUI thread: a refusal ("another sync is running") is then instant
and shown before any dialog opens; the lock (an OS file lock, ``sync.lock``) is held until the
task's outcome reaches the GUI, so a scheduled ``gridcollect sync`` cannot run meanwhile.

Credentials: the server URL and user name are remembered in ``store.meta``. The password is
kept only if the person ticks "remember on this device": then it goes into ``store.meta`` too,
inside the encrypted store (never a file in clear beside it); unticking deletes it. A
``sync-password`` file an older version left in the data dir is moved in and deleted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QWidget,
)

from app.core.messages import Catalog, pick
from app.core.store import Store
from app.ui.tasks import TaskContext, TaskHandle

log = logging.getLogger(__name__)

SERVER_KEY = "sync.server"
USER_KEY = "sync.user"
PASSWORD_KEY = "sync.password"
LEGACY_PASSWORD_FILE = "sync-password"  # where versions before the encrypted store kept it
# Pulled records per local commit while the app syncs: smaller than the headless default, so an
# editor saving while a first pull runs waits for at most ~0.15 s of writes.
GUI_COMMIT_EVERY = 1000

_TEXT = {
    "menu": ("同步", "Sync"),
    "action": ("与平台同步…", "Sync with the platform…"),
    "title": ("与平台同步", "Sync with the platform"),
    "insecure": (
        "拒绝以 http:// 连接其他计算机（密码和居民数据将以明文在网络上传输）：请向管理员索取以 "
        "https:// 开头的平台地址。",
        "refusing http:// to another computer (the password and residents' data would cross "
        "the network in clear): ask the administrator for the platform's https:// address.",
    ),
    "server": ("服务器地址", "Server URL"),
    "user": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "remember": ("在本机记住密码", "Remember the password on this device"),
    "missing": ("请填写服务器地址、用户名和密码。", "Fill in the server URL, user and password."),
    "progress": ("正在同步…", "Syncing…"),
    "push": ("推送 {done}/{total}", "Pushing {done}/{total}"),
    "pull": ("已拉取 {done} 条", "Pulled {done}"),
    "grids": ("新网格已拉取 {done} 条", "New grids: pulled {done}"),
    "failed": ("同步失败：{reason}", "Sync failed: {reason}"),
    "done": ("同步完成", "Sync done"),
    "conflicts": (
        "有 {n} 条记录存在冲突，请在“冲突”视图中处理。",
        "{n} records have conflicts; resolve them in the conflict view.",
    ),
    "refused": (
        "有 {n} 条记录的修改被平台拒绝，仍保存在本机：请在“同步 → 被拒的修改”中查看原因并改正，"
        "下次同步时发送。",
        "The platform refused edits of {n} record(s), kept on this device: see why in "
        "Sync → Refused edits, correct them, and the next sync sends them.",
    ),
    "refused_grid": (
        "其中 {n} 条因所属网格已不归您负责而被拒绝，网格交还后自动重新发送（请联系管理员）。",
        "Of those, {n} were refused because their grid is no longer yours: they are sent "
        "again when the grid is given back (ask the administrator).",
    ),
}


_T = Catalog(_TEXT)


def data_dir(store: Store) -> Path:
    """The data dir holding the store file (lock and password file live there)."""
    return Path(store.path).parent


# -- remembered credentials -------------------------------------------------------------------


def legacy_password_path(store: Store) -> Path:
    return data_dir(store) / LEGACY_PASSWORD_FILE


def _move_legacy_password(store: Store) -> None:
    """Take an older version's plaintext ``sync-password`` file into the store, then delete it."""
    path = legacy_password_path(store)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return
    if lines and lines[0] and not store.meta(PASSWORD_KEY):
        store.set_meta(PASSWORD_KEY, lines[0])
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def load_password(store: Store) -> str:
    """The remembered password, or "" when none is kept."""
    _move_legacy_password(store)
    return store.meta(PASSWORD_KEY, "") or ""


def remember_password(store: Store, password: str | None) -> None:
    """Keep ``password`` in the encrypted store, or forget it when ``None``."""
    _move_legacy_password(store)
    store.set_meta(PASSWORD_KEY, password or "")


@dataclass(frozen=True)
class Credentials:
    server: str
    user: str
    password: str


class SyncDialog(QDialog):
    """Server URL + user (prefilled from ``store.meta``) + password (+ remember)."""

    def __init__(self, store: Store, lang: str = "zh", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("syncDialog")
        self.store, self.lang = store, lang
        self.setWindowTitle(_T.text("title", lang))
        form = QFormLayout(self)
        self.server = QLineEdit(store.meta(SERVER_KEY) or "", self)
        self.server.setPlaceholderText("https://grid.example.cn")
        self.user = QLineEdit(store.meta(USER_KEY) or "", self)
        remembered = load_password(store)
        self.password = QLineEdit(remembered, self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.remember = QCheckBox(_T.text("remember", lang), self)
        self.remember.setChecked(bool(remembered))
        form.addRow(_T.text("server", lang), self.server)
        form.addRow(_T.text("user", lang), self.user)
        form.addRow(_T.text("password", lang), self.password)
        form.addRow(self.remember)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def credentials(self) -> Credentials | None:
        """What was typed, or None when something is missing."""
        server, user = self.server.text().strip(), self.user.text().strip()
        password = self.password.text()
        if not (server and user and password):
            return None
        return Credentials(server, user, password)

    def keep(self) -> None:
        """Remember URL and user; the password only when ticked (else forget it)."""
        creds = self.credentials()
        if creds is None:
            return
        self.store.set_meta(SERVER_KEY, creds.server)
        self.store.set_meta(USER_KEY, creds.user)
        remember_password(self.store, creds.password if self.remember.isChecked() else None)


# -- the task ---------------------------------------------------------------------------------


class Phase:
    """The session's current phase, written by the worker, read by the GUI on progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._phase = "push"

    def set(self, phase: str) -> None:
        with self._lock:
            self._phase = phase

    def get(self) -> str:
        with self._lock:
            return self._phase


@dataclass
class SyncOutcome:
    """A run's result for the GUI: a summary, or a sync error's bilingual reason."""

    summary: Any = None
    error_zh: str = ""
    error_en: str = ""

    def reason(self, lang: str) -> str:
        return pick(lang, self.error_zh, self.error_en)


def sync_task(
    creds: Credentials, phase: Phase, batch: int | None = None, retries: int = 3
) -> Callable[[TaskContext], SyncOutcome]:
    """A task function: log in and run one session on the task's own Store."""

    def run(ctx: TaskContext) -> SyncOutcome:
        from sync.client import Client, Retry, SyncError
        from sync.replica import credential
        from sync.replica import identity as replica_identity
        from sync.session import SyncSession

        store = ctx.store()
        client = Client(
            creds.server,
            store.device_id,
            retry=Retry(attempts=retries),
            installation=replica_identity.installation(store),
        )

        def progress(name: str, done: int, total: int) -> None:
            phase.set(name)
            ctx.progress(done, total)

        try:
            client.info()
            client.login(creds.user, creds.password)
            summary = SyncSession(
                store,
                client,
                batch=batch,
                commit_every=GUI_COMMIT_EVERY,
                progress=progress,
                cancel=lambda: ctx.cancelled,
            ).run()
            if client.refresh_token:  # the scheduled `gridcollect sync` signs in with it
                credential.save(store, creds.server, creds.user, client.refresh_token)
        except SyncError as exc:
            log.warning("sync failed: %s (%s)", type(exc).__name__, exc.code)
            return SyncOutcome(error_zh=exc.reason("zh"), error_en=exc.reason("en"))
        finally:
            client.close()
        return SyncOutcome(summary=summary)

    return run


# -- wiring into the main window --------------------------------------------------------------


class SyncController:
    """Owns the menu/toolbar action and one sync run at a time."""

    def __init__(self, window: Any) -> None:
        self.window = window
        self.handle: TaskHandle | None = None
        self.last: SyncOutcome | None = None
        self.message: QMessageBox | None = None
        self.ask: Callable[[], Credentials | None] = self._ask

    @property
    def lang(self) -> str:
        return str(self.window.lang)

    def _ask(self) -> Credentials | None:
        dialog = SyncDialog(self.window.store, self.lang, self.window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        creds = dialog.credentials()
        if creds is None:
            self._tell(_T.text("title", self.lang), _T.text("missing", self.lang), True)
            return None
        dialog.keep()
        return creds

    def trigger(self) -> TaskHandle | None:
        """The action: ask, then start."""
        if self.handle is not None and self.handle.running:
            return self.handle
        creds = self.ask()
        return self.start(creds) if creds is not None else None

    def start(self, creds: Credentials) -> TaskHandle | None:
        """Take the lock and run the session behind the window's progress dialog."""
        from sync import transport
        from sync.lock import LockedError, SyncLock

        problem = transport.url_problem(creds.server)  # as `gridcollect sync` refuses
        if problem is not None:
            plain_http = creds.server.lower().startswith("http://")
            text = _T.text("insecure", self.lang) if plain_http else pick(self.lang, *problem)
            self._tell(_T.text("title", self.lang), text, True)
            return None

        lock = SyncLock(data_dir(self.window.store))
        try:
            lock.acquire()
        except LockedError as exc:
            self._tell(_T.text("title", self.lang), exc.reason(self.lang), True)
            return None
        phase = Phase()
        try:
            handle = self.window.run_task(
                sync_task(creds, phase), _T.text("progress", self.lang), self._finished, name="sync"
            )
        except Exception:
            lock.release()
            raise
        handle.done.connect(lock.release)
        handle.done.connect(self._refresh)
        dialog: QProgressDialog | None = getattr(handle, "dialog", None)
        if dialog is not None:
            dialog.setObjectName("syncProgress")
            handle.progress.connect(lambda d, t: self._show_progress(dialog, phase.get(), d, t))
        self.handle = handle
        return handle

    def _show_progress(self, dialog: QProgressDialog, phase: str, done: int, total: int) -> None:
        if phase in ("pull", "grids"):
            dialog.setMaximum(0)  # unknown total: a busy bar
        key = phase if phase in ("pull", "grids") else "push"
        dialog.setLabelText(_T.text(key, self.lang, done=done, total=total))

    def _finished(self, outcome: SyncOutcome) -> None:
        self.last = outcome
        lang = self.lang
        if outcome.summary is None:
            self._tell(
                _T.text("title", lang), _T.text("failed", lang, reason=outcome.reason(lang)), True
            )
            return
        summary = outcome.summary
        text = summary.text(lang) + "".join("\n" + line for line in _waiting(summary, lang))
        waiting = bool(summary.open_conflicts or summary.open_refused)
        self._tell(_T.text("done", lang), text, waiting)

    def _refresh(self) -> None:
        update = getattr(self.window, "_update_status", None)
        if callable(update):
            update()

    def _tell(self, title: str, text: str, warning: bool = False) -> QMessageBox:
        """Non-blocking (slots of finished tasks must not spin a nested loop)."""
        icon = QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Information
        box = QMessageBox(icon, title, text, parent=self.window)
        box.setObjectName("syncMessage")
        box.open()
        self.message = box
        return box


def _waiting(summary: Any, lang: str) -> list[str]:
    """What waits for the worker after a run, one line each, and where to deal with it."""
    lines = []
    if summary.open_conflicts:
        lines.append(_T.text("conflicts", lang, n=summary.open_conflicts))
    if summary.open_refused:
        lines.append(_T.text("refused", lang, n=summary.open_refused))
        if summary.open_refused_out_of_scope:
            lines.append(_T.text("refused_grid", lang, n=summary.open_refused_out_of_scope))
    return lines


def install_sync(window: Any) -> SyncController:
    """Add the 同步 Sync menu and a toolbar button to ``window``; returns the controller."""
    controller = SyncController(window)
    lang = str(window.lang)
    menu = window.menuBar().addMenu(f"{_T.text('menu', 'zh')} {_T.text('menu', 'en')}")
    action = QAction(_T.text("action", lang), window)
    action.setObjectName("syncAction")
    action.triggered.connect(lambda _checked=False: controller.trigger())
    menu.addAction(action)
    toolbar = window.addToolBar(_T.text("menu", lang))
    toolbar.setObjectName("syncToolbar")
    toolbar.addAction(action)
    controller.menu, controller.action, controller.toolbar = menu, action, toolbar  # type: ignore[attr-defined]
    return controller


__all__ = [
    "Credentials",
    "SyncController",
    "SyncDialog",
    "install_sync",
    "load_password",
    "remember_password",
    "sync_task",
]
