"""Scanning with the laptop's or tablet's camera: video frames decoded with zxing-cpp.

Why two parts: ``FrameDecoder`` takes any frame (a ``QVideoFrame`` from QtMultimedia, or a
``QImage``), so it is tested with images of printed labels on machines without a camera;
``CameraView`` is the thin QtMultimedia wiring (``QCamera`` -> ``QMediaCaptureSession`` ->
the preview widget's ``QVideoSink``, whose frames go to the decoder). QtMultimedia ships in
PySide6-Addons (a dependency); where no camera is found, ``camera_available()`` is False and
the scan dialog's camera button is disabled and says why.

Decoding every frame at 30 fps would starve the UI thread, so a frame is decoded at most every
``min_interval_s``; the same code held in front of the camera is reported once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.core import scan


class _Frame(Protocol):
    def toImage(self) -> QImage: ...  # noqa: N802 - QVideoFrame's name


def _multimedia() -> Any | None:
    """The QtMultimedia modules, or None where PySide6-Addons is not installed."""
    try:
        from PySide6 import QtMultimedia, QtMultimediaWidgets
    except ImportError:
        return None
    return (QtMultimedia, QtMultimediaWidgets)


def camera_available() -> bool:
    """Whether a camera can be used here (QtMultimedia present and a video input found)."""
    modules = _multimedia()
    return bool(modules and modules[0].QMediaDevices.videoInputs())


class FrameDecoder(QObject):
    """Frames in, GridCollect codes out (``scanned``); other barcodes are ignored."""

    scanned = Signal(str)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        min_interval_s: float = 0.15,
        repeat_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self.min_interval_s, self.repeat_s, self._clock = min_interval_s, repeat_s, clock
        self._last_try = float("-inf")
        self._last: tuple[str, float] | None = None

    def take(self, frame: QImage | _Frame) -> str | None:
        """Decode one frame (when due); the code emitted, if any."""
        now = self._clock()
        if now - self._last_try < self.min_interval_s:
            return None
        self._last_try = now
        image = frame if isinstance(frame, QImage) else frame.toImage()
        if image.isNull():
            return None
        gray = image.convertToFormat(QImage.Format.Format_Grayscale8)
        from app.ui.scanner import is_gridcollect_code

        code = next((t for t in scan.decode_image(gray) if is_gridcollect_code(t)), None)
        if code is None:
            return None
        if self._last is not None and self._last[0] == code and now - self._last[1] < self.repeat_s:
            self._last = (code, now)
            return None
        self._last = (code, now)
        self.scanned.emit(code)
        return code


def watch_cameras(parent: QObject, changed: Callable[[], None]) -> None:
    """Call ``changed`` when a camera is plugged in or out (no-op without QtMultimedia)."""
    modules = _multimedia()
    if modules is not None:
        devices = modules[0].QMediaDevices(parent)
        devices.videoInputsChanged.connect(changed)


class CameraView(QWidget):
    """A live camera preview whose frames go to a ``FrameDecoder`` (needs QtMultimedia).

    ``device``: a ``QCameraDevice`` (default: the system's default camera); ``sink`` is the
    ``QVideoSink`` every frame passes through; ``failed`` carries the camera's error text.
    """

    failed = Signal(str)

    def __init__(
        self, decoder: FrameDecoder, parent: QWidget | None = None, device: Any | None = None
    ) -> None:
        super().__init__(parent)
        modules = _multimedia()
        if modules is None:
            raise RuntimeError("QtMultimedia is not installed")
        multimedia, widgets = modules
        self.video = widgets.QVideoWidget(self)
        if device is None:
            device = multimedia.QMediaDevices.defaultVideoInput()
        self.camera = multimedia.QCamera(device, self)
        self.camera.errorOccurred.connect(lambda _error, text: self.failed.emit(text))
        self.session = multimedia.QMediaCaptureSession(self)
        self.session.setCamera(self.camera)
        self.session.setVideoOutput(self.video)
        self.sink = self.video.videoSink()
        self.sink.videoFrameChanged.connect(decoder.take)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.video)
        self.setMinimumSize(320, 240)

    def start(self) -> None:
        """Start the camera; a device that failed already (unplugged, or none) says so."""
        if self.camera.error() != type(self.camera).Error.NoError:
            self.failed.emit(self.camera.errorString())
            return
        self.camera.start()

    def stop(self) -> None:
        self.camera.stop()


__all__ = ["CameraView", "FrameDecoder", "camera_available", "watch_cameras"]
