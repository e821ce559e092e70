"""Searchable indexes over code tables (code, both names, pinyin, region path).

Built on first use and shared by every editor in the process, so opening a form with long
tables (民族, 国籍, 行政区划) stays as cheap as a form of line edits.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from pypinyin.pinyin_dict import pinyin_dict
from PySide6.QtGui import (
    QStandardItem,
    QStandardItemModel,
)

from app.core.forms import CodeTable, Field
from app.core.messages import lang_of
from app.ui.fields.base import CODE_ROLE, SEARCH_ROLE

# --------------------------------------------------------------------------- code tables


def _code_path(table: CodeTable, code: str, lang: str) -> str:
    """'浙江省/杭州市/西湖区' for a hierarchical table, the plain label otherwise."""
    parts: list[str] = []
    seen: set[str] = set()
    current = table.codes.get(code)
    while current is not None and current.code not in seen:
        seen.add(current.code)
        parts.append(current.label(lang))
        current = table.codes.get(current.parent) if current.parent else None
    return "/".join(reversed(parts))


def code_display(table: CodeTable, code: str, lang: str = "zh") -> str:
    """How a picker shows a code: '330106 浙江省/杭州市/西湖区'; unknown codes as typed."""
    if code not in table.codes:
        return code
    return f"{code} {_code_path(table, code, lang)}"


@lru_cache(maxsize=16384)
def _char_pinyin(char: str) -> str:
    """The usual reading of one character without tones ('绿' -> 'lv'), from pypinyin's
    character table: what ``lazy_pinyin(char)`` returns, at a fraction of the cost (a region
    table has ~1,500 distinct characters and is indexed on first use)."""
    readings = pinyin_dict.get(ord(char))
    if not readings:
        return ""
    first = unicodedata.normalize("NFD", readings.split(",")[0]).replace("u\u0308", "v")
    return "".join(c for c in first if not unicodedata.combining(c))


@lru_cache(maxsize=65536)
def _pinyin(text: str) -> tuple[str, str]:
    """(full pinyin, initials) of the Chinese characters in ``text``, per character (cached)."""
    syllables = [s for s in (_char_pinyin(c) for c in text if not c.isascii()) if s]
    return "".join(syllables), "".join(s[0] for s in syllables)


@dataclass(frozen=True)
class CodeEntry:
    code: str
    display: str
    label: str
    search: str  # lower-case haystack: code, names in both languages, pinyin, initials
    names: tuple[str, ...] = ()  # the code's own names (zh, en): typed whole, they are exact


class CodeIndex:
    """One code table as a picker sees it in one language: its rows, their search text, and
    a Qt model over them built on first use. Historical codes are not offered (a stored one
    still shows and is still accepted when typed exactly)."""

    def __init__(self, table: CodeTable, lang: str, allowed: tuple[str, ...] | None) -> None:
        self.table, self.lang = table, lang
        other = "en" if lang_of(lang) == "zh" else "zh"
        entries = []
        for code in table.codes.values():
            if code.historical or (allowed is not None and code.code not in allowed):
                continue
            path = _code_path(table, code.code, lang)
            zh_path = path if lang_of(lang) == "zh" else _code_path(table, code.code, "zh")
            full, initials = _pinyin(code.zh)
            path_initials = "".join(_pinyin(part)[1] for part in zh_path.split("/"))
            haystack = " ".join(
                (code.code, path, code.label(other), full, initials, path_initials)
            ).lower()
            entries.append(
                CodeEntry(code.code, f"{code.code} {path}", path, haystack, (code.zh, code.en))
            )
        self.entries: tuple[CodeEntry, ...] = tuple(entries)
        self.row_of = {e.code: i for i, e in enumerate(self.entries)}
        self._by_display = {e.display: e.code for e in self.entries}
        self._model: QStandardItemModel | None = None

    def matches(self, text: str) -> list[CodeEntry]:
        """Entries whose search text contains ``text`` (case-insensitive), in table order."""
        needle = text.strip().lower()
        return [e for e in self.entries if needle in e.search] if needle else []

    def ranked(self, text: str, home: tuple[str, ...] = ()) -> list[CodeEntry]:
        """Matches best first: the code or a whole name or initials typed exactly, then a
        word's start, then any part; within each, codes under ``home`` prefixes (the worker's
        county, city, province) in that order, then table order."""
        needle = text.strip().lower()
        if not needle:
            return []

        def key(pair: tuple[int, CodeEntry]) -> tuple[int, int, int]:
            position, entry = pair
            words = entry.search.split()
            names = (entry.label.rsplit("/", 1)[-1].lower(), *map(str.lower, entry.names))
            if needle == entry.code.lower() or needle in names or needle in words:
                tier = 0
            elif entry.code.lower().startswith(needle) or any(
                w.startswith(needle) or w.rsplit("/", 1)[-1].startswith(needle) for w in words
            ):
                tier = 1
            else:
                tier = 2
            near = next((i for i, h in enumerate(home) if entry.code.startswith(h)), len(home))
            return tier, near, position

        found = [(i, e) for i, e in enumerate(self.entries) if needle in e.search]
        return [e for _, e in sorted(found, key=key)]

    def resolve(self, text: str) -> str | None:
        """The code a person meant by ``text``, or None when it is not clear (none or many)."""
        text = text.strip()
        if not text:
            return None
        if text in self._by_display:
            return self._by_display[text]
        for candidate in (text, text.upper(), text.split()[0], text.split()[0].upper()):
            if candidate in self.table.codes:
                return candidate
        lowered = text.lower()
        exact = [
            e.code
            for e in self.entries
            if lowered in (e.label.lower(), e.label.rsplit("/", 1)[-1].lower())
            or lowered in (c.lower() for c in _names(self.table, e.code))
        ]
        if len(exact) == 1:
            return exact[0]
        # Then, narrowing each time: a whole search word ("hanzu"), the start of one, any part
        # ("hanzu" is also inside "gaoshanzu", so a whole word must win over a substring).
        found = self.matches(text)
        for narrower in (
            lambda e: lowered in e.search.split(),
            lambda e: any(word.startswith(lowered) for word in e.search.split()),
        ):
            best = [e for e in found if narrower(e)]
            if len(best) == 1:
                return best[0].code
        return found[0].code if len(found) == 1 else None

    def model(self) -> QStandardItemModel:
        """The shared Qt model (display text, search text, code per row)."""
        if self._model is None:
            items = []
            for entry in self.entries:
                item = QStandardItem(entry.display)
                item.setData(entry.code, CODE_ROLE)
                item.setData(entry.search, SEARCH_ROLE)
                items.append(item)
            model = QStandardItemModel()
            model.appendColumn(items)  # one call: a row at a time is several times slower
            self._model = model
        return self._model


def home_regions(grid_codes: Iterable[str], table: CodeTable) -> tuple[str, ...]:
    """Code prefixes of a worker's own county, city and province, from their grids' codes
    (a grid code starts with its county's six digits); empty when no grid names a region."""
    counties = list(dict.fromkeys(g[:6] for g in grid_codes if g[:6] in table.codes))
    if not counties:
        return ()
    cities = [c[:4] for c in counties]
    provinces = [c[:2] for c in counties]
    return tuple(dict.fromkeys([*counties, *cities, *provinces]))


def _names(table: CodeTable, code: str) -> tuple[str, str]:
    known = table.codes[code]
    return known.zh, known.en


_INDEXES: dict[tuple[int, str, tuple[str, ...] | None], tuple[CodeTable, CodeIndex]] = {}


def code_index(
    table: CodeTable, lang: str = "zh", allowed: tuple[str, ...] | None = None
) -> CodeIndex:
    """The process-wide cached ``CodeIndex`` of a table (built on first call)."""
    key = (id(table), lang, allowed)
    cached = _INDEXES.get(key)
    if cached is None or cached[0] is not table:
        cached = (table, CodeIndex(table, lang, allowed))
        _INDEXES[key] = cached
    return cached[1]


_OFFERED: dict[tuple[int, tuple[str, ...] | None], tuple[CodeTable, tuple[str, ...]]] = {}


def _offered_codes(field: Field, table: CodeTable) -> tuple[str, ...]:
    """The codes a field offers (its filter, no historical codes); cached per table."""
    key = (id(table), tuple(field.codes_filter) if field.codes_filter else None)
    cached = _OFFERED.get(key)
    if cached is None or cached[0] is not table:
        allowed = set(key[1]) if key[1] is not None else None
        codes = tuple(
            c.code
            for c in table.codes.values()
            if not c.historical and (allowed is None or c.code in allowed)
        )
        cached = _OFFERED[key] = (table, codes)
    return cached[1]
