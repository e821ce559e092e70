"""How a surname is read, where that differs from the character's usual reading.

Why a table of our own: pypinyin reads a character alone by its commonest reading, and a
surname is often read otherwise (曾 is "ceng" in 曾经 but "zeng" in 曾国藩; 单 "dan" but
"shan"; 解 "jie" but "xie"). A list of residents ordered by pinyin would file every 曾 under C.
pypinyin has no surname mode, so the well-known polyphonic surnames (compound ones first) are
listed here with their surname reading; every other character keeps pypinyin's.
"""

from __future__ import annotations

# compound surnames whose reading differs from their characters' usual readings
COMPOUND = {
    "尉迟": ("yu", "chi"),
    "万俟": ("mo", "qi"),
    "澹台": ("tan", "tai"),
    "单于": ("chan", "yu"),
}

SINGLE = {
    "曾": "zeng",
    "单": "shan",
    "解": "xie",
    "仇": "qiu",
    "区": "ou",
    "朴": "piao",
    "查": "zha",
    "覃": "qin",
    "盖": "ge",
    "缪": "miao",
    "种": "chong",
    "繁": "po",
    "乐": "yue",
    "召": "shao",
    "翟": "zhai",
    "员": "yun",
    "隗": "wei",
    "秘": "bi",
    "句": "gou",
    "折": "she",
    "阚": "kan",
    "祭": "zhai",
    "蕃": "pi",
    "都": "du",
    "能": "nai",
    "重": "chong",
    "薄": "bo",
}


def surname_readings(name: str) -> tuple[int, tuple[str, ...]] | None:
    """(characters, syllables) of the surname that starts ``name`` when the table reads it
    otherwise than pypinyin would; None when the usual readings are right."""
    if name[:2] in COMPOUND:
        return 2, COMPOUND[name[:2]]
    if name[:1] in SINGLE:
        return 1, (SINGLE[name[:1]],)
    return None
