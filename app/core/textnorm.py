"""Text normalisation for keys and identifiers typed on Chinese keyboards.

Grid workers type ID numbers and codes with full-width digits (IME left in full-width mode),
ideographic spaces (U+3000), pasted zero-width characters and lowercase letters. Natural keys
and identifiers must compare equal regardless, so everything that is a key goes through
`normalize_key` first.
"""

from __future__ import annotations

import unicodedata

# Invisible characters that pasting from web pages and spreadsheets leaves behind; they are not
# whitespace for str.split() but are never part of a key.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))

# NFKC + upper-casing + whitespace removal reach a fixed point in one or two rounds on real
# input; the bound only guards against a pathological string.
_MAX_ROUNDS = 4


def normalize_key(s: str) -> str:
    """NFKC (full-width -> half-width), drop all whitespace and invisibles, upper-case.

    Idempotent: normalize_key(normalize_key(s)) == normalize_key(s). Plain ASCII (the common
    case) takes a fast path without Unicode normalisation.
    """
    if s.isascii():
        if s.isalnum():  # no whitespace to drop (an ID number as typed, or normalised before)
            return s.upper()
        return "".join(s.split()).upper()
    out = s
    for _ in range(_MAX_ROUNDS):
        # Removing whitespace can bring a base letter next to a combining mark, and upper()
        # can produce decomposed sequences, so repeat until nothing changes.
        nxt = "".join(unicodedata.normalize("NFKC", out).translate(_INVISIBLE).split()).upper()
        if nxt == out:
            break
        out = nxt
    return out
