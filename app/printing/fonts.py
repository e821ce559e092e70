"""A font that really has Chinese glyphs, or a clear error instead of a PDF full of boxes.

Qt substitutes fonts silently: a ``QFont("Noto Sans CJK SC")`` on a machine without it
still "works" and the PDF shows tofu. So the family is checked glyph by glyph with
``QRawFont`` (one physical font, no fallback chain), which ``QFontMetrics.inFontUcs4`` is not.

Search order: the preferred families below (Noto/Source Han, WenQuanYi, the Windows and macOS
system fonts), then any family the font database lists for Simplified Chinese, then font files
at well-known paths (and ``GRIDCOLLECT_CJK_FONT``, a file path) loaded into the database.
Qt embeds the chosen font in PDFs as a subset (checked by the printing tests). Its ToUnicode
map picks the lowest code point for a glyph, so a few characters extract as their compatibility
twins (身 as the Kangxi radical ⾝); NFKC folds them back.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication, QRawFont

from app.core.messages import pick

SAMPLE = "中文网格采集第页号栋室"
PREFERRED = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Droid Sans Fallback",
    "AR PL UMing CN",
)
FONT_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
)
FONT_ENV = "GRIDCOLLECT_CJK_FONT"

_MESSAGE = (
    "没有可用的中文字体，打印会显示方框。请安装 fonts-noto-cjk。",
    "No Chinese font is available, so printouts would show boxes. Install fonts-noto-cjk.",
)


class NoCjkFontError(RuntimeError):
    """No installed font covers Chinese; printing refuses rather than printing boxes."""

    code = "print.no_cjk_font"

    def __init__(self) -> None:
        super().__init__(self.code)

    def message(self, lang: str = "zh") -> str:
        return pick(lang, *_MESSAGE)


def ensure_gui_app() -> QGuiApplication:
    """The running Qt application, or a new headless one (command line, tests).

    Without a display (no DISPLAY/WAYLAND_DISPLAY on Linux) the offscreen platform is chosen
    before Qt starts, since painting to a PDF needs fonts but no screen.
    """
    app = QGuiApplication.instance()
    if app is not None:
        return app  # type: ignore[return-value]
    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if headless:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return QGuiApplication([sys.argv[0] if sys.argv else "gridcollect"])


def covers(family: str, text: str = SAMPLE) -> bool:
    """Whether ``family`` itself (no fallback) has a glyph for every character of ``text``."""
    raw = QRawFont.fromFont(QFont(family))
    if not raw.isValid() or raw.familyName().casefold() != family.casefold():
        return False
    return all(
        raw.supportsCharacter(ord(ch)) for ch in text
    )  # ord: the QChar overload misreads str


def pick_family(candidates: Iterable[str], has_glyphs: Callable[[str], bool]) -> str | None:
    """The first candidate that ``has_glyphs`` accepts (kept pure for tests)."""
    return next((f for f in candidates if has_glyphs(f)), None)


def _candidates() -> list[str]:
    installed = QFontDatabase.families()
    chinese = QFontDatabase.families(QFontDatabase.WritingSystem.SimplifiedChinese)
    preferred = [f for f in PREFERRED if f in installed]
    others = sorted(f for f in chinese if f not in preferred and "Mono" not in f)
    return preferred + others


def load_font_file(path: str | Path) -> list[str]:
    """Add a font file to Qt's database; the families it brought (empty on failure)."""
    font_id = QFontDatabase.addApplicationFont(str(path))
    return QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []


def _font_files() -> list[str]:
    env = os.environ.get(FONT_ENV)
    return ([env] if env else []) + [p for p in FONT_FILES if Path(p).is_file()]


@lru_cache(maxsize=1)
def cjk_family() -> str:
    """The family used for all printing; raises ``NoCjkFontError`` when there is none."""
    ensure_gui_app()
    family = pick_family(_candidates(), covers)
    if family is None:
        for path in _font_files():
            family = pick_family(load_font_file(path), covers)
            if family:
                break
    if family is None:
        raise NoCjkFontError()
    return family


def cjk_font(point_size: float, *, bold: bool = False) -> QFont:
    """A font of the CJK family at ``point_size`` points."""
    font = QFont(cjk_family())
    font.setPointSizeF(point_size)
    font.setBold(bold)
    # No OpenType shaping for simple scripts: shaped Latin digits get glyphs outside the cmap
    # and Qt's PDF ToUnicode map then drops them ("H1" would extract as "H").
    font.setStyleStrategy(QFont.StyleStrategy.PreferNoShaping)
    return font


__all__ = [
    "NoCjkFontError",
    "cjk_family",
    "cjk_font",
    "covers",
    "ensure_gui_app",
    "load_font_file",
    "pick_family",
]
