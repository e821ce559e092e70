"""公民身份号码 (citizen ID number), GB 11643-1999.

Layout: 6-digit area code (GB/T 2260 at the time of issue) + birth date YYYYMMDD + 3-digit
sequence (odd = male, even = female) + check character (ISO 7064 MOD 11-2, "X" for 10).
Legacy 15-digit numbers (YYMMDD, no check character) are upgraded by inserting "19".

What comes from python-stdnum and what is written here:

* stdnum: the check character (`stdnum.cn.ric.calc_check_digit`) and the GB/T 2260 area data
  (`stdnum/cn/loc.dat`, current and historical codes).
* Here: everything else. `stdnum.cn.ric.validate` does not accept 15-digit numbers, does not
  reject future birth dates, reports no reason a user could act on, and rejects an area code
  whose county did not exist in the birth year. That last rule is wrong for us: a person keeps
  the number issued when first registered, often years after birth and under a code created
  later, so any code that ever existed is accepted.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from stdnum.cn import ric

from app.core.messages import RuleError
from app.core.textnorm import normalize_key

_RE_18 = re.compile(r"[0-9]{17}[0-9X]")
_RE_15 = re.compile(r"[0-9]{15}")
# What a spreadsheet makes of a long number typed into a "General" cell: 3.30106E+17 as shown
# (and saved as CSV), 3.30106198506151E+17 in the .xlsx. The last digits are gone.
_RE_SPREADSHEET_NUMBER = re.compile(r"[0-9](?:\.[0-9]*)?E\+?[0-9]{1,2}")
_DIGITS = frozenset("0123456789")
_OLDEST = datetime.date(1900, 1, 1)

# Resident permit numbers for people from Taiwan (台湾居民居住证, 2018) use 830000, which is
# not a GB/T 2260 code; Hong Kong (810000) and Macao (820000) are in the stdnum data already.
_EXTRA_AREA_CODES = frozenset({"830000"})


class IdNumberError(RuleError):
    """An ID number failed a GB 11643 rule. The message holds the code only, never the number."""


@dataclass(frozen=True)
class IdInfo:
    """What a valid ID number says. `number` and `birth_date` stay out of repr() (logs)."""

    number: str = field(repr=False)  # normalised, 18 characters
    area_code: str
    birth_date: datetime.date = field(repr=False)
    gender: str  # GB/T 2261.1: "1" male, "2" female
    upgraded: bool  # True when the input was a legacy 15-digit number

    @property
    def birth_iso(self) -> str:
        """The birth date as a date field stores it."""
        return self.birth_date.isoformat()


def _walk(prefixes: list, head: str = "") -> Iterator[str]:
    """Yield the 6-digit codes of a stdnum numdb prefix tree (ranges expanded)."""
    for length, low, high, _props, children in prefixes:
        for value in range(int(low), int(high) + 1):
            code = head + str(value).zfill(length)
            if len(code) == 6:
                yield code
            yield from _walk(children, code)


@lru_cache(maxsize=1)
def known_area_codes() -> frozenset[str]:
    """Every GB/T 2260 code stdnum knows, current or historical (loaded once)."""
    from stdnum import numdb

    return frozenset(_walk(numdb.get("cn/loc").prefixes)) | _EXTRA_AREA_CODES


def _require_digits(s: str, count: int) -> None:
    if len(s) != count:
        raise IdNumberError("id.length", length=len(s))
    for i, ch in enumerate(s):
        if ch not in _DIGITS:
            raise IdNumberError("id.chars", position=i + 1)


def check_char(first17: str) -> str:
    """The GB 11643 check character ("0"-"9" or "X") for the first 17 digits."""
    _require_digits(first17, 17)
    return _check_char_of(first17)


def _check_char_of(first17: str) -> str:
    """``check_char`` of 17 characters already known to be digits (``_normalise`` matched
    them): the digit-by-digit check again was a third of checking a valid number."""
    # calc_check_digit expects the full number and ignores its last character.
    return ric.calc_check_digit(first17 + "0")


def upgrade_15(number15: str) -> str:
    """Turn a legacy 15-digit number into its 18-character form (birth year 19YY)."""
    _require_digits(number15, 15)
    first17 = number15[:6] + "19" + number15[6:]
    return first17 + check_char(first17)


def key_form(s: str) -> str:
    """The number as keys compare it and an ``id_number`` field stores it: normalised, and a
    15-digit one as its 18-digit form. Why: a person registered under the first-generation
    number is the same person as the one typed from a new card; both must be one key.
    Anything else (not 15 ASCII digits, another document's number) stays as normalised."""
    number = normalize_key(s)
    if len(number) == 15 and _RE_15.fullmatch(number):
        return upgrade_15(number)
    return number


def _first_bad_char(number: str) -> int:
    """1-based position of the first character that cannot be where it is."""
    for i, ch in enumerate(number):
        if ch not in _DIGITS and not (i == 17 and ch == "X"):
            return i + 1
    return 0


def _birth_date(number: str, today: datetime.date) -> datetime.date:
    # YYYYMMDD of eight digits (``_normalise`` matched them) read in C: a third of the time of
    # three int() and a date() (the basic ISO form, Python >= 3.11)
    try:
        born = datetime.date.fromisoformat(number[6:14])
    except ValueError:
        raise IdNumberError("id.birth_date") from None
    if born > today:
        raise IdNumberError("id.future")
    if born < _OLDEST:
        raise IdNumberError("id.too_old")
    return born


def _normalise(s: str) -> tuple[str, bool]:
    """Return the 18-character number and whether it was upgraded; check form only."""
    number = normalize_key(s or "")
    if not number:
        raise IdNumberError("id.empty")
    if "E" in number and _RE_SPREADSHEET_NUMBER.fullmatch(number):
        raise IdNumberError("id.spreadsheet_number")
    if len(number) == 15:
        if not _RE_15.fullmatch(number):
            raise IdNumberError("id.chars", position=_first_bad_char(number))
        return upgrade_15(number), True
    if len(number) != 18:
        raise IdNumberError("id.length", length=len(number))
    if not _RE_18.fullmatch(number):
        raise IdNumberError("id.chars", position=_first_bad_char(number))
    return number, False


def parse_id_number(s: str, today: datetime.date | None = None) -> IdInfo:
    """Normalise and validate an ID number; raise IdNumberError with a code saying why not.

    Accepts lowercase x, spaces and full-width characters. Checks run from the most specific
    hint to the least: form, birth date, area, then the check character.
    """
    number, upgraded = _normalise(s)
    born = _birth_date(number, today or datetime.date.today())
    area = number[:6]
    if area not in known_area_codes():
        raise IdNumberError("id.area")
    if not upgraded and number[17] != _check_char_of(number[:17]):
        raise IdNumberError("id.check_digit")
    gender = "1" if int(number[16]) % 2 == 1 else "2"
    return IdInfo(number, area, born, gender, upgraded)


def is_valid_id_number(s: str, today: datetime.date | None = None) -> bool:
    """True when parse_id_number accepts s."""
    try:
        parse_id_number(s, today)
    except IdNumberError:
        return False
    return True
