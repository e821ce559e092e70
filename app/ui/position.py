"""A "use my position" button, shown only where a position source exists.

Sources, in order:

* QtPositioning (the OS location service). PySide6-Essentials does not ship it; it is there
  when the full PySide6 (Addons) is installed and Qt has a positioning plugin.
* An NMEA serial GPS (``GRIDCOLLECT_GPS_PORT``, e.g. ``/dev/ttyUSB0`` or ``COM3``; baud rate
  ``GRIDCOLLECT_GPS_BAUD``, default 4800), read with pyserial when it is installed.

Without either, the button stays hidden and its tooltip says why. Positions are WGS84, which
is what records store (``geo.to_storage``); the editor checks them against the grid.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QToolButton, QWidget

from app.core.geo import LonLat
from app.core.messages import Catalog

PORT_ENV, BAUD_ENV = "GRIDCOLLECT_GPS_PORT", "GRIDCOLLECT_GPS_BAUD"
TIMEOUT_MS = 20_000

_TEXT: dict[str, tuple[str, str]] = {
    "button": ("使用我的位置", "Use my position"),
    "tip": ("从定位设备读取当前经纬度（WGS84）", "Read the current position from the GPS (WGS84)"),
    "none": (
        "没有找到定位来源（GPS）。可连接串口 GPS 并设置 GRIDCOLLECT_GPS_PORT。",
        "No position source (GPS) was found; connect a serial GPS and set GRIDCOLLECT_GPS_PORT.",
    ),
    "waiting": ("正在定位…", "Getting a position…"),
    "failed": (
        "未能获得位置，请到开阔处重试或手动输入。",
        "No position; try in the open or type it.",
    ),
}


_T = Catalog(_TEXT)


# -- NMEA (Qt-free) -------------------------------------------------------------------------


def _nmea_checksum_ok(sentence: str) -> bool:
    body, star, check = sentence.partition("*")
    if not star:
        return True  # checksum is optional in NMEA 0183
    value = 0
    for ch in body.lstrip("$"):
        value ^= ord(ch)
    return check[:2].upper() == f"{value:02X}"


def _degrees(value: str, hemi: str, width: int) -> float:
    degrees, minutes = float(value[:width]), float(value[width:])
    result = degrees + minutes / 60.0
    return -result if hemi in ("S", "W") else result


def parse_nmea(line: str) -> LonLat | None:
    """The fix in a GGA or RMC sentence (any talker: GP, GN, BD, GL…), else None."""
    sentence = line.strip()
    if not sentence.startswith("$") or not _nmea_checksum_ok(sentence):
        return None
    fields = sentence.split("*")[0].split(",")
    kind = fields[0][3:]
    try:
        if kind == "GGA" and len(fields) > 6 and fields[6] not in ("", "0"):
            lat, lat_h, lon, lon_h = fields[2:6]
        elif kind == "RMC" and len(fields) > 6 and fields[2] == "A":
            lat, lat_h, lon, lon_h = fields[3:7]
        else:
            return None
        return LonLat(_degrees(lon, lon_h, 3), _degrees(lat, lat_h, 2))
    except (ValueError, IndexError):
        return None


# -- sources ---------------------------------------------------------------------------------


def qt_positioning_available() -> bool:
    return importlib.util.find_spec("PySide6.QtPositioning") is not None


def serial_gps_port() -> str | None:
    """The configured serial GPS port, when pyserial is installed to read it."""
    port = os.environ.get(PORT_ENV)
    return port if port and importlib.util.find_spec("serial") is not None else None


class _Request(QObject):
    """One position request; emits ``done(LonLat | None)`` once, on the GUI thread.

    Reader threads emit ``found``; Qt queues it to this object's thread.
    """

    done = Signal(object)
    found = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._finished = False
        self._timer = QTimer(self, singleShot=True, interval=TIMEOUT_MS)
        self._timer.timeout.connect(lambda: self.finish(None))
        self.found.connect(self.finish)

    def finish(self, position: LonLat | None) -> None:
        if not self._finished:
            self._finished = True
            self._timer.stop()
            self.done.emit(position)


def _qt_request(parent: QObject) -> _Request | None:
    from PySide6 import QtPositioning  # type: ignore[attr-defined]

    source = QtPositioning.QGeoPositionInfoSource.createDefaultSource(parent)
    if source is None:
        return None
    request = _Request(parent)

    def got(info: object) -> None:
        coordinate = info.coordinate()  # type: ignore[attr-defined]
        request.finish(LonLat(coordinate.longitude(), coordinate.latitude()))

    source.positionUpdated.connect(got)
    source.errorOccurred.connect(lambda _error: request.finish(None))
    request._timer.start()
    source.requestUpdate(TIMEOUT_MS)
    return request


def _serial_request(parent: QObject, port: str) -> _Request:
    request = _Request(parent)
    baud = int(os.environ.get(BAUD_ENV, "4800"))

    def read() -> None:
        import serial  # type: ignore[import-not-found]

        fix = None
        try:
            with serial.Serial(port, baud, timeout=1) as device:
                for _ in range(200):  # a few seconds of sentences at most
                    fix = parse_nmea(device.readline().decode("ascii", "replace"))
                    if fix is not None:
                        break
        except (OSError, ValueError):
            fix = None
        request.found.emit(fix)

    request._timer.start()
    threading.Thread(target=read, name="gps-nmea", daemon=True).start()
    return request


def request_position(parent: QObject) -> _Request | None:
    """Start one position request on the first available source; None when there is none."""
    if qt_positioning_available():
        request = _qt_request(parent)
        if request is not None:
            return request
    port = serial_gps_port()
    return _serial_request(parent, port) if port else None


def has_position_source() -> bool:
    return qt_positioning_available() or serial_gps_port() is not None


class PositionButton(QToolButton):
    """Emits ``position(LonLat)`` (WGS84) or ``failed(message)``; hidden without a source."""

    position = Signal(object)
    failed = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        lang: str = "zh",
        available: Callable[[], bool] = has_position_source,
    ) -> None:
        super().__init__(parent)
        self.lang = lang
        self.setText(_T.text("button", lang))
        self.available = available()
        self.setToolTip(_T.text("tip" if self.available else "none", lang))
        self.setVisible(self.available)
        self.clicked.connect(self.locate)

    def locate(self) -> None:
        request = request_position(self)
        if request is None:
            self.failed.emit(_T.text("none", self.lang))
            return
        self.setEnabled(False)
        self.setToolTip(_T.text("waiting", self.lang))
        request.done.connect(self._done)

    def _done(self, fix: LonLat | None) -> None:
        self.setEnabled(True)
        self.setToolTip(_T.text("tip", self.lang))
        if fix is None:
            self.failed.emit(_T.text("failed", self.lang))
        else:
            self.position.emit(fix)


__all__ = ["PositionButton", "has_position_source", "parse_nmea", "request_position"]
