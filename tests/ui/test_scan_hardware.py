"""Scanning as the hardware does it: a wedge scanner's exact key events, camera frames of a label."""

from __future__ import annotations

import uuid
from pathlib import Path

import pypdfium2
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QImage, QTransform
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit, QVBoxLayout, QWidget

from app.core import qrpayload, scan
from app.core.store import Grid, Store
from app.printing.labels import write_labels_pdf
from app.ui.camera import FrameDecoder, camera_available
from app.ui.scanner import ScannerFilter

SHIFTED = set('~!@#$%^&*()_+{}|:"<>?')


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class KeyLog(QObject):
    """Every key press and release the field receives, as (type, key, text, shift)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, int, str, bool]] = []

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt name
        if event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)  # type: ignore[attr-defined]
            kind = "press" if event.type() == QEvent.Type.KeyPress else "release"
            self.events.append((kind, event.key(), event.text(), shift))  # type: ignore[attr-defined]
        return False


@pytest.fixture
def field(qtbot, qapp):  # noqa: ANN001, ANN201
    host = QWidget()
    qtbot.addWidget(host)
    edit = QLineEdit(host)
    QVBoxLayout(host).addWidget(edit)
    host.show()
    qtbot.waitExposed(host)
    host.activateWindow()
    edit.setFocus()
    qtbot.waitUntil(lambda: qapp.focusWidget() is edit, timeout=1000)
    yield edit


def wedge_scan(target: QWidget, text: str, clock: Clock, gap_s: float = 0.002) -> None:
    """What a USB HID scanner sends with a US layout: Shift down, the key with Shift held,
    Shift up, around every capital and shifted symbol (':'); then Enter."""
    shift = Qt.KeyboardModifier.ShiftModifier
    for ch in text:
        if ch.isupper() or ch in SHIFTED:
            QTest.keyPress(target, Qt.Key.Key_Shift, shift)
            clock.now += gap_s / 2
            QTest.keyPress(target, ch, shift)
            QTest.keyRelease(target, ch, shift)
            QTest.keyRelease(target, Qt.Key.Key_Shift)
        else:
            QTest.keyClick(target, ch)
        clock.now += gap_s
    QTest.keyClick(target, Qt.Key.Key_Return)


def test_a_wedge_scanner_with_shift_around_capitals_and_colon_is_recognised(
    qtbot, qapp, field: QLineEdit
) -> None:  # noqa: ANN001
    clock = Clock()
    scanner = ScannerFilter(clock=clock).install(qapp)
    log = KeyLog()
    field.installEventFilter(log)
    code = qrpayload.encode(str(uuid.uuid4()), "resident", 3, b"k" * 32)
    assert any(c.isupper() for c in code) and ":" in code
    got: list[str] = []
    scanner.scanned.connect(got.append)
    try:
        wedge_scan(field.window().windowHandle(), code, clock)
    finally:
        scanner.uninstall(qapp)

    assert got == [code]
    assert field.text() == ""  # nothing of the scan fell into the field
    # the events really were a scanner's: Shift pressed with text "" before the capitals
    assert ("press", int(Qt.Key.Key_Shift), "", True) in log.events


def test_typing_with_shift_still_reaches_the_field(qtbot, qapp, field: QLineEdit) -> None:  # noqa: ANN001
    clock = Clock()
    scanner = ScannerFilter(clock=clock).install(qapp)
    try:
        wedge_scan(field.window().windowHandle(), "Room:A1", clock, gap_s=0.3)
    finally:
        scanner.uninstall(qapp)
    qtbot.waitUntil(lambda: field.text() == "Room:A1", timeout=1000)


# -- camera frames --------------------------------------------------------------------------------


def _label_frame(store: Store, tmp_path: Path) -> tuple[str, QImage]:
    """A 1280×720 camera-like frame: a printed door-plate label, rasterised from the PDF the
    app prints, small and slightly turned in a grey scene."""
    store.put_grid(Grid("330106001001-01", "第一网格", "330106001001", "幸福社区"))
    data = {
        "house_code": "H00001",
        "address_text": "浙江省杭州市西湖区文澜街88号听涛雅苑1栋1单元101室",
        "grid": "330106001001-01",
        "building": "1栋",
    }
    house = store.save("house", data, status="complete", author="wang").id
    pdf = tmp_path / "label.pdf"
    write_labels_pdf(store, [house], pdf, stock_id="A4-10")
    document = pypdfium2.PdfDocument(str(pdf))
    try:
        page = document[0].render(scale=150 / 72).to_pil().convert("RGB")
    finally:
        document.close()
    label = page.crop((0, 0, page.width // 2, page.height // 5))  # the first 105×57 mm label
    scene = Image.new("RGB", (1280, 720), (128, 128, 120))
    scene.paste(label.resize((label.width * 2 // 3, label.height * 2 // 3)), (300, 150))
    png = tmp_path / "frame.png"
    scene.save(png)
    frame = QImage(str(png)).transformed(QTransform().rotate(4))
    return house, frame.convertToFormat(QImage.Format.Format_RGB32)


def test_a_camera_frame_of_a_printed_label_opens_its_house(
    qtbot, store: Store, tmp_path: Path
) -> None:  # noqa: ANN001
    house, frame = _label_frame(store, tmp_path)
    decoder = FrameDecoder(min_interval_s=0)
    with qtbot.waitSignal(decoder.scanned, timeout=2000) as signal:
        decoder.take(frame)
    key = scan.deployment_key(store)
    assert qrpayload.decode(signal.args[0], key).record_id == house
    # the same code held in front of the camera is reported once, not every frame
    again: list[str] = []
    decoder.scanned.connect(again.append)
    decoder.take(frame)
    assert again == []


def test_frames_without_our_code_are_ignored(qtbot) -> None:  # noqa: ANN001
    decoder = FrameDecoder(min_interval_s=0)
    got: list[str] = []
    decoder.scanned.connect(got.append)
    blank = QImage(640, 480, QImage.Format.Format_RGB32)
    blank.fill(Qt.GlobalColor.white)
    decoder.take(blank)
    assert got == []


def test_without_a_camera_the_camera_button_says_so(qtbot) -> None:  # noqa: ANN001
    from PySide6.QtMultimedia import QMediaDevices

    from app.ui.scanner import ScanDialog

    assert QMediaDevices.videoInputs() == [] and not camera_available()  # none on this machine
    dialog = ScanDialog(None, "zh")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.camera_button.isVisible() and not dialog.camera_button.isEnabled()
    assert dialog.camera_button.toolTip().startswith("没有找到摄像头")
    english = ScanDialog(None, "en")
    qtbot.addWidget(english)
    assert english.camera_button.toolTip().startswith("No camera found")


def test_video_frames_of_a_printed_label_through_the_camera_sink_open_the_house(
    qtbot, store: Store, tmp_path: Path
) -> None:  # noqa: ANN001
    """The real QtMultimedia path: QCamera + QMediaCaptureSession + the preview's QVideoSink,
    frames made from a printed label pushed through the sink, the record opened. This machine
    has no camera, so the camera is a null device: it reports that it cannot open, and the
    frames stand in for what a real one would deliver."""
    from PySide6.QtCore import QTimer
    from PySide6.QtMultimedia import QCameraDevice, QMediaCaptureSession, QVideoFrame
    from PySide6.QtWidgets import QApplication

    from app.ui.scanner import ScanDialog
    from app.ui.window import MainWindow

    house, image = _label_frame(store, tmp_path)
    window = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(window)
    window.show()
    results: list[object] = []
    window.scan_ctl.handled.connect(results.append)
    seen: dict[str, object] = {}

    def in_the_dialog() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ScanDialog)
        try:
            use_the_camera(dialog)
        except BaseException as exc:  # a failed check must not leave the modal dialog open
            seen["error"] = exc
            dialog.reject()

    def use_the_camera(dialog: ScanDialog) -> None:
        dialog.start_camera(QCameraDevice())
        view = dialog.camera_view
        assert view is not None and isinstance(view.session, QMediaCaptureSession)
        assert view.session.camera() is view.camera and view.session.videoSink() is view.sink
        qtbot.waitUntil(lambda: "摄像头无法打开" in dialog.status.text(), timeout=3000)
        seen["status"] = dialog.status.text()
        blank = QImage(1280, 720, QImage.Format.Format_RGB32)
        blank.fill(Qt.GlobalColor.gray)
        view.sink.setVideoFrame(QVideoFrame(blank))  # nothing to read yet: the dialog stays
        seen["open_after_blank"] = dialog.isVisible()
        QTest.qWait(200)  # the decoder's frame interval
        view.sink.setVideoFrame(QVideoFrame(image))

    QTimer.singleShot(0, in_the_dialog)
    window.print_actions.actions["scan"].trigger()  # the dialog, modal, until a code is read
    assert "error" not in seen, seen.get("error")
    assert seen["open_after_blank"] is True and "摄像头无法打开" in str(seen["status"])
    assert [r.record_id for r in results] == [house]  # type: ignore[attr-defined]
    assert getattr(window.doc_tabs.currentWidget(), "record_id", None) == house
    window.close()
