"""Field widgets: real widgets, offscreen, driven by keys and clicks where a person would."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import Qt
from PySide6.QtGui import QInputMethodEvent
from PySide6.QtWidgets import QApplication, QWidget

from app.core import geo
from app.core.forms import Field, FormSet, Text
from app.core.store import Store
from app.ui.fields import widgets as F
from tests import factories


def _make(
    qtbot, formset: FormSet, form: str, field_id: str, store: Store | None = None
) -> F.FieldWidget:
    widget = F.make_field_widget(formset.form(form).fields[field_id], formset, "zh", store=store)
    qtbot.addWidget(widget)
    return widget


def type_text(qtbot, widget: QWidget, text: str) -> None:
    """Type ``text`` as a person would: ASCII as key presses, Chinese through the input
    method (a commit string), which is how an IME delivers it."""
    for chunk in re.findall(r"[\x20-\x7e]+|[^\x20-\x7e]+", text):
        if chunk.isascii():
            qtbot.keyClicks(widget, chunk)
        else:
            event = QInputMethodEvent()
            event.setCommitString(chunk)
            QApplication.sendEvent(widget, event)


def _focus(qtbot, widget: QWidget) -> None:
    """Show the widget's window, make it active and put the keyboard focus in ``widget``."""
    window = widget.window()
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    widget.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget)


# --------------------------------------------------------------------------- code index


def test_widget_kind_follows_the_table_size(qtbot, formset: FormSet) -> None:
    assert isinstance(_make(qtbot, formset, "resident", "gender"), F.ChoiceField)
    assert isinstance(_make(qtbot, formset, "resident", "population_type"), F.ChoiceField)
    for long_field in ("ethnicity", "native_place", "id_type"):
        assert isinstance(_make(qtbot, formset, "resident", long_field), F.CodePickerField)
    assert isinstance(_make(qtbot, formset, "resident", "special_group"), F.MultiChoiceField)
    assert isinstance(_make(qtbot, formset, "resident", "house_ref"), F.ReferenceField)


def test_region_shows_its_full_path(formset: FormSet) -> None:
    region = formset.table("region")
    assert F.code_display(region, "330106", "zh") == "330106 浙江省/杭州市/西湖区"
    assert F.code_display(region, "330106", "en").startswith("330106 Zhejiang")


def test_index_finds_by_code_name_english_and_pinyin(formset: FormSet) -> None:
    ethnicity = F.code_index(formset.table("ethnicity"), "zh")
    han = {e.code for e in ethnicity.matches("hanzu")}
    assert "01" in han
    assert "01" in {e.code for e in ethnicity.matches("Han")}
    countries = F.code_index(formset.table("country"), "zh")
    by_initials = {e.code for e in countries.matches("mg")}
    assert "USA" in by_initials  # 美国 -> mg
    region = F.code_index(formset.table("region"), "zh")
    assert "330106" in {e.code for e in region.matches("xhq")}  # 西湖区 initials
    assert {e.code for e in region.matches("杭州市/西湖")} == {"330106"}  # path search


def test_fast_pinyin_agrees_with_pypinyin(formset: FormSet) -> None:
    from pypinyin import lazy_pinyin

    chars = {
        ch
        for t in ("region", "country", "ethnicity")
        for c in formset.table(t).codes.values()
        for ch in c.zh
        if not ch.isascii()
    }
    disagree = {
        ch for ch in chars if (lazy_pinyin(ch, errors="ignore")[:1] or [""]) != [F._char_pinyin(ch)]
    }
    assert not disagree


def test_index_resolves_only_what_is_unambiguous(formset: FormSet) -> None:
    region = F.code_index(formset.table("region"), "zh")
    assert region.resolve("330106") == "330106"
    assert region.resolve("330106 浙江省/杭州市/西湖区") == "330106"
    assert region.resolve("杭州市/西湖区") == "330106"
    assert region.resolve("西湖区") is None  # 杭州 and 南昌 both have one
    ethnicity = F.code_index(formset.table("ethnicity"), "zh")
    assert ethnicity.resolve("汉族") == "01"
    assert ethnicity.resolve("hanzu") == "01"  # full pinyin
    assert len(ethnicity.matches("zu")) > 1 and ethnicity.resolve("zu") is None
    country = F.code_index(formset.table("country"), "zh")
    assert country.resolve("chn") == "CHN"


