"""The first-run start page: an empty data dir asks who works here and where the data comes from.

Why: an empty data dir used to open a main window with empty lists and no hint; a new worker
did not know that records come from a first sync or that a demo exists. This page asks for
the worker's name (history records it as "who") and one of two starts:

* connect to a platform: server URL, user, password; the main window then runs the first sync
  behind its progress dialog (``SyncController.start``);
* open the demo: a small fictional community, generated behind the same progress dialog.

The page only collects; ``app.ui.main.build`` opens the store (one place, also for a
passphrase step) and hands the choice to the main window (``MainWindow.begin``).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.core.messages import Catalog
from app.core.store import Store
from app.ui.syncui import SERVER_KEY, USER_KEY, Credentials, remember_password

DEMO_SIZE = 3000  # a few buildings of a community: enough to try every view, made in seconds

_T = Catalog(
    {
        "title": ("欢迎使用网格采集", "Welcome to GridCollect"),
        "intro": (
            "这台设备上还没有数据。请填写您的姓名，并选择从哪里开始。",
            "There is no data on this device yet. Enter your name and choose how to start.",
        ),
        "name": ("采集员姓名", "Your name"),
        "name_hint": (
            "如 王小明（记录的修改历史会写上这个名字）",
            "e.g. Wang Xiaoming (shown in history)",
        ),
        "platform": ("连接平台（首次同步下载本网格的数据）", "Connect to a platform (first sync)"),
        "demo": ("打开演示数据（虚构的社区，用来试用）", "Open the demo (a fictional community)"),
        "server": ("服务器地址", "Server URL"),
        "user": ("用户名", "User name"),
        "password": ("密码", "Password"),
        "remember": ("在本机记住密码", "Remember the password on this device"),
        "start": ("开始", "Start"),
        "quit": ("退出", "Quit"),
        "need_name": (
            "请填写采集员姓名：修改历史会记下是谁录入的。",
            "Enter your name: the history records who entered what.",
        ),
        "need_login": (
            "请填写服务器地址、用户名和密码。",
            "Fill in the server URL, user name and password.",
        ),
        "bad_url": (
            "服务器地址应以 http:// 或 https:// 开头，如 https://grid.example.cn。",
            "The server URL must start with http:// or https://, e.g. https://grid.example.cn.",
        ),
    }
)


@dataclass(frozen=True)
class StartChoice:
    """What the start page decided: who, and "platform" (with credentials) or "demo"."""

    worker_name: str
    kind: str
    credentials: Credentials | None = None
    demo_size: int = DEMO_SIZE


def is_first_run(store: Store) -> bool:
    """An empty data dir: no records, no grids and no platform configured."""
    return store.count() == 0 and not store.grids() and not store.meta(SERVER_KEY)


class StartPage(QDialog):
    """Name, then platform (URL, user, password) or demo; ``choice()`` once accepted."""

    def __init__(self, store: Store, lang: str = "zh", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("startPage")
        self.store, self.lang = store, lang
        self.setWindowTitle(_T.text("title", lang))
        self.name = QLineEdit(self)
        self.name.setPlaceholderText(_T.text("name_hint", lang))
        self.platform_radio = QRadioButton(_T.text("platform", lang), self)
        self.demo_radio = QRadioButton(_T.text("demo", lang), self)
        group = QButtonGroup(self)
        for radio in (self.platform_radio, self.demo_radio):
            group.addButton(radio)
        self.platform_radio.setChecked(True)
        self.server = QLineEdit(self)
        self.server.setPlaceholderText("https://grid.example.cn")
        self.user = QLineEdit(self)
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.remember = QCheckBox(_T.text("remember", lang), self)
        self.login = QGroupBox(self)
        form = QFormLayout(self.login)
        form.addRow(_T.text("server", lang), self.server)
        form.addRow(_T.text("user", lang), self.user)
        form.addRow(_T.text("password", lang), self.password)
        form.addRow(self.remember)
        self.platform_radio.toggled.connect(self.login.setEnabled)
        self.message = QLabel(self)
        self.message.setObjectName("startMessage")
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(self)
        self.start_button = buttons.addButton(
            _T.text("start", lang), QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.quit_button = buttons.addButton(
            _T.text("quit", lang), QDialogButtonBox.ButtonRole.RejectRole
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        intro = QLabel(_T.text("intro", lang), self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        name_row = QFormLayout()
        name_row.addRow(_T.text("name", lang), self.name)
        layout.addLayout(name_row)
        layout.addWidget(self.platform_radio)
        layout.addWidget(self.login)
        layout.addWidget(self.demo_radio)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.setMinimumWidth(520)

    def problem(self) -> str | None:
        """What to fix before starting (a bilingual catalog key), or None."""
        if not self.name.text().strip():
            return "need_name"
        if self.platform_radio.isChecked():
            server = self.server.text().strip()
            if not (server and self.user.text().strip() and self.password.text()):
                return "need_login"
            if not server.lower().startswith(("http://", "https://")):
                return "bad_url"
        return None

    def accept(self) -> None:
        """Start only with everything needed; else say what to fix (nothing is stored)."""
        problem = self.problem()
        if problem is not None:
            self.message.setText(_T.text(problem, self.lang))
            return
        if self.platform_radio.isChecked():
            creds = self._credentials()
            self.store.set_meta(SERVER_KEY, creds.server)
            self.store.set_meta(USER_KEY, creds.user)
            remember_password(self.store, creds.password if self.remember.isChecked() else None)
        super().accept()

    def _credentials(self) -> Credentials:
        return Credentials(
            self.server.text().strip().rstrip("/"), self.user.text().strip(), self.password.text()
        )

    def choice(self) -> StartChoice:
        name = self.name.text().strip()
        if self.platform_radio.isChecked():
            return StartChoice(name, "platform", self._credentials())
        return StartChoice(name, "demo")


def ask_start(store: Store, lang: str = "zh") -> StartChoice | None:
    """Show the start page; the choice, or None when the worker quits."""
    page = StartPage(store, lang)
    if page.exec() != QDialog.DialogCode.Accepted:
        return None
    return page.choice()


__all__ = ["DEMO_SIZE", "StartChoice", "StartPage", "ask_start", "is_first_run"]
