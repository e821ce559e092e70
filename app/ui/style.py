"""Touch mode: large fonts and targets for tablets, switchable at runtime.

Done with a style-sheet block rather than by walking widgets: a sheet on the application (or
on a window) also reaches widgets created later (dialogs, popups, a record opened after the
switch), and Qt turns ``min-height`` into the widgets' minimum size, so layouts grow with it.
The block is marked so switching off removes exactly what switching on added and leaves any
other style sheet alone.
"""

from __future__ import annotations

import re

from PySide6.QtWidgets import QApplication, QWidget

TOUCH_TARGET_PX = 48  # minimum height of anything a finger taps (Android/Apple guidance)
TOUCH_FONT_PX = 18
_BEGIN = "/* gridcollect-touch-mode begin */"
_END = "/* gridcollect-touch-mode end */"
_BLOCK_RE = re.compile(r"\n?" + re.escape(_BEGIN) + r".*?" + re.escape(_END) + r"\n?", re.DOTALL)
_PROPERTY = "gridcollectTouchMode"


def touch_stylesheet(target_px: int = TOUCH_TARGET_PX, font_px: int = TOUCH_FONT_PX) -> str:
    """The style-sheet block touch mode adds."""
    return f"""{_BEGIN}
QWidget {{ font-size: {font_px}px; }}
QLineEdit, QComboBox, QPushButton, QToolButton, QAbstractSpinBox, QDateEdit {{
    min-height: {target_px}px;
}}
QPushButton, QToolButton {{ min-width: {target_px}px; padding: 0 12px; }}
QCheckBox, QRadioButton, QLabel#fieldLabel {{ min-height: {target_px}px; }}
QCheckBox::indicator, QRadioButton::indicator {{ width: 28px; height: 28px; }}
QAbstractItemView::item {{ min-height: {target_px}px; }}
QScrollBar:vertical {{ width: 24px; }}
QScrollBar:horizontal {{ height: 24px; }}
{_END}
"""


def apply_touch_mode(target: QApplication | QWidget, on: bool) -> None:
    """Switch touch mode on or off for the whole app or for one widget tree."""
    sheet = _BLOCK_RE.sub("", target.styleSheet() or "")
    if on:
        sheet = f"{sheet}\n{touch_stylesheet()}" if sheet else touch_stylesheet()
    target.setStyleSheet(sheet)
    target.setProperty(_PROPERTY, bool(on))


def is_touch_mode(target: QApplication | QWidget) -> bool:
    """Whether ``apply_touch_mode(target, True)`` is in effect."""
    return bool(target.property(_PROPERTY))
