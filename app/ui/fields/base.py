"""The ``FieldWidget`` base class every field type builds on, and what they share.

Kept apart from the concrete widgets so each type module imports only the base, and the
factory in ``app.ui.fields`` is the one place that knows every type.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from PySide6.QtCore import (
    QEvent,
    QObject,
    QPointF,
    QRectF,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QIcon,
    QKeyEvent,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
    QPolygonF,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QScrollBar,
    QVBoxLayout,
    QWidget,
)

from app.core.forms import Field, FormSet

SHORT_TABLE_MAX = 12  # up to this many codes: a plain drop-down; more: the searchable picker
CODE_ROLE = int(Qt.ItemDataRole.UserRole)  # plain ints: enum conversions cost per call
SEARCH_ROLE = CODE_ROLE + 1
_TITLE_ROLE = CODE_ROLE + 2
_ENTER_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)
_SEVERITY_COLORS = {"error": "#c62828", "warning": "#e65100", "info": "#455a64"}

# The form's own keys, as (key, modifiers without the keypad's): no field takes them, they go
# up to the editor (a drop-down would otherwise eat Ctrl+S as a keyboard search).
_CTRL = Qt.KeyboardModifier.ControlModifier.value
SAVE_KEY = (Qt.Key.Key_S.value, _CTRL)
COMPLETE_KEYS = ((Qt.Key.Key_Return.value, _CTRL), (Qt.Key.Key_Enter.value, _CTRL))
CLOSE_KEY = (Qt.Key.Key_Escape.value, 0)
FORM_KEYS = frozenset((SAVE_KEY, *COMPLETE_KEYS, CLOSE_KEY))


def key_chord(event: QKeyEvent) -> tuple[int, int]:
    """(key, modifiers) of a key press, the keypad modifier left out (Enter is Enter)."""
    return int(event.key()), (event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier).value


# --------------------------------------------------------------------------- the base class


class _FocusTracker(QObject):
    """One listener on the application's focus changes for every field widget."""

    _instance: _FocusTracker | None = None

    @classmethod
    def ensure(cls) -> None:
        app = QApplication.instance()
        if cls._instance is None and app is not None:
            cls._instance = cls(app)

    def __init__(self, app: QObject) -> None:
        super().__init__(app)
        app.focusChanged.connect(self._changed)  # type: ignore[attr-defined]

    def _changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        widget = new
        while widget is not None:
            if isinstance(widget, FieldWidget):
                widget._focused()
                return
            widget = widget.parentWidget()


