"""Make a Qt PDF's text layer say the characters that were printed (户籍, not ⼾籍).

Why: Qt writes each embedded font's ``/ToUnicode`` map by walking code points upwards and
keeping, per glyph, the *first* one the font draws with it. Noto CJK (and most CJK fonts)
draw the Kangxi radicals (U+2F00–U+2FDF) and CJK radicals supplement (U+2E80–U+2EFF) with
the same glyph as the ideograph, and those blocks come before U+4E00: so 户 extracts as ⼾,
人 as ⼈, 民 as ⺠, and a batch of sheets cannot be searched. Spaces come back as tabs.

``fix_text_layer`` rewrites those map entries in place after the PDF is written: for every
destination code point it picks, among all characters the font draws with the same glyph, the
one a Chinese text most likely meant (a GB2312 character, then a unified ideograph, then any
printable one). Each entry keeps its length (four hex digits), so no offset in the file moves.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from PySide6.QtGui import QFont, QRawFont

from app.printing.fonts import cjk_family

_TO_UNICODE = re.compile(rb"/ToUnicode (\d+) 0 R")
_HEX4 = re.compile(rb"<([0-9A-Fa-f]{4})>")


def _rank(ch: str) -> tuple[int, int, int, int]:
    """Lower is better: printable, in GB2312, a unified ideograph, then the lowest."""
    cp = ord(ch)
    control = unicodedata.category(ch).startswith("C")
    try:
        ch.encode("gb2312")
        gb = True
    except UnicodeEncodeError:
        gb = False
    unified = 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF
    return (int(control), int(not gb), int(not unified), cp)


@lru_cache(maxsize=4)
def _better_map(family: str) -> dict[int, int]:
    """Code point -> the best code point sharing its glyph, where that differs."""
    raw = QRawFont.fromFont(QFont(family))
    chars = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    by_glyph: dict[int, list[str]] = {}
    for ch, glyph in zip(chars, raw.glyphIndexesForString("".join(chars)), strict=True):
        if glyph:
            by_glyph.setdefault(glyph, []).append(ch)
    better: dict[int, int] = {}
    for group in by_glyph.values():
        if len(group) > 1:
            best = ord(min(group, key=_rank))
            better.update({ord(ch): best for ch in group if ord(ch) != best})
    return better


def _rewrite_cmap(stream: bytes, better: dict[int, int]) -> bytes:
    """Destination entries of a bfrange/bfchar CMap replaced, four hex digits each."""

    def dest(match: re.Match[bytes]) -> bytes:
        cp = int(match.group(1), 16)
        return b"<%04X>" % better.get(cp, cp)

    out, inside = [], False
    for line in stream.split(b"\n"):
        tokens = _HEX4.findall(line)
        if line.rstrip().endswith((b"beginbfrange", b"beginbfchar")):
            inside = True
        elif line.rstrip().endswith((b"endbfrange", b"endbfchar")):
            inside = False
        elif not inside:
            pass
        elif b"[" in line:  # <lo> <hi> [<dst> ...]: only the array holds destinations
            head, _, tail = line.partition(b"[")
            line = head + b"[" + _HEX4.sub(dest, tail)
        elif len(tokens) in (2, 3):
            # <src> <dst> (bfchar) or <lo> <hi> <dst> (bfrange): the last token is the target
            cut = line.rfind(b"<")
            line = line[:cut] + _HEX4.sub(dest, line[cut:], count=1)
        out.append(line)
    return b"\n".join(out)


def _streams(data: bytes, numbers: Iterable[bytes]) -> list[tuple[int, int]]:
    """(start, end) of the raw content of each uncompressed stream object listed."""
    spans = []
    for number in set(numbers):
        head = re.search(rb"(?m)^" + number + rb" 0 obj\b", data)
        if head is None:
            continue
        start = data.find(b"stream", head.end())
        dictionary = data[head.end() : start]
        if start < 0 or b"/Filter" in dictionary:
            continue
        start = data.index(b"\n", start) + 1
        spans.append((start, data.index(b"endstream", start)))
    return spans


def fix_text_layer(path: str | Path, family: str | None = None) -> int:
    """Rewrite the PDF's ToUnicode maps in place; returns the number of entries changed."""
    file = Path(path)
    data = bytearray(file.read_bytes())
    better = _better_map(family or cjk_family())
    changed = 0
    for start, end in _streams(bytes(data), _TO_UNICODE.findall(data)):
        old = bytes(data[start:end])
        if b"begincmap" not in old:
            continue
        new = _rewrite_cmap(old, better)
        assert len(new) == len(old)  # same length: the xref offsets stay true
        changed += sum(a != b for a, b in zip(_HEX4.findall(old), _HEX4.findall(new), strict=True))
        data[start:end] = new
    if changed:
        file.write_bytes(bytes(data))
    return changed


__all__ = ["fix_text_layer"]
