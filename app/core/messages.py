"""The message catalog: one zh and one en text for every validation error code.

Rules raise codes, never sentences, so the same failure reads the same on screen, in an import
report and on the server, in either language. Every text names the field (`{label}`) and says
what to fix. Templates use `str.format` fields: `{label}` plus the error's params.

Params are never personal data (positions, lengths, limits, column names), so a message can be
shown or logged safely; keep it that way when adding codes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

Lang = Literal["zh", "en"]
DEFAULT_LANG: Lang = "zh"
LANGS: tuple[Lang, Lang] = ("zh", "en")


def lang_of(lang: str | None) -> Lang:
    """The one language rule: "en", "en_US", "EN-gb" are English; anything else is Chinese.

    Every screen, report and CLI decides the language through this, so a setting like
    "en_US" never reads English in one place and Chinese in the next.
    """
    return "en" if (lang or "").lower()[:2] == "en" else "zh"


def command_lang(given: str | None) -> str:
    """The language a command speaks: its ``--lang``, else ``$GRIDCOLLECT_LANG``, else
    Chinese. One function for every command line (``gridcollect`` and ``server-admin``), so
    the variable set once for a shell or a cron job holds for all of them."""
    return given or os.environ.get("GRIDCOLLECT_LANG") or DEFAULT_LANG


def pick(lang: str | None, zh: str, en: str) -> str:
    """The text for ``lang`` out of a Chinese and an English one (see ``lang_of``)."""
    return en if lang_of(lang) == "en" else zh


class Catalog:
    """A module's texts, key -> (zh, en), read with one rule: ``texts.text(key, lang, **p)``.

    Params fill ``str.format`` fields; a text without fields is returned as written, so texts
    holding literal braces need no escaping when no params are given.
    """

    def __init__(self, texts: Mapping[str, tuple[str, str]]) -> None:
        self.texts = dict(texts)

    def __contains__(self, key: object) -> bool:
        return key in self.texts

    def __getitem__(self, key: str) -> tuple[str, str]:
        return self.texts[key]

    def text(self, key: str, lang: str | None = DEFAULT_LANG, **params: Any) -> str:
        """The text of ``key`` in ``lang``, its params filled in."""
        chosen = pick(lang, *self.texts[key])
        return chosen.format(**params) if params else chosen


# Words several screens, sheets and reports share: one spelling each.
COMMON = Catalog(
    {
        "yes": ("是", "Yes"),
        "no": ("否", "No"),
        "empty": ("（空）", "(empty)"),
        "status_draft": ("草稿", "Draft"),
        "status_complete": ("已完成", "Complete"),
        "missing_ref": ("（本机没有该记录）", "(not on this device)"),
        "photos": ("已附照片", "Photo attached"),
        "field._status": ("状态", "Status"),  # the pseudo-fields' labels
        "field._deleted": ("已删除", "Deleted"),
    }
)

_CATALOG: dict[str, tuple[str, str]] = {
    # Generic field checks (raised by the validation engine).
    "required": ("{label}：必填，请填写", "{label}: required; please fill it in"),
    "max_length": (
        "{label}：最多{max}个字，现有{value_len}个，请删减",
        "{label}: at most {max} characters, it has {value_len}; please shorten it",
    ),
    "min_length": (
        "{label}：至少{min}个字，现有{value_len}个，请补全",
        "{label}: at least {min} characters, it has {value_len}; please complete it",
    ),
    "min": ("{label}：不能小于{min}", "{label}: must not be less than {min}"),
    "max": ("{label}：不能大于{max}", "{label}: must not be greater than {max}"),
    "date.min": ("{label}：不能早于{min}", "{label}: must not be before {min}"),
    "date.max": ("{label}：不能晚于{max}", "{label}: must not be after {max}"),
    "scale": (
        "{label}：最多保留{scale}位小数",
        "{label}: use at most {scale} digits after the decimal point",
    ),
    "pattern": (
        "{label}：格式不正确，请按填写说明填写",
        "{label}: wrong format; follow the field's help",
    ),
    "not_integer": ("{label}：应为整数，如 3", "{label}: must be a whole number, e.g. 3"),
    "not_number": ("{label}：应为数字，如 12.5", "{label}: must be a number, e.g. 12.5"),
    "date.invalid": (
        "{label}：不是有效日期，请按“年-月-日”填写，如 2024-03-05",
        "{label}: not a valid date; use YYYY-MM-DD, e.g. 2024-03-05",
    ),
    "date.future": ("{label}：不能晚于今天", "{label}: must not be in the future"),
    "code.unknown": (
        "{label}：“{value}”不在代码表中，请从列表中选择",
        "{label}: “{value}” is not in the code table; choose from the list",
    ),
    "boolean.invalid": (
        "{label}：请填写“是”或“否”",
        "{label}: answer yes or no",
    ),
    "coordinates.invalid": (
        "{label}：坐标格式不正确，请填写“经度,纬度”（WGS84），如 112.98,28.19",
        "{label}: wrong coordinates; enter “longitude,latitude” (WGS84), e.g. 112.98,28.19",
    ),
    "coordinates.range": (
        "{label}：坐标不在中国境内（经度73至136，纬度3至54），请检查是否填反或填错",
        "{label}: the point is outside China (longitude 73 to 136, latitude 3 to 54); "
        "check whether the two values are swapped or mistyped",
    ),
    "coordinates.outside_grid": (
        "{label}：该位置不在所属网格范围内，请核对位置或所属网格（仍可保存）",
        "{label}: this point lies outside the record's grid; check the position or the grid "
        "(you can still save)",
    ),
    "reference.missing": (
        "{label}：所选记录不存在或已删除，请重新选择",
        "{label}: the chosen record does not exist or was deleted; choose again",
    ),
    # 公民身份号码, GB 11643 (app.core.idnumber).
    "id.empty": ("{label}：未填写", "{label}: missing"),
    "id.length": (
        "{label}：应为18位（旧号码15位），现为{length}位，请核对",
        "{label}: must have 18 characters (15 for an old number), it has {length}; check it",
    ),
    "id.chars": (
        "{label}：第{position}位不正确，只能填数字，仅最后一位可为X",
        "{label}: character {position} is wrong; use digits only, only the last may be X",
    ),
    "id.spreadsheet_number": (
        "{label}：表格把号码存成了数字（如 3.30106E+17），后几位已丢失。请把这一列设为“文本”格式，"
        "再重新输入号码",
        "{label}: the spreadsheet stored the number as a number (like 3.30106E+17) and lost "
        "its last digits; format the column as text and type the numbers again",
    ),
    "id.check_digit": (
        "{label}：校验位不正确，请核对最后一位（可能是X）及其他各位",
        "{label}: the check digit is wrong; check the last character (it may be X) "
        "and the other digits",
    ),
    "id.birth_date": (
        "{label}：第7至14位不是有效的出生日期，请核对",
        "{label}: characters 7 to 14 are not a real birth date; check them",
    ),
    "id.future": (
        "{label}：出生日期（第7至14位）晚于今天，请核对",
        "{label}: the birth date (characters 7 to 14) is in the future; check it",
    ),
    "id.too_old": (
        "{label}：出生日期（第7至14位）早于1900年，请核对",
        "{label}: the birth date (characters 7 to 14) is before 1900; check it",
    ),
    "id.area": (
        "{label}：前6位地区码不存在，请核对",
        "{label}: the first 6 digits are not a known area code; check them",
    ),
    "id.birth_mismatch": (
        "{label}：与公民身份号码中的出生日期不一致，请核对",
        "{label}: does not match the birth date in the citizen ID number; check both",
    ),
    "id.gender_mismatch": (
        "{label}：与公民身份号码不一致（第17位单数为男、双数为女），请核对",
        "{label}: does not match the citizen ID number (17th digit odd = male, even = female); "
        "check both",
    ),
    # 统一社会信用代码, GB 32100 (app.core.creditcode).
    "credit.empty": ("{label}：未填写", "{label}: missing"),
    "credit.length": (
        "{label}：应为18位，现为{length}位，请核对",
        "{label}: must have 18 characters, it has {length}; check it",
    ),
    "credit.chars": (
        "{label}：第{position}位不正确，只能填数字或大写字母（不含I、O、Z、S、V）",
        "{label}: character {position} is wrong; use digits or capital letters "
        "(never I, O, Z, S, V)",
    ),
    "credit.department": (
        "{label}：第1位（登记管理部门）应为1至9、A、N或Y，请核对",
        "{label}: the first character (registering authority) must be 1 to 9, A, N or Y",
    ),
    "credit.category": (
        "{label}：第2位（机构类别）与第1位不匹配，请核对",
        "{label}: the second character (entity type) does not fit the first; check it",
    ),
    "credit.area": (
        "{label}：第3至8位（行政区划码）应为数字，请核对",
        "{label}: characters 3 to 8 (area code) must be digits; check them",
    ),
    "credit.check_digit": (
        "{label}：校验位不正确，请核对最后一位及其他各位",
        "{label}: the check character is wrong; check the last character and the others",
    ),
    # Phone and postcode (app.core.phone).
    "phone.invalid": (
        "{label}：号码无效，请填写11位手机号或带区号的固定电话，如 0731-84567890",
        "{label}: not a valid number; enter an 11-digit mobile or a landline with its area "
        "code, e.g. 0731-84567890",
    ),
    "postcode.invalid": (
        "{label}：应为6位数字，如 410000",
        "{label}: must be 6 digits, e.g. 410000",
    ),
    # Import files and form files.
    "masked": (
        "{label}：这是脱敏导出中带*号的值，导入会把它写在真实信息上。请填写完整的值，"
        "或改用未脱敏的导出文件",
        "{label}: a masked value (with *) from a masked export; importing it would overwrite "
        "the real one. Enter the full value, or use an unmasked export",
    ),
    "column.unknown": (
        "导入文件中的列“{column}”不是本表的字段，请改正列名或删除该列",
        "The import file's column “{column}” is not a field of this form; rename or remove it",
    ),
    "column.missing": (
        "导入文件缺少必需的列“{column}”，请补上",
        "The import file lacks the required column “{column}”; add it",
    ),
    "file.encoding": (
        "无法识别文件编码，请另存为UTF-8编码的CSV或Excel（.xlsx）文件",
        "The file's text encoding is unknown; save it as UTF-8 CSV or as Excel (.xlsx)",
    ),
    "file.unreadable": (
        "无法读取文件“{file}”，请确认文件未损坏、格式正确",
        "Cannot read the file “{file}”; check that it is intact and of the right type",
    ),
    "form.unknown": (
        "未知的表单“{form}”，请确认表单文件已安装",
        "Unknown form “{form}”; check that its form file is installed",
    ),
}

_GENERIC = ("{label}：填写有误（{code}），请核对", "{label}: invalid value ({code}); check it")
_CUSTOM = ("{label}：{custom}", "{label}: {custom}")

# Field labels used when the caller gives none, by code family.
_DEFAULT_LABELS: dict[str, tuple[str, str]] = {
    "id": ("公民身份号码", "Citizen ID number"),
    "credit": ("统一社会信用代码", "Unified social credit code"),
    "phone": ("联系电话", "Phone number"),
    "postcode": ("邮政编码", "Postcode"),
}
_FALLBACK_LABEL = ("该项", "This field")


class RuleError(ValueError):
    """A failed rule, carried as a catalog code plus params (no personal data in either).

    str() gives the code only, so a logged exception never shows the value that failed.
    """

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params

    def message(self, lang: str = DEFAULT_LANG, label: str | None = None) -> str:
        """The user-facing text for this error."""
        return message(self.code, lang, **({"label": label} if label else {}), **self.params)


class _Params(dict):
    """Leaves a placeholder visible instead of raising when a param is missing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def codes() -> frozenset[str]:
    """Every code the catalog knows."""
    return frozenset(_CATALOG)