class FieldWidget(QWidget):
    """The editor's view of one field: a raw value, a message line, focus and Enter handling."""

    changed = Signal()
    committed = Signal()
    nextRequested = Signal()
    multiline = False  # True: Enter belongs to the widget (it never moves to the next field)
    compound = False  # True: several inner widgets side by side (else one, no extra layout)

    def __init__(
        self, field: Field, formset: FormSet, lang: str = "zh", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.field, self.formset, self.lang = field, formset, lang
        self._message = ""
        self._message_label: QLabel | None = None
        self._layout: QVBoxLayout | None = None  # made when needed (see _add)
        self._main: QWidget | None = None
        self._row: QHBoxLayout | None = None
        self._inner: list[QWidget] = []
        self._filtering = False
        # The editor's direct hook for committed / nextRequested (the signals fire as well):
        # one connection per field instead of three, which is measurable on a 47-field form.
        self.listener: Callable[[FieldWidget, str], None] | None = None
        if _FocusTracker._instance is None:
            _FocusTracker.ensure()

    # -- the API the editor uses ---------------------------------------------------------

    def value(self) -> object:
        """The raw value as typed (None when empty)."""
        raise NotImplementedError

    def set_value(self, value: object) -> None:
        """Show ``value`` (a stored, prefilled or derived value); emits ``changed``."""
        raise NotImplementedError

    def focus_target(self) -> QWidget:
        """The widget that takes keyboard focus for this field."""
        raise NotImplementedError

    def live_check_ready(self) -> bool:
        """True when the value is long enough to check while typing (ID numbers, codes)."""
        return False

    def set_message(self, text: str, severity: str = "error") -> None:
        """Show ``text`` under the field in the severity's colour ('' hides it)."""
        if text == self._message:
            return
        self._message = text
        if self._message_label is None:
            if not text:
                return
            self._message_label = QLabel(self)
            self._message_label.setWordWrap(True)
            self._message_label.setTextFormat(Qt.TextFormat.PlainText)
            self._message_label.setObjectName("fieldMessage")
            self._ensure_layout().addWidget(self._message_label)
        color = _SEVERITY_COLORS.get(severity, _SEVERITY_COLORS["error"])
        self._message_label.setStyleSheet(f"color: {color};")
        self._message_label.setText(text)
        self._message_label.setVisible(bool(text))

    def message(self) -> str:
        """The message shown under the field ('' when none)."""
        return self._message

    def set_lang(self, lang: str) -> None:
        """Retranslate the widget's own words (placeholders, code names)."""
        self.lang = lang
        self._retranslate()

    def commit(self) -> None:
        """Finish an edit as if the person left the field (normalise, resolve typed text)."""
        self._commit()

    # -- for subclasses --------------------------------------------------------------------

    def _add(self, widget: QWidget, stretch: int = 0) -> None:
        """Put ``widget`` on the field's input row (above the message line).

        A one-widget field has no layout of its own until it shows a message: it sizes its
        only child itself (``resizeEvent``). Layouts nested in every row of a form cost more
        to build and lay out than the line edits they hold."""
        if not self.compound and self._layout is None and self._main is None:
            self._main = widget
            self.setSizePolicy(widget.sizePolicy())
            return
        if not self.compound:
            self._ensure_layout().insertWidget(0, widget, stretch)
            return
        if self._row is None:
            self._row = QHBoxLayout()
            self._row.setContentsMargins(0, 0, 0, 0)
            self._row.setSpacing(4)
            self._ensure_layout().insertLayout(0, self._row)
        self._row.addWidget(widget, stretch)

    def _ensure_layout(self) -> QVBoxLayout:
        if self._layout is None:
            self._layout = QVBoxLayout(self)
            self._layout.setContentsMargins(0, 0, 0, 0)
            self._layout.setSpacing(2)
            if self._main is not None:
                self._layout.addWidget(self._main)
                self._main = None
        return self._layout

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        main = self._main
        return main.sizeHint() if main is not None else super().sizeHint()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        main = self._main
        return main.minimumSizeHint() if main is not None else super().minimumSizeHint()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        main = self._main
        if main is not None:
            main.setGeometry(0, 0, self.width(), self.height())
        super().resizeEvent(event)

    def _emit_committed(self) -> None:
        self.committed.emit()
        if self.listener is not None:
            self.listener(self, "committed")

    def _emit_next(self) -> None:
        self.nextRequested.emit()
        if self.listener is not None:
            self.listener(self, "next")

    def _watch(self, widget: QWidget) -> None:
        """Route Enter and focus-out of an inner widget through this field.

        The event filter is installed when the field first gets focus (``_FocusTracker``):
        a Python filter on every widget from the start would run for each of the dozens of
        events a widget gets while a form is built and shown, which costs more than the
        widgets themselves."""
        self._inner.append(widget)
        if self._filtering:
            widget.installEventFilter(self)

    def watch_events(self) -> None:
        """Install the event filter now (done automatically on first focus)."""
        if not self._filtering:
            self._filtering = True
            for widget in self._inner:
                widget.installEventFilter(self)

    def _focused(self) -> None:
        """Called by the focus tracker when focus enters this field."""
        first = not self._filtering
        self.watch_events()
        if first:
            self._focus_in()  # the FocusIn event itself went by before the filter existed

    def _help_text(self) -> str:
        return self.field.help.get(self.lang) if self.field.help else ""

    def _commit(self) -> None:
        """Normalise what was typed (subclasses)."""

    def _retranslate(self) -> None:
        """Subclasses update their own texts."""

    def _focus_in(self) -> None:
        """Subclasses prepare lazily built parts."""

    def _key_press(self, obj: QObject, event: QEvent) -> bool:
        """Subclasses handle extra keys; True consumes the event."""
        return False

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        kind = event.type()
        if kind == QEvent.Type.KeyPress:
            if key_chord(event) in FORM_KEYS:  # not for the inner widget: up to the editor
                event.ignore()
                return True
            mods = event.modifiers()
            ctrl_or_alt = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
            if event.key() in _ENTER_KEYS and not (mods & ctrl_or_alt) and not self.multiline:
                self._commit()
                self._emit_next()
                return True
            return self._key_press(obj, event)
        if kind == QEvent.Type.FocusIn:
            self._focus_in()
        elif kind == QEvent.Type.FocusOut and event.reason() != Qt.FocusReason.PopupFocusReason:
            now = QApplication.focusWidget()
            if now is None or not self.isAncestorOf(now):
                self._commit()
                self._emit_committed()
        return False


# --------------------------------------------------------------------------- the wheel

# Widgets whose value (or own scrolling) the mouse wheel changes. Scroll bars are not among
# them: they are how the form itself scrolls.
_WHEEL_TAKERS = (QComboBox, QAbstractSpinBox, QAbstractSlider, QAbstractItemView)


class _WheelGuard(QObject):
    """Only a focused field takes the wheel; over any other one the form scrolls on.

    Without it, scrolling a long form past a drop-down changed the drop-down (five wheel
    clicks over 职业类别 saved code 5). One instance filters the few wheel-taking widgets of
    every field (not every widget: a Python filter costs per event)."""

    _instance: _WheelGuard | None = None

    @classmethod
    def shared(cls) -> _WheelGuard:
        if cls._instance is None:
            cls._instance = cls(QApplication.instance())
        return cls._instance

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if event.type() != QEvent.Type.Wheel or not isinstance(obj, QWidget):
            return False
        if QApplication.activePopupWidget() is not None:
            return False  # an open drop-down list scrolls itself
        target = _wheel_owner(obj)
        focus = QApplication.focusWidget()
        if focus is not None and (focus is target or target.isAncestorOf(focus)):
            return False  # the person is in this field: the wheel is theirs to use
        area = _scroll_area_of(target)
        if area is not None:
            _forward_wheel(event, obj, area.viewport())  # type: ignore[arg-type]
            event.accept()
        else:
            event.ignore()  # no scroll area: let it go up to the parent
        return True


def _wheel_owner(obj: QWidget) -> QWidget:
    """The widget a wheel event is about: an item view for its viewport, else itself."""
    parent = obj.parentWidget()
    if isinstance(parent, QAbstractScrollArea) and parent.viewport() is obj:
        return parent
    return obj


def _scroll_area_of(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractScrollArea) and not isinstance(parent, _WHEEL_TAKERS):
            return parent
        parent = parent.parentWidget()
    return None


def _forward_wheel(event: QWheelEvent, source: QWidget, viewport: QWidget) -> None:
    """Deliver the same wheel turn to the scroll area, at the same place on the screen."""
    pos = QPointF(viewport.mapFromGlobal(source.mapToGlobal(event.position().toPoint())))
    moved = QWheelEvent(
        pos,
        event.globalPosition(),
        event.pixelDelta(),
        event.angleDelta(),
        event.buttons(),
        event.modifiers(),
        event.phase(),
        event.inverted(),
        event.source(),
    )
    QApplication.sendEvent(viewport, moved)


class WheelGuarded:
    """Mixin for a wheel-taking widget class of our own: it asks the guard from its
    ``wheelEvent`` instead of having a Python event filter see every event it gets (a
    drop-down gets dozens while a form opens, and each crossing into Python costs)."""

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt API)
        if not _WheelGuard.shared().eventFilter(self, event):  # type: ignore[arg-type]
            super().wheelEvent(event)  # type: ignore[misc]


