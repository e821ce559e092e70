"""Scanning in the app: a hand-held scanner typing anywhere, a code typed or pasted, an image.

Hand-held scanners act as keyboards: a scan arrives as a burst of key presses far faster than
anyone types, then Enter (or Tab). ``ScannerFilter``, installed on the QApplication, holds back
plain printable key presses at the focused widget for a moment (``flush_ms``, about 50 ms):

* a key that follows the previous one within ``max_gap_ms`` (30 ms) extends the burst;
  modifier keys alone (the Shift a scanner presses before each capital and ':') neither
  extend nor end it;
* a longer pause, any other key, or the flush timer hands the held keys to the widget in
  their order, unchanged: normal typing arrives as typed, only a few milliseconds later;
* Enter/Tab ending a burst of at least ``min_length`` characters that is a GridCollect code
  (``qrpayload.decode`` does not say ``qr.not_ours``; refused codes count, so the app can say
  why) swallows the burst and emits ``scanned(text)``. Any other burst (a product barcode
  scanned into a text field) is handed over as typed, Enter included.

The clock is injectable for tests. Input methods are not affected: composed Chinese text
arrives as input-method events, not key presses.

``ScanDialog`` takes a code typed or pasted, or read from an image file, the clipboard or the
camera (``app.ui.camera``, where one exists).
``ScanController`` turns a scanned text into "open the record" plus a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from app.core import qrpayload, scan
from app.core.messages import Catalog
from app.core.store import Store
from app.ui.camera import CameraView, FrameDecoder, camera_available, watch_cameras

_END_KEYS = {Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Tab}
# Keys that only change the next key: scanners emulating a US keyboard send Shift press and
# release around every capital and ':' (and some toggle Caps Lock); they neither end a burst
# nor reach the held text.
_MODIFIER_KEYS = {
    Qt.Key.Key_Shift,
    Qt.Key.Key_CapsLock,
    Qt.Key.Key_Control,
    Qt.Key.Key_Alt,
    Qt.Key.Key_Meta,
    Qt.Key.Key_AltGr,
}
_COMMAND_MODS = (
    Qt.KeyboardModifier.ControlModifier
    | Qt.KeyboardModifier.AltModifier
    | Qt.KeyboardModifier.MetaModifier
)

_TEXT: dict[str, tuple[str, str]] = {
    "title": ("扫码", "Scan a code"),
    "prompt": (
        "用扫码枪扫描，或粘贴、输入二维码内容：",
        "Scan with a scanner, or paste or type the code:",
    ),
    "placeholder": ("GC1:…", "GC1:…"),
    "image": ("从图片识别…", "From an image…"),
    "clipboard": ("识别剪贴板图片", "From the clipboard"),
    "images": (
        "图片 (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp)",
        "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp)",
    ),
    "not_ours": (
        "图片中的二维码不是网格采集的记录码。",
        "The code in the image is not a GridCollect code.",
    ),
    "no_clip_image": ("剪贴板里没有图片。", "There is no image on the clipboard."),
    "result": ("扫码结果", "Scan result"),
    "camera": ("用摄像头扫码", "Use the camera"),
    "camera_hint": (
        "把门牌或记录表上的二维码对准摄像头。",
        "Hold the code on the door plate or sheet in front of the camera.",
    ),
    "no_camera": (
        "没有找到摄像头：请接上摄像头，或用扫码枪、图片、剪贴板扫码。",
        "No camera found: connect one, or scan with a hand-held scanner, an image or the clipboard.",
    ),
    "camera_failed": (
        "摄像头无法打开（{reason}）：请检查摄像头是否被其他程序占用。",
        "The camera could not be opened ({reason}): check that no other program is using it.",
    ),
}


_T = Catalog(_TEXT)


def is_gridcollect_code(text: str) -> bool:
    """Whether ``text`` is one of our codes, valid or refused (not someone else's barcode)."""
    try:
        qrpayload.decode(text)
    except qrpayload.PayloadError as exc:
        return exc.code != "qr.not_ours"
    return True


@dataclass
class _Held:
    receiver: QObject
    event: QKeyEvent
    at: float


class ScannerFilter(QObject):
    """Application-wide detection of keyboard-emulating scanners (see the module note)."""

    scanned = Signal(str)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_gap_ms: float = 30.0,
        min_length: int = 16,
        flush_ms: int = 50,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self.max_gap = max_gap_ms / 1000.0
        self.min_length = min_length
        self.enabled = True
        self._held: list[_Held] = []
        self._replaying = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(flush_ms)
        self._timer.timeout.connect(self.flush)

    def install(self, app: QGuiApplication | None = None) -> ScannerFilter:
        """Install on the application (the running one by default); returns self."""
        (app or QApplication.instance()).installEventFilter(self)
        return self

    def uninstall(self, app: QGuiApplication | None = None) -> None:
        self.flush()
        (app or QApplication.instance()).removeEventFilter(self)

    # -- the filter ---------------------------------------------------------------------------

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt name
        if self._replaying or not self.enabled or event.type() != QEvent.Type.KeyPress:
            return False
        if not self._is_target(obj) or not self._in_scope(obj):
            return False
        key_event: QKeyEvent = event  # type: ignore[assignment]
        if key_event.key() in _MODIFIER_KEYS:
            return False  # a scanner presses Shift before "G" and ":": the burst goes on
        now = self._clock()
        if self._held and (
            now - self._held[-1].at > self.max_gap or obj is not self._held[0].receiver
        ):
            self.flush()
        key = key_event.key()
        commands = bool(key_event.modifiers() & _COMMAND_MODS)
        if key in _END_KEYS and not commands:
            return self._finish()
        text = key_event.text()
        if text and text.isprintable() and not commands:
            self._held.append(_Held(obj, _clone(key_event), now))
            self._timer.start()
            return True
        self.flush()
        return False

    def _in_scope(self, obj: QObject) -> bool:
        """With a ``scope`` window, only keys for that window's widgets (and its dialogs)
        are watched: another main window's filter never swallows this one's typing."""
        scope = getattr(self, "scope", None)
        if scope is None or not isinstance(obj, QWidget):
            return True
        top = obj.window()
        return top is scope or top.parent() is scope or scope.isAncestorOf(obj)

    @staticmethod
    def _is_target(obj: QObject) -> bool:
        """Act where the key is delivered to the focused widget, once per key press.

        The window hop (a QWindow) and propagation to parents pass untouched.
        """
        if not isinstance(obj, QWidget):
            return False
        focus = QApplication.focusWidget()
        return focus is None or obj is focus

    def _finish(self) -> bool:
        """Enter/Tab: a complete GridCollect scan is swallowed and emitted; else replay."""
        text = "".join(h.event.text() for h in self._held)
        if len(text) >= self.min_length and is_gridcollect_code(text):
            self._held.clear()
            self._timer.stop()
            self.scanned.emit(text)
            return True
        self.flush()
        return False

    def flush(self) -> None:
        """Hand the held key presses to their widgets, in order."""
        self._timer.stop()
        held, self._held = self._held, []
        self._replaying = True
        try:
            for item in held:
                if isValid(item.receiver):
                    QApplication.sendEvent(item.receiver, item.event)
        finally:
            self._replaying = False


def _clone(event: QKeyEvent) -> QKeyEvent:
    return QKeyEvent(
        event.type(),
        event.key(),
        event.modifiers(),
        event.text(),
        event.isAutoRepeat(),
        event.count(),
    )


# -- dialog -----------------------------------------------------------------------------------


class ScanDialog(QDialog):
    """Type or paste a code, or read one from an image file or the clipboard."""

    def __init__(self, parent: QWidget | None = None, lang: str = "zh") -> None:
        super().__init__(parent)
        self.lang = lang
        self.setWindowTitle(_T.text("title", lang))
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText(_T.text("placeholder", lang))
        self.edit.setMinimumWidth(420)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.image_button = QPushButton(_T.text("image", lang), self)
        self.image_button.clicked.connect(lambda: self.open_image())
        self.clip_button = QPushButton(_T.text("clipboard", lang), self)
        self.clip_button.clicked.connect(self.from_clipboard)
        self.camera_button = QPushButton(_T.text("camera", lang), self)
        self.camera_button.clicked.connect(lambda: self.start_camera())
        self.camera_view: CameraView | None = None
        self._offer_camera()
        watch_cameras(self, self._offer_camera)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.image_button)
        row.addWidget(self.clip_button)
        row.addWidget(self.camera_button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        self._layout = layout
        layout.addWidget(QLabel(_T.text("prompt", lang), self))
        layout.addWidget(self.edit)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(buttons)

    def code(self) -> str:
        return self.edit.text().strip()

    def _offer_camera(self) -> None:
        """The camera button works where a camera is found, and says so where none is."""
        found = camera_available()
        self.camera_button.setEnabled(found)
        self.camera_button.setToolTip("" if found else _T.text("no_camera", self.lang))

    def start_camera(self, device: object | None = None) -> None:
        """Show the camera's picture (``device``: a ``QCameraDevice``, default the system's);
        the first GridCollect code seen fills in and accepts."""
        if self.camera_view is None:
            decoder = FrameDecoder(self)
            decoder.scanned.connect(self._from_camera)
            self.camera_view = CameraView(decoder, self, device)
            self.camera_view.failed.connect(self._camera_failed)
            self._layout.insertWidget(2, self.camera_view, 1)
        self.status.setText(_T.text("camera_hint", self.lang))
        self.camera_view.start()

    def _camera_failed(self, reason: str) -> None:
        self.status.setText(_T.text("camera_failed", self.lang, reason=reason or "?"))

    def _from_camera(self, code: str) -> None:
        if self.camera_view is not None:
            self.camera_view.stop()
        self.edit.setText(code)
        self.accept()

    def done(self, result: int) -> None:  # the camera is released however the dialog ends
        if self.camera_view is not None:
            self.camera_view.stop()
        super().done(result)

    def _take(self, texts: list[str]) -> bool:
        ours = [t for t in texts if is_gridcollect_code(t)]
        if ours:
            self.edit.setText(ours[0])
            self.status.clear()
            return True
        code = "scan.no_code" if not texts else None
        self.status.setText(
            scan.message(code, self.lang) if code else _T.text("not_ours", self.lang)
        )
        return False

    def open_image(self, path: str | None = None) -> bool:
        """Read the first GridCollect code of an image (asks for the file when no path)."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(
                self, _T.text("image", self.lang), "", _T.text("images", self.lang)
            )
            if not path:
                return False
        try:
            texts = scan.decode_image(path)
        except scan.ScanImageError as exc:
            self.status.setText(exc.message(self.lang))
            return False
        return self._take(texts)

    def from_clipboard(self) -> bool:
        image = QApplication.clipboard().image()
        if image.isNull():
            self.status.setText(_T.text("no_clip_image", self.lang))
            return False
        gray = image.convertToFormat(image.Format.Format_Grayscale8)
        return self._take(scan.decode_image(gray))

    @classmethod
    def get_code(cls, parent: QWidget | None = None, lang: str = "zh") -> str | None:
        """Show the dialog; the code, or None when cancelled or empty."""
        dialog = cls(parent, lang)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog.code() or None


# -- from a scan to the record ------------------------------------------------------------------


class ScanController(QObject):
    """Scanned text -> ``resolve_scan`` -> open the record and report what changed.

    ``open_record(record_id)`` opens it (the main window's ``open_record``); ``notify(result,
    lines)`` shows the outcome (default: a message box; tests pass their own).
    """

    handled = Signal(object)  # the ScanResult

    def __init__(
        self,
        parent: QWidget | None,
        store: Callable[[], Store] | Store,
        open_record: Callable[[str], object],
        lang: Callable[[], str] | str = "zh",
        notify: Callable[[scan.ScanResult, list[str]], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self._store = store if callable(store) else (lambda: store)
        self._lang = lang if callable(lang) else (lambda: lang)
        self._open = open_record
        self._notify = notify or self._message_box
        self._parent = parent

    def handle(self, text: str) -> scan.ScanResult:
        store = self._store()
        result = scan.resolve_scan(store, text)
        if result.record_id is not None:
            self._open(result.record_id)
        lines = []
        if result.changed_fields and result.payload is not None:
            lines = scan.change_lines(
                store.formset, result.payload.form, result.changed_fields, self._lang()
            )
        if result.code != "scan.same":
            self._notify(result, lines)
        self.handled.emit(result)
        return result

    def ask(self) -> scan.ScanResult | None:
        """The scan dialog, then ``handle``."""
        code = ScanDialog.get_code(self._parent, self._lang())
        return self.handle(code) if code else None

    def _message_box(self, result: scan.ScanResult, lines: list[str]) -> None:
        lang = self._lang()
        box = QMessageBox(self._parent)
        box.setWindowTitle(_T.text("result", lang))
        box.setIcon(QMessageBox.Icon.Information if result.ok else QMessageBox.Icon.Warning)
        box.setText(result.message(lang))
        if lines:
            box.setDetailedText("\n".join(lines))
            box.setInformativeText("\n".join(lines[:8]))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()


def install_scanning(
    window: QWidget,
    store: Callable[[], Store] | Store,
    open_record: Callable[[str], object],
    lang: Callable[[], str] | str = "zh",
) -> tuple[ScannerFilter, ScanController]:
    """Wire a main window: scanner filter on the app, scans opening records."""
    controller = ScanController(window, store, open_record, lang)
    scanner = ScannerFilter(window)
    scanner.scope = window
    scanner.install()
    scanner.scanned.connect(controller.handle)
    return scanner, controller


__all__ = [
    "ScanController",
    "ScanDialog",
    "ScannerFilter",
    "install_scanning",
    "is_gridcollect_code",
]