def test_index_leaves_out_historical_codes(formset: FormSet) -> None:
    table = formset.table("region")
    index = F.code_index(table, "zh")
    historical = [c.code for c in table.codes.values() if c.historical]
    assert historical, "the region table has historical codes"
    listed = {e.code for e in index.entries}
    assert not listed & set(historical)
    assert index.resolve(historical[0]) == historical[0]  # typed exactly, still accepted


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_listed_code_resolves_from_its_display(formset: FormSet, data: st.DataObject) -> None:
    table_id = data.draw(
        st.sampled_from(["region", "country", "ethnicity", "id_type", "education"])
    )
    index = F.code_index(formset.table(table_id), data.draw(st.sampled_from(["zh", "en"])))
    entry = data.draw(st.sampled_from(index.entries))
    assert index.resolve(entry.display) == entry.code
    assert index.resolve(entry.code) == entry.code
    assert entry in index.matches(entry.code)


# --------------------------------------------------------------------------- pickers


def test_picker_filters_as_you_type_and_commits_the_match(qtbot, formset: FormSet) -> None:
    picker = _make(qtbot, formset, "resident", "nationality")
    assert isinstance(picker, F.CodePickerField)
    _focus(qtbot, picker.focus_target())
    qtbot.keyClicks(picker.focus_target(), "mg")
    completer = picker.completer()
    qtbot.waitUntil(lambda: completer.popup().isVisible())
    shown = {
        completer.completionModel().index(r, 0).data(F.CODE_ROLE)
        for r in range(completer.completionModel().rowCount())
    }
    assert "USA" in shown
    assert "CHN" not in shown
    with qtbot.waitSignal(picker.changed):
        qtbot.keyClick(completer.popup(), Qt.Key.Key_Down)  # the open list has the keyboard
        qtbot.keyClick(completer.popup(), Qt.Key.Key_Return)
    assert picker.value() in shown


def test_picker_list_button_lists_everything(qtbot, formset: FormSet) -> None:
    picker = _make(qtbot, formset, "resident", "ethnicity")
    picker.set_value("01")
    _focus(qtbot, picker.focus_target())
    picker.list_action.trigger()
    completer = picker.completer()
    qtbot.waitUntil(lambda: completer.popup().isVisible())
    assert completer.completionModel().rowCount() == len(picker.index.entries)


def test_picker_typed_name_resolves_on_enter(qtbot, formset: FormSet) -> None:
    picker = _make(qtbot, formset, "resident", "ethnicity")
    _focus(qtbot, picker.focus_target())
    type_text(qtbot, picker.focus_target(), "汉族")
    with qtbot.waitSignal(picker.nextRequested):
        qtbot.keyClick(picker.focus_target(), Qt.Key.Key_Return)
    assert picker.value() == "01"
    assert picker.display_text() == "01 汉族"


def test_picker_keeps_unresolvable_text(qtbot, formset: FormSet) -> None:
    picker = _make(qtbot, formset, "resident", "residence_region")
    picker.set_value("330106")
    picker.focus_target().setText("西湖区")  # two of them: not for the widget to guess
    picker.commit()
    assert picker.value() == "西湖区"
    picker.set_value("360103")
    assert picker.display_text() == "360103 江西省/南昌市/西湖区"


def test_short_choice_fills_on_the_first_key_and_types_codes(qtbot, formset: FormSet) -> None:
    choice = _make(qtbot, formset, "resident", "population_type")
    assert choice.combo.count() == 0 and choice.value() is None  # nothing built before use
    _focus(qtbot, choice.combo)
    assert choice.combo.count() == 0  # the cursor put in it as a form opens builds nothing
    qtbot.keyClicks(choice.combo, "2")
    assert choice.combo.count() == 1 + len(formset.table("population_type").codes)
    assert choice.value() == "2"
    qtbot.keyClick(choice.combo, Qt.Key.Key_Delete)
    assert choice.value() is None


def test_short_choice_shows_a_stored_value_before_filling(qtbot, formset: FormSet) -> None:
    choice = _make(qtbot, formset, "resident", "gender")
    choice.set_value("2")
    assert choice.value() == "2"
    assert choice.combo.currentText() == "2 女性"
    choice.fill()
    assert choice.value() == "2"
    choice.set_value("7")  # not in the table: shown, kept, never dropped
    assert choice.value() == "7"


def test_boolean_answers_from_the_keyboard(qtbot, formset: FormSet) -> None:
    flag = _make(qtbot, formset, "resident", "is_focus")
    assert flag.value() is None
    _focus(qtbot, flag.focus_target())
    qtbot.keyClicks(flag.focus_target(), "y")
    assert flag.value() is True
    qtbot.keyClicks(flag.focus_target(), "n")
    assert flag.value() is False
    qtbot.keyClick(flag.focus_target(), Qt.Key.Key_Delete)
    assert flag.value() is None


