"""The conflict view over a conflict made for real: two devices edit the same field and sync
through the real platform server; the view shows base / mine / theirs and resolving queues a
resolve op, clears the conflict, and the next sync settles it on both devices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QLabel

from app.core.forms import FormSet
from app.core.store import Store
from app.ui.conflicts import ConflictView, install_conflicts
from app.ui.window import MainWindow
from sync import replica
from sync.client import Client
from tests.factories import id_number, resident
from tests.sync.conftest import GRID_A, GRID_C, platform  # noqa: F401 - fixture
from tests.sync.devicekit import PASSWORD, Device, db_url, make_device, no_wait  # noqa: F401


@pytest.fixture
def conflicted(platform: Any, tmp_path: Path, formset: FormSet, store: Store):  # noqa: F811, ANN201
    """(a, b, record id): b (whose store is the ``store`` fixture) holds a phone conflict."""
    a = make_device(platform.url, tmp_path, formset, name="a")
    client = Client(platform.url, store.device_id, retry=no_wait())
    client.login("wang", PASSWORD)
    b = Device(store, client, "wang")
    record = a.save("resident", resident(seq=51, phone="13800000000", ethnicity="01"))
    a.sync()
    b.sync()
    a.edit(record.id, phone="13911111111", ethnicity="02")
    b.edit(record.id, phone="13922222222", ethnicity="03")
    a.sync()
    b.sync()
    yield a, b, record.id
    a.close()
    client.close()


def _texts(view: ConflictView, row: int) -> list[str]:
    return [view.table.cellWidget(row, c).text() for c in range(4)]


def test_view_shows_base_mine_theirs_and_resolving_settles_everywhere(
    qtbot: Any, conflicted: Any
) -> None:
    a, b, record_id = conflicted
    assert b.get(record_id).conflict, "the setup made no conflict"
    view = ConflictView(b.store, "zh", author="wang")
    qtbot.addWidget(view)
    assert view.records.count() == 1 and view.record_id == record_id
    fields = [e["field"] for e in view.entries]
    assert fields == sorted(["ethnicity", "phone"])
    phone = fields.index("phone")
    assert _texts(view, phone)[1:] == ["13800000000", "13922222222", "13911111111"]
    eth = _texts(view, fields.index("ethnicity"))
    table = b.store.formset.table(b.store.formset.form("resident").fields["ethnicity"].codes)
    assert eth[1:] == [table.label(c, "zh") for c in ("01", "03", "02")]  # labels, not codes

    view.choose("phone", "other", "13933333333")
    view.choose("ethnicity", "theirs")
    op_id = view.resolve()
    assert op_id is not None
    kind, fields_json = b.store.conn.execute(
        "SELECT kind, fields FROM outbox WHERE op_id = ?", (op_id,)
    ).fetchone()
    assert kind == "resolve" and "13933333333" in fields_json
    got = b.get(record_id)
    assert got.conflict is None
    assert (got.data["phone"], got.data["ethnicity"]) == ("13933333333", "02")
    assert view.records.count() == 0 and not view.resolve_button.isEnabled()

    assert b.sync().open_conflicts == 0
    assert a.sync().open_conflicts == 0
    assert a.get(record_id).data["phone"] == "13933333333"


def test_action_opens_the_view_in_the_window(qtbot: Any, conflicted: Any) -> None:
    _a, b, record_id = conflicted
    window = MainWindow(b.store, lang="en", restore_autosaves=False)
    qtbot.addWidget(window)
    action = install_conflicts(window)
    action.trigger()
    view = window.doc_tabs.currentWidget()
    assert isinstance(view, ConflictView) and view.record_id == record_id
    assert view.table.horizontalHeaderItem(3).text() == "Platform"
    view.choose("phone", "mine")
    view.choose("ethnicity", "base")
    view.resolve()
    assert b.get(record_id).data["ethnicity"] == "01"
    assert replica.open_conflicts(b.store) == 0
    window.runner.cancel_all()
    window.runner.wait()


def _switch_language(window: MainWindow, lang: str) -> None:
    """The worker's 视图 View → 语言 Language → English / 中文."""
    window.lang_actions[lang].trigger()
    assert window.lang == lang


