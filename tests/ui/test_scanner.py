"""The keyboard-scanner filter with real key events and a controlled clock; dialog; controller."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import qrcode
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit, QVBoxLayout, QWidget

from app.core import qrpayload, scan
from app.core.store import Store
from app.ui.position import PositionButton, parse_nmea
from app.ui.scanner import ScanController, ScanDialog, ScannerFilter, is_gridcollect_code
from tests.factories import resident


class Clock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def field(qtbot):  # noqa: ANN001, ANN201
    host = QWidget()
    qtbot.addWidget(host)
    edit = QLineEdit(host)
    QVBoxLayout(host).addWidget(edit)
    host.show()
    qtbot.waitExposed(host)
    host.activateWindow()
    edit.setFocus()
    yield edit  # the host stays referenced (alive) until the test ends


@pytest.fixture
def scanner(qapp, clock: Clock):  # noqa: ANN001, ANN201
    flt = ScannerFilter(clock=clock).install(qapp)
    yield flt
    flt.uninstall(qapp)


def _type(
    widget: QWidget, text: str, clock: Clock, gap_s: float, end: Qt.Key | None = None
) -> None:
    for ch in text:
        QTest.keyClick(widget, ch)
        clock.now += gap_s
    if end is not None:
        QTest.keyClick(widget, end)


def _code() -> str:
    return qrpayload.encode(str(uuid.uuid4()), "resident", 2, b"k" * 32)


def test_a_fast_burst_ending_in_enter_is_a_scan(
    qtbot, field: QLineEdit, scanner: ScannerFilter, clock: Clock
) -> None:  # noqa: ANN001
    code = _code()
    entered = []
    field.returnPressed.connect(lambda: entered.append(True))
    with qtbot.waitSignal(scanner.scanned, timeout=1000) as signal:
        _type(field, code, clock, 0.004, Qt.Key.Key_Return)
    assert signal.args == [code]
    assert field.text() == "" and not entered  # nothing reached the field


@pytest.mark.parametrize("end", [Qt.Key.Key_Enter, Qt.Key.Key_Tab])
def test_other_end_keys_and_lower_case_scanners(
    qtbot, field: QLineEdit, scanner: ScannerFilter, clock: Clock, end: Qt.Key
) -> None:  # noqa: ANN001
    code = _code().lower()  # a scanner with Caps Lock on
    with qtbot.waitSignal(scanner.scanned, timeout=1000) as signal:
        _type(field, code, clock, 0.01, end)
    assert signal.args == [code] and qrpayload.decode(code, b"k" * 32)


def test_slow_typing_reaches_the_field_untouched(
    qtbot, field: QLineEdit, scanner: ScannerFilter, clock: Clock
) -> None:  # noqa: ANN001
    code = _code()  # even a whole code, typed by hand
    got = []
    scanner.scanned.connect(got.append)
    entered = []
    field.returnPressed.connect(lambda: entered.append(field.text()))
    _type(field, code, clock, 0.15, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(entered), timeout=1000)
    assert entered == [code] and field.text() == code and got == []


def test_a_fast_burst_that_is_not_ours_is_typed_as_scanned(
    qtbot, field: QLineEdit, scanner: ScannerFilter, clock: Clock
) -> None:  # noqa: ANN001
    got, entered = [], []
    scanner.scanned.connect(got.append)
    field.returnPressed.connect(lambda: entered.append(field.text()))
    _type(field, "6901234567892ABCDEFG", clock, 0.005, Qt.Key.Key_Return)
    assert entered == ["6901234567892ABCDEFG"] and got == []


def test_held_keys_are_flushed_after_a_pause(
    qtbot, field: QLineEdit, scanner: ScannerFilter, clock: Clock
) -> None:  # noqa: ANN001
    _type(field, "ab", clock, 0.005)
    qtbot.waitUntil(lambda: field.text() == "ab", timeout=1000)
    QTest.keyClick(field, Qt.Key.Key_Backspace)  # other keys pass straight through, in order
    assert field.text() == "a"


def test_shortcuts_are_not_held(
    qtbot, field: QLineEdit, scanner: ScannerFilter, clock: Clock
) -> None:  # noqa: ANN001
    field.setText("hello")
    QTest.keyClick(field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert field.selectedText() == "hello"


def test_is_gridcollect_code() -> None:
    code = _code()
    tampered = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert is_gridcollect_code(code) and is_gridcollect_code(tampered)
    assert not is_gridcollect_code("6901234567892") and not is_gridcollect_code("hello world")


def _person(store: Store) -> str:
    return store.save("resident", resident(), status="complete", author="wang").id


def test_controller_opens_the_record_and_reports_refusals(qapp, store: Store) -> None:  # noqa: ANN001
    key = scan.deployment_key(store, create=True)
    rid = _person(store)
    opened, notes = [], []
    controller = ScanController(
        None, store, opened.append, "zh", lambda r, lines: notes.append((r, lines))
    )

    code = qrpayload.encode(rid, "resident", 1, key)
    assert controller.handle(code).record_id == rid and opened == [rid] and notes == []

    store.save(
        "resident",
        {**store.get(rid).data, "phone": "13912345678"},
        record_id=rid,
        status="complete",
    )
    result = controller.handle(code)
    assert result.code == "scan.changed" and opened == [rid, rid]
    assert notes[-1][1] == ["联系方式: 138****8000 → 139****5678"]

    i = code.index(":", 4) + 3  # inside the record id
    tampered = code[:i] + ("A" if code[i] != "A" else "B") + code[i + 1 :]
    refused = controller.handle(tampered)
    assert refused.code == "qr.integrity" and opened == [rid, rid]
    assert notes[-1][0].message("zh") == qrpayload.message("qr.integrity")


def test_scan_dialog_reads_a_code_from_an_image(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    code = _code()
    path = tmp_path / "photo.png"
    qrcode.make(code).save(path)
    dialog = ScanDialog(None, "zh")
    qtbot.addWidget(dialog)
    assert dialog.open_image(str(path)) and dialog.code() == code

    other = tmp_path / "other.png"
    qrcode.make("https://example.org/not-ours").save(other)
    assert not dialog.open_image(str(other)) and "不是网格采集" in dialog.status.text()
    text_file = tmp_path / "x.txt"
    text_file.write_text("x", encoding="utf-8")
    assert not dialog.open_image(str(text_file)) and "无法读取" in dialog.status.text()


def test_nmea_sentences() -> None:
    gga = "$GPGGA,123519,3954.9950,N,11623.8277,E,1,08,0.9,545.4,M,46.9,M,,*"
    body = gga[1:-1]
    checksum = 0
    for ch in body:
        checksum ^= ord(ch)
    fix = parse_nmea(f"{gga}{checksum:02X}")
    assert fix is not None
    assert abs(fix.lat - (39 + 54.995 / 60)) < 1e-9 and abs(fix.lon - (116 + 23.8277 / 60)) < 1e-9
    assert parse_nmea(f"{gga}00") is None  # bad checksum
    assert parse_nmea("$GNRMC,123519,V,,,,,,,230394,,,N") is None  # no fix
    rmc = parse_nmea("$GNRMC,123519,A,2232.1000,S,11400.6000,W,0.0,0.0,230394,,,A")
    assert rmc is not None and rmc.lat < 0 and rmc.lon < 0


def test_position_button_hides_without_a_source(qtbot) -> None:  # noqa: ANN001
    hidden = PositionButton(None, "zh", available=lambda: False)
    qtbot.addWidget(hidden)
    assert not hidden.isVisibleTo(None) and "没有找到定位来源" in hidden.toolTip()
    shown = PositionButton(None, "en", available=lambda: True)
    qtbot.addWidget(shown)
    assert shown.isVisibleTo(None) and "GPS" in shown.toolTip()


def test_keys_delivered_through_the_window_like_a_real_keyboard(
    qtbot,
    qapp,
    field: QLineEdit,
    scanner: ScannerFilter,
    clock: Clock,  # noqa: ANN001
) -> None:
    """Real key events reach the QWindow first, then the focus widget: handled exactly once."""
    qtbot.waitUntil(lambda: qapp.focusWidget() is field, timeout=1000)
    window = field.window().windowHandle()
    code = _code()
    got = []
    scanner.scanned.connect(got.append)
    for ch in code:
        QTest.keyClick(window, ch)
        clock.now += 0.003
    QTest.keyClick(window, Qt.Key.Key_Return)
    assert got == [code] and field.text() == ""
    for ch in "hello":
        QTest.keyClick(window, ch)
        clock.now += 0.2
    qtbot.waitUntil(lambda: field.text() == "hello", timeout=1000)