def template(code: str, lang: str = DEFAULT_LANG) -> str | None:
    """The raw template of a code in a language, None for an unknown code."""
    pair = _CATALOG.get(code)
    return None if pair is None else pair[_lang_index(lang)]


def _lang_index(lang: str) -> int:
    """0 for Chinese (and anything unknown), 1 for English; accepts zh-CN, en_US and so on."""
    return LANGS.index(lang_of(lang))


def _default_label(code: str, index: int) -> str:
    return _DEFAULT_LABELS.get(code.split(".", 1)[0], _FALLBACK_LABEL)[index]


def message(code: str, lang: str = DEFAULT_LANG, **params: Any) -> str:
    """Format the message for an error code in `lang` ("zh" or "en"; others fall back to zh).

    `label` is the field's label; a family default is used when it is missing. A form's own
    text (e.g. `pattern_message`) replaces the catalog text: param `custom_zh` / `custom_en`
    for the language asked, else `custom`. An unknown code gives a generic text that contains
    the code. Never raises for missing params.
    """
    index = _lang_index(lang)
    values = _Params(params)
    if not values.get("label"):
        values["label"] = _default_label(code, index)
    custom = values.get(f"custom_{LANGS[index]}") or values.get("custom")
    if custom:
        values["custom"] = custom
        chosen = _CUSTOM[index]
    elif code in _CATALOG:
        chosen = _CATALOG[code][index]
    else:
        values["code"] = code
        chosen = _GENERIC[index]
    return chosen.format_map(values)
