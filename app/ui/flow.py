"""Widgets that stay whole in a narrow pane: a wrapping layout, buttons and tables that keep
their content.

Why: at 1280×800 in touch mode a row of buttons in a ``QHBoxLayout`` was squeezed below its
text ("添加居民" drawn as "加居巳") and the household table scrolled sideways with two rows
showing. ``FlowLayout`` (Qt's flow layout) wraps buttons onto the next line instead;
``WholeButton`` never shrinks below its text; ``WholeTable`` asks for the width of all its
columns and the height of its first rows, so the splitter gives it that room;
``ElidedLabel`` keeps a long title on one line, cut at the start ("…1栋2单元302室": an
address's distinguishing part is its end), the whole text in its tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import (
    QLabel,
    QLayout,
    QLayoutItem,
    QPushButton,
    QTableWidget,
    QWidget,
)


class FlowLayout(QLayout):
    """Left to right, wrapping; height follows width (``heightForWidth``)."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self.setContentsMargins(QMargins(0, 0, 0, 0))

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 - Qt name
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802 - Qt name
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802 - Qt name
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802 - Qt name
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt name
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt name
        return self._place(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802 - Qt name
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt name
        width = sum(i.sizeHint().width() + self._spacing for i in self._visible())
        height = max((i.sizeHint().height() for i in self._visible()), default=0)
        return QSize(max(width - self._spacing, 0), height)

    def minimumSize(self) -> QSize:  # noqa: N802 - Qt name
        size = QSize()
        for item in self._visible():
            size = size.expandedTo(item.minimumSize()).expandedTo(item.sizeHint())
        margins = self.contentsMargins()
        return size + QSize(margins.left() + margins.right(), margins.top() + margins.bottom())

    def _visible(self) -> list[QLayoutItem]:
        return [i for i in self._items if not (i.widget() and i.widget().isHidden())]

    def _place(self, rect: QRect, move: bool) -> int:
        margins = self.contentsMargins()
        area = rect.marginsRemoved(margins)
        x, y, line = area.x(), area.y(), 0
        for item in self._visible():
            hint = item.sizeHint()
            if x + hint.width() > area.right() + 1 and line > 0:
                x, y, line = area.x(), y + line + self._spacing, 0
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + self._spacing
            line = max(line, hint.height())
        return y + line - rect.y() + margins.bottom()


class WholeButton(QPushButton):
    """A push button that layouts never shrink below its text."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt name
        return self.sizeHint()


class WholeTable(QTableWidget):
    """A table whose minimum size shows every column and up to ``whole_rows`` rows."""

    whole_rows = 4

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt name
        base = super().minimumSizeHint()
        frame = 2 * self.frameWidth()
        header = self.horizontalHeader()
        natural = sum(  # what the columns need, not what a stretched last column got
            max(self.sizeHintForColumn(c), header.sectionSizeHint(c))
            for c in range(self.columnCount())
            if not self.isColumnHidden(c)
        )
        width = natural + frame + self.verticalScrollBar().sizeHint().width()
        rows = (
            sum(self.rowHeight(r) for r in range(min(self.rowCount(), self.whole_rows)))
            or self.verticalHeader().defaultSectionSize()
        )
        height = header.sizeHint().height() + rows + frame
        return QSize(max(base.width(), width), height)


class ElidedLabel(QLabel):
    """One line of plain text, elided to the width it gets (``mode``: where the "…" goes)."""

    def __init__(
        self,
        parent: QWidget | None = None,
        mode: Qt.TextElideMode = Qt.TextElideMode.ElideLeft,
    ) -> None:
        super().__init__(parent)
        self._full = ""
        self.mode = mode

    def setText(self, text: str) -> None:  # noqa: N802 - Qt name
        self._full = text
        self.setToolTip(text)
        super().setText(text)
        self.updateGeometry()

    def full_text(self) -> str:
        return self._full

    def shown_text(self) -> str:
        """The text as painted at the current width."""
        return self.fontMetrics().elidedText(self._full, self.mode, self.contentsRect().width())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt name
        return QSize(
            self.fontMetrics().horizontalAdvance("…") * 4, super().minimumSizeHint().height()
        )

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt name
        super().resizeEvent(event)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt name
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(self.contentsRect(), int(self.alignment()), self.shown_text())


__all__ = ["ElidedLabel", "FlowLayout", "WholeButton", "WholeTable"]