def guard_wheel(widget: QWidget) -> None:
    """Let the wheel change ``widget``'s inner drop-downs, spin boxes, sliders and lists only
    while they have focus (the wheel no longer gives them focus either)."""
    takers = [w for w in (widget, *widget.findChildren(QWidget)) if isinstance(w, _WHEEL_TAKERS)]
    if not takers:
        return  # line edits and buttons only (most fields): nothing to guard
    guard = _WheelGuard.shared()
    window = widget.window()
    for child in takers:
        if isinstance(child, QScrollBar):
            continue
        if child.window() is not window:
            continue  # a drop-down's popup list: its own window, the wheel is its own
        if child.focusPolicy() == Qt.FocusPolicy.WheelFocus:
            child.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        if isinstance(child, WheelGuarded):
            continue  # it asks the guard in its own wheelEvent: no filter on its other events
        child.installEventFilter(guard)
        if isinstance(child, QAbstractScrollArea):
            child.viewport().installEventFilter(guard)


# --------------------------------------------------------------------------- line edits


@cache
def _icon(kind: str) -> QIcon:
    """Small icons drawn once (no icon theme offscreen or on a bare tablet image)."""
    pixmap = QPixmap(16, 16)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    color = QApplication.palette().color(QPalette.ColorRole.WindowText)
    painter.setPen(QPen(color, 1.2))
    if kind == "calendar":
        painter.drawRect(QRectF(1.5, 2.5, 13, 12))
        painter.fillRect(QRectF(1.5, 2.5, 13, 3), color)
        for x in (4, 7.5, 11):
            for y in (8, 11.5):
                painter.fillRect(QRectF(x - 0.75, y - 0.75, 1.5, 1.5), color)
    else:  # "list": a down-pointing triangle
        painter.setBrush(color)
        painter.drawPolygon(QPolygonF([QPointF(4.5, 6.5), QPointF(11.5, 6.5), QPointF(8, 10.5)]))
    painter.end()
    return QIcon(pixmap)
