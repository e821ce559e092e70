"""Phone numbers and postcodes.

Phone numbers are checked with the `phonenumbers` package (region CN), which carries the exact,
maintained mobile prefixes and the landline area-code lengths, and normalised to one stored form:

* mobile: 11 digits, "13812345678";
* landline: "0AREA-SUBSCRIBER", "010-12345678", "0731-84567890";
* landline with an extension (common for units): "0731-84567890转8001". An extension may be typed
  as 转, 分机, ext, x or #; "0731-84567890-8001" is refused as ambiguous. Mobiles take none;
* 400 / 800 service numbers (units): "400-123-4567";
* a valid number of another country, typed with "+" or "00" and its country code (people from
  Hong Kong, Macao, Taiwan or abroad): E.164, "+85291234567".

A landline without its area code is refused: the area cannot be guessed.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from app.core.messages import RuleError
from app.core.textnorm import normalize_key

_CN = 86
# "<number><marker><digits>" where the marker is 转, 分机, ext, ext., x or #.
_EXTENSION = re.compile(r"(?:转|分机|ext\.?|x|#)\s*([0-9]{1,6})", re.IGNORECASE)
# Only digits and punctuation people put in numbers; no letters, so phonenumbers never reads a
# mistyped letter as a vanity-number digit.
_NUMBER_CHARS = re.compile(r"[0-9+\-(). /]+")
_POSTCODE = re.compile(r"[0-9]{6}")
_SERVICE_TYPES = frozenset(
    {PhoneNumberType.TOLL_FREE, PhoneNumberType.UAN, PhoneNumberType.SHARED_COST}
)
_LANDLINE_TYPES = frozenset({PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


class PhoneError(RuleError):
    """A phone number is not a valid mobile or landline number."""


class PostcodeError(RuleError):
    """A postcode is not six digits."""


def _split_extension(text: str) -> tuple[str, str]:
    """Split "<number> 转 8001" into ("<number>", "8001"); the extension may be ""."""
    match = _EXTENSION.search(text)
    if match is None or text[match.end() :].strip():
        return text, ""
    return text[: match.start()], match.group(1)


def _parse(s: str) -> phonenumbers.PhoneNumber:
    text = unicodedata.normalize("NFKC", s or "").strip()
    main, extension = _split_extension(text)
    if not _NUMBER_CHARS.fullmatch(main) or not any(ch.isdigit() for ch in main):
        raise PhoneError("phone.invalid")
    try:
        num = phonenumbers.parse(main, "CN")
    except phonenumbers.NumberParseException:
        raise PhoneError("phone.invalid") from None
    if num.extension or not phonenumbers.is_valid_number(num):
        raise PhoneError("phone.invalid")
    num.extension = extension or None
    return num


def _format_cn(num: phonenumbers.PhoneNumber) -> str:
    nsn = phonenumbers.national_significant_number(num)
    kind = phonenumbers.number_type(num)
    if kind == PhoneNumberType.MOBILE and not num.extension:
        return nsn
    if kind in _LANDLINE_TYPES:
        area_len = phonenumbers.length_of_geographical_area_code(num)
        if area_len:
            text = f"0{nsn[:area_len]}-{nsn[area_len:]}"
            return f"{text}转{num.extension}" if num.extension else text
    if kind in _SERVICE_TYPES and not num.extension:
        return "-".join(phonenumbers.format_number(num, PhoneNumberFormat.NATIONAL).split())
    raise PhoneError("phone.invalid")


@lru_cache(maxsize=1)
def _mobile_pattern() -> re.Pattern[str]:
    """phonenumbers' own CN mobile pattern, compiled once for the fast path."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    pattern = meta.mobile.national_number_pattern if meta and meta.mobile else None
    if not pattern:  # the library always ships CN metadata; fail loudly if that ever changes
        raise RuntimeError("phonenumbers has no CN mobile pattern")
    return re.compile(pattern)


def parse_phone(s: str) -> str:
    """Validate a phone number and return its normalised form (see the module docstring).

    Accepts "+86", "0086", spaces, dashes, brackets and full-width characters.
    Raises PhoneError("phone.invalid").
    """
    if len(s) == 11 and s.isascii() and s.isdigit() and _mobile_pattern().fullmatch(s):
        return s  # the common case (a plain mobile number), 50x cheaper than a full parse
    num = _parse(s)
    if num.country_code == _CN:
        return _format_cn(num)
    if num.extension:
        raise PhoneError("phone.invalid")
    return phonenumbers.format_number(num, PhoneNumberFormat.E164)


def is_valid_phone(s: str) -> bool:
    """True when parse_phone accepts s."""
    try:
        parse_phone(s)
    except PhoneError:
        return False
    return True


def parse_postcode(s: str) -> str:
    """Return the 6-digit postcode (leading zeros kept); raise PostcodeError otherwise."""
    code = normalize_key(s or "")
    if not _POSTCODE.fullmatch(code):
        raise PostcodeError("postcode.invalid")
    return code