def _open_in_window(qtbot: Any, store: Store, lang: str) -> tuple[MainWindow, ConflictView]:
    window = MainWindow(store, lang=lang, restore_autosaves=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    view = window.conflicts_action.open_view()
    assert isinstance(view, ConflictView) and window.doc_tabs.currentWidget() is view
    return window, view


def _close(window: MainWindow) -> None:
    _switch_language(window, "zh")
    window.runner.cancel_all()
    window.runner.wait()


def test_the_open_view_switches_language_and_keeps_the_choices(qtbot: Any, conflicted: Any) -> None:
    """Switching the app's language left the open view's title, headers, hint, button and
    values (code labels) in the old language; the worker's picks and typing must stay."""
    _a, b, record_id = conflicted
    window, view = _open_in_window(qtbot, b.store, "zh")
    tabs = window.doc_tabs
    try:
        view.choose("phone", "other", "13933333333")
        view.choose("ethnicity", "theirs")
        table = b.store.formset.table(b.store.formset.form("resident").fields["ethnicity"].codes)

        _switch_language(window, "en")
        assert tabs.tabText(tabs.indexOf(view)) == "Conflicts"
        headers = [view.table.horizontalHeaderItem(c).text() for c in range(5)]
        assert headers == ["Field", "Base", "Mine", "Platform", "Other value"]
        assert view.resolve_button.text() == "Resolve"
        hints = [label.text() for label in view.findChildren(QLabel) if label.isVisible()]
        assert any(t.startswith("Pick the value to keep") for t in hints), hints
        fields = [e["field"] for e in view.entries]
        row = fields.index("ethnicity")
        assert view.table.cellWidget(row, 0).text() == "Ethnicity"
        assert _texts(view, row)[1:] == [table.label(c, "en") for c in ("01", "03", "02")]
        assert view.table.cellWidget(fields.index("phone"), 0).text() == "Phone"

        assert view.chosen() == {"phone": "13933333333", "ethnicity": "02"}  # nothing lost
        view.resolve()
        assert b.get(record_id).data["phone"] == "13933333333"
    finally:
        _close(window)


@pytest.fixture
def transfer_refused(platform: Any, tmp_path: Path, formset: FormSet, store: Store):  # noqa: F811, ANN201
    """(device, record id): the ``store`` fixture's device registered a person another
    community holds; its supervisor said "not the same person", the device synced: the
    platform's own note (``transfer_rejected``) flags the ID number."""
    zhao = make_device(platform.url, tmp_path, formset, "zhao", name="zhao")
    client = Client(platform.url, store.device_id, retry=no_wait())
    client.login("wang", PASSWORD)
    wang = Device(store, client, "wang")
    number = id_number(seq=193)
    zhao.save("resident", resident(grid=GRID_C, seq=193, id_number=number), status="complete")
    zhao.sync()
    new = wang.save("resident", resident(grid=GRID_A, seq=193, id_number=number), status="complete")
    wang.sync()
    chen = Client(platform.url, "dev-chen", retry=no_wait())
    chen.login("chen", PASSWORD)
    [claim] = [r for r in chen.reviews().reviews if r.kind == "transfer"]
    chen.decide_review(claim.id, "different")
    wang.sync()
    assert {c.get("note") for c in wang.get(new.id).conflict or []} >= {"transfer_rejected"}
    yield wang, new.id
    for other in (zhao, chen, client):
        other.close()


def test_the_platforms_note_follows_the_language(qtbot: Any, transfer_refused: Any) -> None:
    """The platform's reason (a rejected transfer) stayed Chinese after a switch to English."""
    wang, record_id = transfer_refused
    window, view = _open_in_window(qtbot, wang.store, "zh")
    try:
        assert view.record_id == record_id
        row = [e["field"] for e in view.entries].index("id_number")
        assert "迁入申请被驳回" in view.table.cellWidget(row, 0).text()

        _switch_language(window, "en")
        label = view.table.cellWidget(row, 0)
        assert label.text().startswith("ID document number\nTransfer rejected: this ID number"), (
            label.text()
        )
        assert label.toolTip().startswith("Transfer rejected") and label.text().isascii()

        _switch_language(window, "zh")
        assert "迁入申请被驳回" in view.table.cellWidget(row, 0).text()
    finally:
        _close(window)