def test_multi_choice_round_trips_and_keeps_unknown_codes(qtbot, formset: FormSet) -> None:
    multi = _make(qtbot, formset, "resident", "special_group")
    codes = list(formset.table("special_group").codes)[:2]
    multi.set_value(codes + ["ZZ"])
    assert multi.value() == codes + ["ZZ"]
    _focus(qtbot, multi.focus_target())
    multi.list.setCurrentRow(0)
    qtbot.keyClick(multi.list, Qt.Key.Key_Space)
    assert multi.value() == codes[1:] + ["ZZ"]


# --------------------------------------------------------------------------- line edits


@pytest.mark.parametrize("typed", ["19850615", "1985/6/15", "1985年6月15日", "1985-6-15"])
def test_date_accepts_typing_and_normalises_on_leave(qtbot, formset: FormSet, typed: str) -> None:
    date = _make(qtbot, formset, "resident", "birth_date")
    _focus(qtbot, date.focus_target())
    type_text(qtbot, date.focus_target(), typed)
    with qtbot.waitSignal(date.committed):
        date.focus_target().clearFocus()
    assert date.value() == "1985-06-15"


def test_date_keeps_a_wrong_date_as_typed(qtbot, formset: FormSet) -> None:
    date = _make(qtbot, formset, "resident", "birth_date")
    date.focus_target().setText("1985-02-30")
    date.commit()
    assert date.value() == "1985-02-30"


def test_date_calendar_sets_the_date(qtbot, formset: FormSet) -> None:
    date = _make(qtbot, formset, "resident", "birth_date")
    date.set_value("2001-02-03")
    date.calendar_action.trigger()
    calendar = date._calendar
    assert calendar is not None and calendar.isVisible()
    assert calendar.selectedDate().toString(Qt.DateFormat.ISODate) == "2001-02-03"
    calendar.setSelectedDate(calendar.selectedDate().addDays(1))
    calendar.clicked.emit(calendar.selectedDate())
    assert date.value() == "2001-02-04"
    assert not calendar.isVisible()


def test_help_text_is_placeholder_and_tooltip(qtbot, formset: FormSet) -> None:
    workplace = _make(qtbot, formset, "resident", "workplace")
    help_text = formset.form("resident").fields["workplace"].help.zh
    assert workplace.focus_target().placeholderText() == help_text
    assert workplace.focus_target().toolTip() == help_text
    workplace.set_lang("en")
    assert workplace.focus_target().placeholderText().startswith("Name of the employer")


def test_text_never_cuts_a_longer_stored_value(qtbot, formset: FormSet) -> None:
    name = _make(qtbot, formset, "resident", "name")
    assert name.focus_target().maxLength() == 50
    long_text = "长" * 60
    name.set_value(long_text)
    assert name.value() == long_text


def test_id_number_is_ready_to_check_at_full_length(qtbot, formset: FormSet) -> None:
    field = _make(qtbot, formset, "resident", "id_number")
    number = factories.id_number()
    field.focus_target().setText(number[:17])
    assert not field.live_check_ready()
    field.focus_target().setText(number[:17] + " x")
    assert field.live_check_ready()
    field.commit()
    assert field.value() == number[:17] + "X"


def test_number_field_refuses_letters(qtbot, formset: FormSet) -> None:
    rooms = _make(qtbot, formset, "house", "rooms")
    _focus(qtbot, rooms.focus_target())
    qtbot.keyClicks(rooms.focus_target(), "1a2")
    assert rooms.value() == "12"


def test_phone_is_tidied_when_left(qtbot, formset: FormSet) -> None:
    phone = _make(qtbot, formset, "resident", "phone")
    phone.focus_target().setText("138 0013 8000")
    phone.commit()
    assert phone.value() == "13800138000"


# --------------------------------------------------------------------------- coordinates


def test_coordinates_typed_and_pasted(qtbot, formset: FormSet) -> None:
    point = _make(qtbot, formset, "house", "location")
    assert isinstance(point, F.CoordinatesField)
    point.lon.setText("116.39")
    point.lat.setText("39.9")
    assert point.value() == {"lon": 116.39, "lat": 39.9}
    point.paste.setText("东经116°23′24″ 北纬39°54′")
    point.commit()
    assert point.value() == {"lon": pytest.approx(116.39), "lat": pytest.approx(39.9)}
    assert point.paste.text() == ""


def test_coordinates_from_gcj02_are_converted_to_wgs84(qtbot, formset: FormSet) -> None:
    point = _make(qtbot, formset, "house", "location")
    point.set_datum("gcj02")
    point.paste.setText("116.397, 39.909")
    point.commit()
    expected = geo.gcj_to_wgs(geo.LonLat(116.397, 39.909))
    value = point.value()
    assert value["lon"] == pytest.approx(expected.lon, abs=1e-6)
    assert value["lat"] == pytest.approx(expected.lat, abs=1e-6)
    assert abs(value["lon"] - 116.397) > 1e-4  # really moved (GCJ-02 offset is ~100s of m)


