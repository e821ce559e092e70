"""An address as words: where its distinguishing end starts, and where a line may break.

Why: a door plate is read from a stair landing, so "1栋1单元101室" must be large and the
province-to-compound part small; and a Chinese address wrapped anywhere splits "听涛雅苑" or
"101" across lines. Addresses are free text (forms name no building/room parts of them), so
the parts are found by the suffixes every Chinese address uses (省 市 区 … 号 栋 单元 室).
"""

from __future__ import annotations

import re

# The first building-level part: 1栋, 2幢, A座, 3号楼, 1单元, 101室, 5层 ...
_TAIL_START = re.compile(r"[0-9A-Za-z\-]+(?:号楼|栋|幢|座|单元|室|层|楼)")
# One word: the shortest run ending in an address suffix (or the rest of the text).
_WORD = re.compile(
    r".+?(?:街道|社区|小区|花园|公寓|大厦|号楼|单元|自治区|街(?!道)|"
    r"[省市区县旗镇乡村组路巷弄里号苑园栋幢座室层])|.+$"
)


def split_address(address: str) -> tuple[str, str]:
    """(the rest, the distinguishing end): "…听涛雅苑", "1栋1单元101室".

    Without a building-level part the whole address is the distinguishing end.
    """
    text = address.strip()
    found = _TAIL_START.search(text)
    if found is None or found.start() == 0:
        return "", text
    return text[: found.start()], text[found.start() :]


def address_words(text: str) -> list[str]:
    """The pieces a line may break between; a number or a place name is never cut."""
    words: list[str] = []
    for word in _WORD.findall(text.strip()):
        words.extend(w for w in re.split(r"(?<=\s)", word) if w.strip())
    return words


__all__ = ["address_words", "split_address"]
