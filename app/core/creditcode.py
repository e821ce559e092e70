"""统一社会信用代码 (unified social credit code), GB 32100-2015.

Layout: 登记管理部门 (1) + 机构类别 (1) + area code (6 digits) + 主体标识码 (9) + check (1), from
the 31-symbol alphabet without I, O, Z, S, V.

Written here rather than taken from python-stdnum: `stdnum.cn.uscc.validate` rejects valid codes
whose first character is a letter (A, N, Y), and we want a reason per rule. Its
`calc_check_digit` computes the same check character and serves as a test oracle.

The area code must be six digits but need not be a known GB/T 2260 code: bodies registered
nationally use codes such as 100000, and codes keep the area of their first registration.
The 机构类别 is checked only for departments whose table we are sure of (see `_CATEGORIES`);
for the others any symbol of the alphabet is accepted rather than risk refusing a real code.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.messages import RuleError
from app.core.textnorm import normalize_key

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_DIGITS = frozenset("0123456789")

DEPARTMENTS: dict[str, str] = {
    "1": "机构编制",
    "2": "外交",
    "3": "司法行政",
    "4": "文化",
    "5": "民政",
    "6": "旅游",
    "7": "宗教",
    "8": "工会",
    "9": "工商",
    "A": "中央军委改革和编制办公室",
    "N": "农业",
    "Y": "其他",
}

# 机构类别 per 登记管理部门, GB 32100-2015 表1 and its amendments.
_CATEGORIES: dict[str, dict[str, str]] = {
    "1": {"1": "机关", "2": "事业单位", "3": "中央编办直接管理机构编制的群众团体", "9": "其他"},
    "2": {"1": "外国常驻新闻机构", "9": "其他"},
    "3": {
        "1": "律师执业机构",
        "2": "公证处",
        "3": "基层法律服务所",
        "4": "司法鉴定机构",
        "5": "仲裁委员会",
        "9": "其他",
    },
    "4": {"1": "外国在华文化中心", "9": "其他"},
    "5": {"1": "社会团体", "2": "民办非企业单位", "3": "基金会", "9": "其他"},
    "6": {
        "1": "外国旅游部门常驻代表机构",
        "2": "港澳台地区旅游部门常驻内地（大陆）代表机构",
        "9": "其他",
    },
    "7": {"1": "宗教活动场所", "2": "宗教院校", "9": "其他"},
    "8": {"1": "基层工会", "9": "其他"},
    "9": {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"},
    "A": {"1": "军队事业单位", "9": "其他"},
    "N": {"1": "组级集体经济组织", "2": "村级集体经济组织", "3": "乡镇级集体经济组织", "9": "其他"},
    "Y": {"1": "其他"},
}

# Departments whose category table above is known to be complete: a category outside it is an
# error. For the rest the table only supplies names.
_STRICT_CATEGORIES = frozenset({"1", "5", "9", "N", "Y"})


class CreditCodeError(RuleError):
    """A credit code failed a GB 32100 rule."""


@dataclass(frozen=True)
class CreditInfo:
    """The parts of a valid credit code."""

    code: str  # normalised, 18 characters
    department: str  # 登记管理部门 symbol
    category: str  # 机构类别 symbol
    area_code: str  # 6 digits


def _first_bad_char(code: str) -> int:
    """1-based position of the first symbol outside the alphabet, 0 if none."""
    for i, ch in enumerate(code):
        if ch not in _VALUE:
            return i + 1
    return 0


def check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 symbols."""
    if len(first17) != 17:
        raise CreditCodeError("credit.length", length=len(first17))
    bad = _first_bad_char(first17)
    if bad:
        raise CreditCodeError("credit.chars", position=bad)
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def department_name(department: str) -> str | None:
    """Chinese name of a 登记管理部门 symbol, None if unknown."""
    return DEPARTMENTS.get(department)


def category_name(department: str, category: str) -> str | None:
    """Chinese name of a 机构类别 under its department, None if unknown."""
    return _CATEGORIES.get(department, {}).get(category)


def parse_credit_code(s: str) -> CreditInfo:
    """Normalise and validate a credit code; raise CreditCodeError with a code saying why not.

    Accepts lowercase, spaces and full-width characters.
    """
    code = normalize_key(s or "")
    if not code:
        raise CreditCodeError("credit.empty")
    if len(code) != 18:
        raise CreditCodeError("credit.length", length=len(code))
    bad = _first_bad_char(code)
    if bad:
        raise CreditCodeError("credit.chars", position=bad)
    department, category, area = code[0], code[1], code[2:8]
    if department not in DEPARTMENTS:
        raise CreditCodeError("credit.department")
    if department in _STRICT_CATEGORIES and category not in _CATEGORIES[department]:
        raise CreditCodeError("credit.category")
    if not all(ch in _DIGITS for ch in area):
        raise CreditCodeError("credit.area")
    if code[17] != check_char(code[:17]):
        raise CreditCodeError("credit.check_digit")
    return CreditInfo(code, department, category, area)


def is_valid_credit_code(s: str) -> bool:
    """True when parse_credit_code accepts s."""
    try:
        parse_credit_code(s)
    except CreditCodeError:
        return False
    return True