def test_coordinates_keep_unreadable_paste(qtbot, formset: FormSet) -> None:
    point = _make(qtbot, formset, "house", "location")
    point.paste.setText("somewhere near the river")
    point.commit()
    assert point.value() == "somewhere near the river"


# --------------------------------------------------------------------------- references and photos


def test_reference_searches_the_store_and_shows_titles(
    qtbot, formset: FormSet, store: Store
) -> None:
    house = store.save(
        "house",
        {
            "house_code": "H-001",
            "address_text": "幸福路12号3栋501室",
            "grid": "g1",
            "owner_name": "李四",
        },
    )
    store.save(
        "house",
        {"house_code": "H-002", "address_text": "文三路8号", "grid": "g1", "owner_name": "王五"},
    )
    ref = _make(qtbot, formset, "resident", "house_ref", store=store)
    _focus(qtbot, ref.focus_target())
    type_text(qtbot, ref.focus_target(), "幸福路")
    qtbot.waitUntil(lambda: ref.completer.popup().isVisible())
    with qtbot.waitSignal(ref.changed):
        qtbot.keyClick(ref.completer.popup(), Qt.Key.Key_Down)
        qtbot.keyClick(ref.completer.popup(), Qt.Key.Key_Return)
    assert ref.value() == house.id
    assert ref.focus_target().text() == house.title


def test_reference_asks_for_a_new_record(qtbot, formset: FormSet, store: Store) -> None:
    ref = _make(qtbot, formset, "resident", "house_ref", store=store)
    with qtbot.waitSignal(ref.createRequested) as signal:
        qtbot.mouseClick(ref.create_button, Qt.MouseButton.LeftButton)
    assert signal.args == ["house"]


def test_reference_to_a_missing_record_says_so(qtbot, formset: FormSet, store: Store) -> None:
    ref = _make(qtbot, formset, "resident", "house_ref", store=store)
    ref.set_value("no-such-id")
    assert ref.value() == "no-such-id"
    assert "不存在" in ref.focus_target().text()


def test_photo_chooser_stores_the_file_name(qtbot, formset: FormSet, tmp_path) -> None:
    field = Field(id="door_photo", label=Text("门牌照片", "Door photo"), type="photo")
    photo = F.make_field_widget(field, formset, "zh")
    qtbot.addWidget(photo)
    picture = tmp_path / "door.jpg"
    photo.chooser = lambda _parent: str(picture)
    qtbot.mouseClick(photo.choose_button, Qt.MouseButton.LeftButton)
    assert photo.value() == str(picture)


# --------------------------------------------------------------------------- messages


def test_message_line_appears_and_hides(qtbot, formset: FormSet) -> None:
    name = _make(qtbot, formset, "resident", "name")
    name.show()
    name.set_message("姓名：必填，请填写")
    assert name.message() == "姓名：必填，请填写"
    labels = [w for w in name.findChildren(QWidget) if w.objectName() == "fieldMessage"]
    assert labels and labels[0].isVisible()
    name.set_message("")
    assert not labels[0].isVisible()


# --------------------------------------------------------------------------- i18n and touch mode


def test_tr_formats_falls_back_and_takes_new_strings() -> None:
    from app.ui.i18n import register, tr

    assert tr("dup_exact", "zh", label="证件号码", title="张三", grid="G1") == (
        "该证件号码已登记：张三（网格 G1）"
    )
    assert tr("save_draft", "en") == "Save draft"
    assert tr("no.such.key", "en") == "no.such.key"
    register({"test.only": ("测试", "Test")})
    assert tr("test.only", "en-GB") == "Test" and tr("test.only") == "测试"


def test_language_holder_signals_real_changes_only(qtbot) -> None:
    from app.ui.i18n import Language

    holder = Language("zh")
    with qtbot.waitSignal(holder.changed) as switched:
        holder.set_lang("en")
    assert switched.args == ["en"] and holder.lang == "en"
    with qtbot.assertNotEmitted(holder.changed):
        holder.set_lang("en-US")


def test_touch_mode_leaves_other_style_sheets_alone(qtbot) -> None:
    from app.ui.style import apply_touch_mode, is_touch_mode

    widget = QWidget()
    qtbot.addWidget(widget)
    own = "QLabel { color: #123456; }"
    widget.setStyleSheet(own)
    apply_touch_mode(widget, True)
    apply_touch_mode(widget, True)  # twice: still one block
    assert is_touch_mode(widget)
    assert (
        widget.styleSheet().startswith(own) and widget.styleSheet().count("touch-mode begin") == 1
    )
    apply_touch_mode(widget, False)
    assert widget.styleSheet() == own and not is_touch_mode(widget)
