"""The console's record search index: terms kept per record on every write (``record_terms``).

Why terms and not a scan: the console searches a whole street office (1.6 M records) by name,
pinyin initials, an ID or phone tail or a piece of an address. None of those is a prefix of a
column, so every record gets a set of terms, and a query is a prefix range on ``term`` (the
same on SQLite and PostgreSQL, where the column has the byte-order ``C`` collation).

Names and addresses repeat (a household shares one address, 张伟 is common), so a record holds
only its words and tails (``record_terms``: "n:张三", "a:幸福路12号", "t:" + tail), and each
distinct word gets its terms once in each grid that has it (``search_words``, so a search reads
only its scope's words): a push writes a few rows per record, not one per suffix. The terms are built so that a prefix range finds exactly the records the
console's match rule (``console.queries.matches``) accepts:

- ``n:`` + every suffix of the name (lower-cased; the title when the form has no name) and its
  ``app.core.search.name_terms`` (given name, pinyin, initials: the device's search terms), so
  "q in name" and "a name term starts with q" are both prefix searches;
- ``a:`` + every suffix of each address value (lower-cased): "q in address" as a prefix search;
- ``t:`` + the last ``TAIL`` characters of each ID number and phone, reversed: a tail search.

Suffixes are cut to ``CUT`` characters and tails to ``TAIL``: a longer query searches by its
first ``CUT`` characters (its last ``TAIL`` digits) and the candidates are checked against the
record, so the index never holds a full ID number or phone, only its last six characters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.core.forms import Form
from app.core.records import is_empty
from app.core.search import name_terms

CUT = 16  # characters of a name or address suffix kept as a term
TAIL = 6  # last characters of an ID number or phone kept (reversed) as a term
WORD = 200  # characters of a name or address kept as its key
NAME, ADDRESS, TAIL_MARK = "n:", "a:", "t:"
TOP = "\U0010ffff"  # sorts after every character (UTF-8 bytes, SQLite BINARY, PostgreSQL "C")


def values(data: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """The non-empty values of these fields as the search compares them (text, lower-cased)."""
    return [str(data[n]).lower() for n in names if not is_empty(data.get(n))]


def names_of(form: Form, data: Mapping[str, Any], title: str) -> list[str]:
    """The names a record is searched by: its name fields, else its title."""
    return values(data, form.roles.name) or [title.lower()]


def record_keys(form: Form, data: Mapping[str, Any], title: str) -> set[str]:
    """What ``record_terms`` holds for one record: its names and addresses as words (looked
    up through ``search_words``) and its ID and phone tails (searched directly)."""
    keys = {NAME + name[:WORD] for name in names_of(form, data, title) if name}
    keys.update(ADDRESS + a[:WORD] for a in values(data, form.roles.address))
    keys.update(
        TAIL_MARK + v[::-1][:TAIL] for v in values(data, (*form.roles.id, *form.roles.phone))
    )
    return keys


def is_word(key: str) -> bool:
    return key.startswith((NAME, ADDRESS))


def word_terms(word: str) -> set[str]:
    """The terms ``search_words`` holds for one name or address word (see the module doc)."""
    mark, text = word[:2], word[2:]
    found = {mark + text[i : i + CUT] for i in range(len(text))}
    if mark == NAME:
        found.update(NAME + t[:CUT] for t in name_terms(text))
    return found


def first_term(word: str) -> str:
    """The term every word has (itself, cut): a word is stored when this row is."""
    return word[: 2 + CUT]


def is_tail_query(q: str) -> bool:
    """Four or more digits (an ID may end in X): the tail of an ID number or phone."""
    return q.rstrip("x").isdigit() and len(q) >= 4


def ranges(q: str) -> list[tuple[str, str]]:
    """The term ranges [low, high) holding every record ``q`` (stripped, lower-cased) may match."""
    if is_tail_query(q):
        low = TAIL_MARK + q[::-1][:TAIL]
        return [(low, low + TOP)]
    return [(mark + q[:CUT], mark + q[:CUT] + TOP) for mark in (NAME, ADDRESS)]
