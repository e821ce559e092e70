"""The one formatter: a stored value as a person reads it, the same on sheets, scans, history
and conflicts."""

from __future__ import annotations

from app.core import scan
from app.core.display import code_label, display_value, status_text
from app.core.forms import FormSet
from app.core.store import Store
from app.printing.sheet_content import build_sheet
from tests.factories import resident


def _field(formset: FormSet, field_id: str):  # noqa: ANN202 - a forms Field
    return formset.form("resident").fields[field_id]


def test_a_child_code_reads_as_its_own_label_not_its_parents_too(formset: FormSet) -> None:
    education = _field(formset, "education")
    assert display_value(formset, education, "21", "zh") == "大学本科毕业"
    assert display_value(formset, education, "21", "en") == "Bachelor's programme - graduated"


def test_a_region_names_its_parents_because_its_label_alone_is_ambiguous(
    formset: FormSet,
) -> None:
    region = formset.table("region")
    assert code_label(region, "330106", "zh") == "浙江省杭州市西湖区"
    assert code_label(region, "360103", "zh") == "江西省南昌市西湖区"
    assert code_label(region, "999999", "zh") == "999999"  # unknown: as stored


def test_a_printed_sheet_shows_a_child_code_once(store: Store) -> None:
    """Print sheets showed "大学本科教育大学本科毕业": the parent's label glued to the child's."""
    record = store.save("resident", resident(education="21"), status="complete", author="li")
    sheet = build_sheet(store, record, key=b"k" * 32)
    values = {row.label: row.value for section in sheet.sections for row in section.rows}
    assert values["学历"] == "大学本科毕业"


def test_sensitive_values_are_masked_unless_the_caller_must_see_them(formset: FormSet) -> None:
    phone = _field(formset, "phone")
    assert display_value(formset, phone, "13800138000") == "138****8000"
    assert display_value(formset, phone, "13800138000", masked=False) == "13800138000"


def test_pseudo_fields_booleans_and_empties_read_as_words(formset: FormSet) -> None:
    assert display_value(formset, None, "draft", "zh", field_id="_status") == "草稿"
    assert status_text("complete", "en_US") == "Complete"
    assert display_value(formset, None, True, "zh", field_id="_deleted") == "是"
    assert display_value(formset, None, "", "zh") == ""
    assert display_value(formset, None, [], "zh", field_id="_status") == ""


def test_a_scanned_status_change_reads_in_words(formset: FormSet) -> None:
    change = scan.FieldChange("_status", "complete", "draft")
    assert scan.change_lines(formset, "resident", [change]) == ["状态: 已完成 → 草稿"]


def test_pseudo_fields_have_one_label_everywhere(formset: FormSet) -> None:
    from app.core.display import field_label

    assert field_label(None, "_status", "zh") == "状态"
    assert field_label(None, "_deleted", "en") == "Deleted"
    assert field_label(_field(formset, "phone"), "phone", "en") == "Phone"
    assert field_label(None, "gone_field", "zh") == "gone_field"  # a field the form lost
