"""The window fits the screens workers use: 1366×768 laptops, 1280×800 tablets in touch mode.

Geometry of real widgets is checked: visible, inside the window, not cut by a parent, not
squeezed below the size their text needs.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QAbstractButton, QTableWidget, QWidget

from app.core.store import Grid, Store
from app.ui.flow import ElidedLabel
from app.ui.i18n import language
from app.ui.window import MainWindow
from tests.factories import resident

GRID = "330106001001"
LONG_ADDRESS = "浙江省杭州市西湖区清溪街道海棠社区芙蓉路10号白鹭雅苑1栋2单元302室"


def _household(store: Store) -> str:
    store.put_grid(Grid(GRID, "第一网格", "330106001", "幸福社区"))
    house = store.save(
        "house",
        {"house_code": "H1", "address_text": LONG_ADDRESS, "grid": GRID, "building": "1栋"},
        status="complete",
    ).id
    for seq, (name, relation) in enumerate(
        (("何博然", "02"), ("常倩", "10"), ("何哲超", "20"), ("何倩彤", "30")), start=1
    ):
        data = resident(name=name, seq=seq, grid=GRID, house_ref=house, household_relation=relation)
        store.save("resident", data, status="complete")
    return house


@pytest.fixture
def window(store: Store, qtbot):  # noqa: ANN001, ANN201
    w = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(w)
    yield w
    w.set_touch_mode(False)
    language().set_lang("zh")
    w.close()


def _show_at(window: MainWindow, qtbot, width: int, height: int) -> None:  # noqa: ANN001
    window.resize(width, height)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: window.size().width() == width, timeout=2000)


def assert_whole(window: QWidget, widget: QWidget) -> None:
    """Visible, inside the window, not cut by any parent, and (buttons) not squeezed."""
    name = getattr(widget, "text", lambda: widget.objectName())()
    assert widget.isVisible(), name
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    assert window.rect().contains(rect), (name, rect, window.rect())
    assert widget.visibleRegion().boundingRect().size() == widget.size(), name
    if isinstance(widget, QAbstractButton):
        assert widget.width() >= widget.sizeHint().width(), (name, widget.width())


def test_the_window_opens_sized_to_a_1366x768_screen(window: MainWindow, qtbot) -> None:  # noqa: ANN001
    """1400×860 was taller than the screen: 新建 fitted, the status bar was below the edge."""
    available = QRect(0, 0, 1366, 728)  # 768 minus the taskbar

    maximise = window.fit_to_screen(available)

    assert maximise
    assert window.width() <= available.width() and window.height() <= available.height()
    window.show()
    qtbot.waitExposed(window)
    assert_whole(window, window.new_button)
    assert_whole(window, window.statusBar())
    assert window.minimumSizeHint().width() <= 1366


def test_a_large_screen_keeps_the_preferred_size(window: MainWindow) -> None:
    assert not window.fit_to_screen(QRect(0, 0, 1920, 1040))
    assert (window.width(), window.height()) == (1400, 860)


def test_1366x768_shows_new_the_status_bar_and_the_household(
    window: MainWindow, store: Store, qtbot
) -> None:  # noqa: ANN001
    house = _household(store)
    _show_at(window, qtbot, 1366, 768)
    view = window.open_household(house)
    assert view is not None
    qtbot.wait(50)

    for widget in (window.new_button, window.statusBar(), view.members_table):
        assert_whole(window, widget)
    for button in view.findChildren(QAbstractButton):
        if button.isVisibleTo(view):
            assert_whole(window, button)


def test_touch_mode_at_1280x800_shows_every_household_button_and_the_whole_table(
    window: MainWindow, store: Store, qtbot
) -> None:  # noqa: ANN001
    """Buttons were squeezed to "加居巳" and the table scrolled sideways with two rows shown."""
    house = _household(store)
    window.set_touch_mode(True)
    _show_at(window, qtbot, 1280, 800)
    assert window.minimumSizeHint().width() <= 1280 and window.minimumSizeHint().height() <= 800
    view = window.open_household(house)
    assert view is not None
    qtbot.wait(50)

    assert_whole(window, window.new_button)
    assert_whole(window, window.statusBar())
    buttons = [b for b in view.findChildren(QAbstractButton) if b.isVisibleTo(view)]
    assert len(buttons) >= 8
    for button in buttons:
        assert_whole(window, button)
    table: QTableWidget = view.members_table
    assert_whole(window, table)
    assert not table.horizontalScrollBar().isVisible()  # every column shows
    rows = sum(table.rowHeight(r) for r in range(table.rowCount()))
    assert table.rowCount() == 4 and table.viewport().height() >= rows  # every member shows


def test_a_long_house_title_is_elided_at_its_start(window: MainWindow, store: Store, qtbot) -> None:  # noqa: ANN001
    house = _household(store)
    window.set_touch_mode(True)
    _show_at(window, qtbot, 1280, 800)
    view = window.open_household(house)
    assert view is not None
    qtbot.wait(50)

    title: ElidedLabel = view.title_label
    assert_whole(window, title)
    shown = title.shown_text()
    assert shown.startswith("…") and shown.endswith("1栋2单元302室")
    assert title.toolTip() == LONG_ADDRESS
    tab = window.doc_tabs.tabText(window.doc_tabs.indexOf(view))
    assert tab.endswith("302室") and len(tab) < len(LONG_ADDRESS)
