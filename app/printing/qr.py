"""QR symbols for printing: alphanumeric mode, error correction M, drawn as crisp bitmaps.

Two encoders give the same kind of symbol (the payload's characters are all in QR's
alphanumeric set, so both pick alphanumeric mode, and a signed payload fits version 3):

* zxing-cpp's writer (already a dependency, for reading): C++, under 1 ms a code, with the
  standard choice among the 8 mask patterns;
* the ``qrcode`` package: pure Python, about 11 ms a code, most of it spent scoring masks.
  A 1,000-label batch would spend 11 s on that alone, so it is the fallback, used when the
  installed zxing-cpp cannot write codes (before 2.3).

A code is painted as a small grey image (``MODULE_PX`` pixels a module) scaled to its box.
In a PDF that is one tiny lossless (Flate, not JPEG) image without /Interpolate, so viewers and printers enlarge it
with hard module edges; it is also five times faster to write than the same code as vector
rectangles (Qt's PDF engine serialises paths slowly), which is what keeps 1,000 labels in a
few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter

from app.core.qrpayload import QR_ALPHANUMERIC

Engine = Literal["auto", "zxing", "qrcode"]
QUIET_MODULES = 4  # the standard quiet zone
MODULE_PX = 2  # image pixels a module: edges stay hard where a viewer smooths enlargements
_DARK, _LIGHT = 0, 255


@dataclass(frozen=True)
class QrMatrix:
    """A symbol's modules: ``size`` rows of ``size`` bytes, 0 dark and 255 light. No quiet zone."""

    size: int
    data: bytes

    def dark(self, x: int, y: int) -> bool:
        return self.data[y * self.size + x] == _DARK


def _zxing_matrix(text: str) -> QrMatrix:
    import zxingcpp

    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    view = memoryview(barcode.to_image(scale=1, add_quiet_zones=False))
    height, width = view.shape
    if height != width:
        raise ValueError("zxing-cpp returned a non-square QR symbol")
    return QrMatrix(width, view.tobytes())


def _qrcode_matrix(text: str) -> QrMatrix:
    import qrcode
    import qrcode.constants
    import qrcode.util

    alnum = set(text) <= QR_ALPHANUMERIC
    mode = qrcode.util.MODE_ALPHA_NUM if alnum else qrcode.util.MODE_8BIT_BYTE
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(qrcode.util.QRData(text.encode("utf-8"), mode=mode))
    code.make(fit=True)
    rows = code.get_matrix()
    data = bytes(_DARK if m else _LIGHT for row in rows for m in row)
    return QrMatrix(len(rows), data)


@lru_cache(maxsize=1)
def _zxing_can_write() -> bool:
    try:
        import zxingcpp
    except ImportError:
        return False
    return hasattr(zxingcpp, "create_barcode")


def qr_matrix(text: str, engine: Engine = "auto") -> QrMatrix:
    """Encode ``text`` at error-correction level M (alphanumeric mode when it allows)."""
    if engine == "qrcode" or (engine == "auto" and not _zxing_can_write()):
        return _qrcode_matrix(text)
    return _zxing_matrix(text)


def _module_image(matrix: QrMatrix, module_px: int) -> QImage:
    n = matrix.size
    image = QImage(matrix.data, n, n, n, QImage.Format.Format_Grayscale8).copy()
    if module_px > 1:
        side = n * module_px
        image = image.scaled(
            side,
            side,
            Qt.AspectRatioMode.IgnoreAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )
    return image


def qr_image(text: str | QrMatrix, module_px: int = 4, quiet: int = QUIET_MODULES) -> QImage:
    """A black-on-white bitmap of the code with a quiet zone (for screens and dialogs)."""
    matrix = text if isinstance(text, QrMatrix) else qr_matrix(text)
    side = (matrix.size + 2 * quiet) * module_px
    image = QImage(side, side, QImage.Format.Format_Grayscale8)
    image.fill(QColor(Qt.GlobalColor.white))
    painter = QPainter(image)
    painter.drawImage(quiet * module_px, quiet * module_px, _module_image(matrix, module_px))
    painter.end()
    return image


def draw_qr(
    painter: QPainter, rect: QRectF, text: str | QrMatrix, quiet: int = QUIET_MODULES
) -> None:
    """Draw the code centred in ``rect`` as a square, its quiet zone (white) included."""
    matrix = text if isinstance(text, QrMatrix) else qr_matrix(text)
    side = min(rect.width(), rect.height())
    x = rect.x() + (rect.width() - side) / 2
    y = rect.y() + (rect.height() - side) / 2
    module = side / (matrix.size + 2 * quiet)
    painter.fillRect(QRectF(x, y, side, side), QColor(Qt.GlobalColor.white))
    symbol = QRectF(
        x + quiet * module, y + quiet * module, matrix.size * module, matrix.size * module
    )
    painter.save()
    # Not smoothed (no /Interpolate) and lossless (Qt's PDF engine would otherwise use JPEG).
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
    painter.setRenderHint(QPainter.RenderHint.LosslessImageRendering, True)
    painter.drawImage(symbol, _module_image(matrix, MODULE_PX))
    painter.restore()


__all__ = ["MODULE_PX", "QUIET_MODULES", "QrMatrix", "draw_qr", "qr_image", "qr_matrix"]
