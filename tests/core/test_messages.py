"""The message catalog: complete in zh and en, every template formats, sane fallbacks."""

from __future__ import annotations

import re
import string
from collections.abc import Callable

import pytest

from app.core.creditcode import CreditCodeError, parse_credit_code
from app.core.idnumber import IdNumberError, parse_id_number
from app.core.messages import RuleError, codes, message, template
from app.core.phone import PhoneError, parse_phone

# Every code the rules and the validation engine raise (see the modules and the engine brief).
REQUIRED_CODES = {
    "id.empty", "id.length", "id.chars", "id.check_digit", "id.birth_date", "id.future",
    "id.too_old", "id.area",
    "credit.empty", "credit.length", "credit.chars", "credit.department", "credit.category",
    "credit.area", "credit.check_digit",
    "phone.invalid", "postcode.invalid",
    "required", "max_length", "min_length", "min", "max", "scale", "pattern", "not_integer",
    "not_number", "date.invalid", "date.future", "code.unknown", "boolean.invalid",
    "coordinates.invalid", "coordinates.range", "reference.missing", "id.birth_mismatch",
    "id.gender_mismatch", "column.unknown", "column.missing", "file.encoding",
    "file.unreadable", "form.unknown",
}  # fmt: skip

# Plausible values for every param a template may use.
PLAUSIBLE = {
    "label": "字段",
    "max": 20,
    "min": 2,
    "value_len": 25,
    "scale": 2,
    "length": 17,
    "position": 5,
    "value": "99",
    "expected": "YYYY-MM-DD",
    "column": "姓名",
    "file": "import.csv",
    "form": "resident",
}

# Codes about a file or a form rather than one field: they need no {label}.
FILE_LEVEL = {"column.unknown", "column.missing", "file.encoding", "file.unreadable"}
FILE_LEVEL |= {"form.unknown"}

CJK = re.compile(r"[\u4e00-\u9fff]")


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_every_required_code_is_in_the_catalog() -> None:
    assert codes() >= REQUIRED_CODES


@pytest.mark.parametrize("code", sorted(codes()))
def test_every_code_has_zh_and_en_with_the_same_params(code: str) -> None:
    zh, en = template(code, "zh"), template(code, "en")
    assert zh and CJK.search(zh)
    assert en and not CJK.search(en)
    assert fields(zh) == fields(en)
    assert fields(zh) <= set(PLAUSIBLE), f"add a plausible value for {fields(zh)}"


@pytest.mark.parametrize("code", sorted(codes()))
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_template_formats_with_plausible_params(code: str, lang: str) -> None:
    text = template(code, lang)
    assert text is not None
    formatted = text.format(**PLAUSIBLE)  # a plain dict: a missing param raises KeyError
    assert "{" not in formatted and "}" not in formatted
    assert message(code, lang, **PLAUSIBLE) == formatted


@pytest.mark.parametrize("code", sorted(codes() - FILE_LEVEL))
def test_field_messages_name_the_field(code: str) -> None:
    assert "{label}" in (template(code, "zh") or "")
    assert message(code, "zh", label="门牌号").startswith("门牌号")
    assert message(code, "en", label="House number").startswith("House number")


def test_the_brief_examples() -> None:
    assert message("id.check_digit").startswith(
        "公民身份号码：校验位不正确，请核对最后一位（可能是X）"
    )
    assert message("id.check_digit", "en").startswith(
        "Citizen ID number: the check digit is wrong; check the last character (it may be X)"
    )
    assert message("required", label="姓名") == "姓名：必填，请填写"
    assert "20" in message("max_length", label="姓名", max=20, value_len=25)


@pytest.mark.parametrize("lang", ["fr", "", "ZH-cn", "zh_CN"])
def test_other_languages_fall_back_to_zh(lang: str) -> None:
    assert message("required", lang, label="姓名") == message("required", "zh", label="姓名")


@pytest.mark.parametrize("lang", ["en", "EN", "en-US", "en_GB"])
def test_english_variants(lang: str) -> None:
    assert message("required", lang, label="Name") == "Name: required; please fill it in"


def test_unknown_code_gives_a_generic_text_with_the_code() -> None:
    assert "no.such.code" in message("no.such.code", label="姓名")
    assert "no.such.code" in message("no.such.code", "en")
    assert template("no.such.code") is None


def test_missing_params_never_raise() -> None:
    text = message("max_length", label="姓名")
    assert "{max}" in text


def test_default_labels_by_family() -> None:
    assert message("id.area").startswith("公民身份号码")
    assert message("credit.area", "en").startswith("Unified social credit code")
    assert message("phone.invalid").startswith("联系电话")
    assert message("required").startswith("该项")


def test_custom_text_replaces_the_catalog() -> None:
    assert (
        message("pattern", label="楼栋号", custom="请填写数字加“栋”") == "楼栋号：请填写数字加“栋”"
    )
    per_lang = {"custom_zh": "请填写数字加“栋”", "custom_en": "digits then 栋"}
    assert message("pattern", "zh", label="楼栋号", **per_lang) == "楼栋号：请填写数字加“栋”"
    assert message("pattern", "en-US", label="Building", **per_lang) == "Building: digits then 栋"
    assert message("pattern", "fr", label="楼栋号", **per_lang) == "楼栋号：请填写数字加“栋”"
    empty = message("pattern", "en", label="Building", custom="", custom_en="")
    assert empty == message("pattern", "en", label="Building")


@pytest.mark.parametrize(
    ("parse", "typed", "cls"),
    [
        (parse_id_number, "110105194912310021", IdNumberError),
        (parse_credit_code, "91350100M000100Y44", CreditCodeError),
        (parse_phone, "12345", PhoneError),
    ],
)
def test_rule_errors_render_their_message(
    parse: Callable[[str], object], typed: str, cls: type[RuleError]
) -> None:
    with pytest.raises(cls) as info:
        parse(typed)
    err = info.value
    assert isinstance(err, RuleError)
    assert isinstance(err, ValueError)
    assert str(err) == err.code
    assert err.message("zh", label="证件号码").startswith("证件号码：")
    assert typed not in err.message("zh")
    assert err.message("en") == message(err.code, "en", **err.params)


# -- one language rule (issue 11) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "lang"),
    [("en", "en"), ("en_US", "en"), ("EN-gb", "en"), ("zh", "zh"), ("zh_CN", "zh"), ("", "zh")],
)
def test_one_rule_decides_the_language(given: str, lang: str) -> None:
    from app.core.messages import COMMON, lang_of, pick

    assert lang_of(given) == lang
    assert (
        pick(given, "是", "Yes") == COMMON.text("yes", given) == ("Yes" if lang == "en" else "是")
    )


def test_every_text_helper_reads_a_regional_english_setting_as_english(tmp_path) -> None:  # noqa: ANN001
    """Helpers that tested ``lang == "en"`` answered Chinese for "en_US" while those that
    tested ``startswith("en")`` answered English: now all go through ``lang_of``."""
    from app.core.dedup import Candidate
    from sync.lock import LockedError

    offered = Candidate("r1", "张三", 1.0, "same_key")
    assert offered.reason_text("en_US") == offered.reason_text("en")
    assert LockedError(tmp_path, "").reason("en_US").startswith("another sync")
    assert message("required", "en_US", label="Name") == message("required", "en", label="Name")
