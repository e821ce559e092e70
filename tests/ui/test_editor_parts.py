"""The editor's widgets on their own, through their public methods: the duplicate banner, the
history panel and a section's field labels with their required marks (the editor's own tests
cover them inside a real editor)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QLineEdit, QVBoxLayout, QWidget

from app.core.dedup import Candidate
from app.core.records import HistoryEntry
from app.ui.editor import DuplicateBanner, HistoryPanel
from app.ui.editor.field_label import REQUIRED_COLOR, input_height, make_field_label
from app.ui.editor.sections import SectionBox

EXACT = Candidate("r-exact", "张三", 1.0, "same_key")
FUZZY = [Candidate(f"r-{i}", f"李{i}", 0.8, "same_name_birth") for i in range(5)]


def make_banner(qtbot: Any) -> tuple[QWidget, DuplicateBanner]:
    host = QWidget()
    qtbot.addWidget(host)
    banner = DuplicateBanner(host)
    host.show()
    return host, banner


def test_banner_shows_the_exact_match_and_at_most_three_fuzzy_ones(qtbot: Any) -> None:
    _host, banner = make_banner(qtbot)
    grids: list[str] = []

    def grid_of(cand: Candidate) -> str:
        grids.append(cand.record_id)
        return "G01"

    banner.show_candidates(
        [EXACT, *FUZZY], "zh", is_new=True, key_label=lambda: "证件号码", grid_of=grid_of
    )
    assert banner.isVisible()
    texts = [label.text() for label in banner.findChildren(QLabel) if label.isVisible()]
    assert any("证件号码" in t and "张三" in t and "G01" in t for t in texts)
    assert grids == ["r-exact"]  # the grid is looked up only for the exact match shown
    assert banner.button("open", "r-exact").text() == "打开已有记录"
    assert banner.button("different", "r-exact").isVisible()
    for cand in FUZZY[:3]:
        assert banner.button("same", cand.record_id).isVisible()
    for cand in FUZZY[3:]:
        try:
            banner.button("same", cand.record_id)
        except KeyError:
            continue
        raise AssertionError(f"{cand.record_id} shown beyond the first three")


def test_banner_buttons_say_what_was_chosen(qtbot: Any) -> None:
    _host, banner = make_banner(qtbot)
    banner.show_candidates(
        [EXACT, FUZZY[0]], "en", is_new=False, key_label=lambda: "ID", grid_of=lambda _c: "G"
    )
    chosen: list[tuple[str, str]] = []
    banner.actionChosen.connect(lambda action, other: chosen.append((action, other)))
    qtbot.mouseClick(banner.button("open", "r-exact"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(banner.button("same", "r-0"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(banner.button("different", "r-0"), Qt.MouseButton.LeftButton)
    assert chosen == [("open", "r-exact"), ("same", "r-0"), ("different", "r-0")]


def test_banner_keeps_its_buttons_for_the_same_answer_and_hides_when_none(qtbot: Any) -> None:
    _host, banner = make_banner(qtbot)

    def show(cands: list[Candidate], lang: str = "zh") -> None:
        banner.show_candidates(
            cands, lang, is_new=True, key_label=lambda: "证件号码", grid_of=lambda _c: "G"
        )

    show([EXACT])
    first = banner.button("open", "r-exact")
    show([EXACT])  # the same answer: nothing rebuilt, so focus stays where it was
    assert banner.button("open", "r-exact") is first
    show([EXACT], "en")  # another language: rebuilt in it
    assert banner.button("open", "r-exact") is not first
    banner.show_decide_first()
    show([])
    assert not banner.isVisible()


def test_history_panel_lists_newest_first_with_the_editor_wording(qtbot: Any) -> None:
    host = QWidget()
    qtbot.addWidget(host)
    panel = HistoryPanel(host)
    assert not panel.isVisible()  # shown when the worker asks for it
    entries = [
        HistoryEntry(1, "r1", "2026-01-02T03:04:05Z", "alice", "create", {}),
        HistoryEntry(2, "r1", "2026-01-03T03:04:05Z", "bob", "update", {"name": ["甲", "乙"]}),
    ]
    panel.show_entries(
        entries, "zh", field_label=lambda f: f"<{f}>", format_value=lambda f, v: f"[{v}]"
    )
    rows = [
        [panel.topLevelItem(i).text(c) for c in range(5)] for i in range(panel.topLevelItemCount())
    ]
    assert [row[1:] for row in rows] == [
        ["bob", "<name>", "[甲]", "[乙]"],
        ["alice", "新建", "", ""],
    ]
    assert panel.headerItem().text(0) == "时间"
    panel.show_entries([], "en", field_label=str, format_value=lambda f, v: str(v))
    assert panel.topLevelItemCount() == 1
    assert panel.topLevelItem(0).text(0).startswith("No history")


def _red_pixels(box: SectionBox, label: QLabel) -> int:
    image = box.grab().toImage()
    rect = box.mark_rect(label)
    red = QColor(REQUIRED_COLOR)
    return sum(
        1
        for x in range(rect.left(), rect.right() + 1)
        for y in range(rect.top(), rect.bottom() + 1)
        if (c := image.pixelColor(x, y)).red() > 150
        and c.green() < 120
        and c.blue() < 120
        and abs(c.red() - red.red()) < 60
    )


def test_required_mark_is_painted_red_by_the_box_before_a_plain_label(qtbot: Any) -> None:
    host = QWidget()
    qtbot.addWidget(host)
    box = SectionBox("s", "户籍与居住", (), host, input_height(), lambda: None, lambda *_: None)
    QVBoxLayout(host).addWidget(box)
    label = make_field_label(box)
    assert type(label) is QLabel  # no Python class per label: nothing to call back per paint
    label.setText("户籍地")
    box.form_layout.insertRow(0, label, QLineEdit(box))
    host.show()
    qtbot.waitExposed(host)
    assert not box.is_marked(label) and _red_pixels(box, label) == 0
    box.set_required(label, True)
    assert box.is_marked(label) and label.text() == "户籍地"
    assert box.mark_rect(label).right() < label.geometry().left()  # before the label
    assert _red_pixels(box, label) > 3
    box.form_layout.setRowVisible(label, False)  # a hidden row shows no mark
    assert _red_pixels(box, label) == 0
    box.form_layout.setRowVisible(label, True)
    box.set_required(label, False)
    assert not box.is_marked(label) and _red_pixels(box, label) == 0
    plain = make_field_label(box)
    assert plain.minimumHeight() == label.minimumHeight() > 0
