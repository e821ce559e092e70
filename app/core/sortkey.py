"""The order lists show records in: names by pinyin, addresses by room order.

Why a stored key: a list pages through 1.6 M records by keyset over an index, so the order has
to be a plain byte comparison SQLite can walk. The key is one function of a record's title (a
resident's name, a house's or address's full address, a unit's name), so code knows no field:

- a Chinese character becomes its pinyin, syllables apart ("李四" -> "li si", before "lin");
- a run of digits becomes its value's length (two digits) and the digits without leading
  zeros, so numbers compare as numbers ("2栋" before "10栋", "201" before "1001");
- Latin letters are lower-cased; other characters (spaces, punctuation) only part tokens;
- the title itself follows a ``\\x01`` so records that read alike still group by writing;
- a person's name starts with a surname, read as a surname (曾 "zeng", 单 "shan":
  ``app.core.surnames``) when the caller says the title is a person's name.

Numbers come before words, as the navigation tree orders buildings.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from app.core.search import char_pinyin
from app.core.surnames import surname_readings

_TOKEN = re.compile(r"[0-9]+|[a-z]+|[\u3400-\u9fff\uf900-\ufaff]")
SEPARATOR = "\x01"  # below every character a key is made of: a shorter key sorts first


def _number(digits: str) -> str:
    value = digits.lstrip("0") or "0"
    return f"{min(len(value), 99):02d}{value}"


def _token(token: str) -> str:
    if token[0].isdigit():
        return _number(token)
    if token.isascii():
        return token
    return char_pinyin(token) or token


@lru_cache(maxsize=65536)  # neighbours share addresses; families share surnames
def sort_key(title: str, surname: bool = False) -> str:
    """The key a list orders records of this title by (empty for an empty title);
    ``surname``: the title is a person's name, whose first characters are a surname."""
    text = unicodedata.normalize("NFKC", title).strip()
    if not text:
        return ""
    lead = surname_readings(text) if surname else None
    rest = text[lead[0] :] if lead else text
    tokens = [_token(t) for t in _TOKEN.findall(rest.lower())]
    if lead:
        tokens[:0] = lead[1]
    return f"{' '.join(tokens)}{SEPARATOR}{text}"
