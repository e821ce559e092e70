"""Generate the long code tables (country, region) in forms/codes/ from installed packages.

The CSVs are checked in; this script exists so they can be rebuilt and reviewed, not run at
start-up. Sources are offline package data:

* country: pycountry (ISO 3166-1, i.e. GB/T 2659) with its zh_CN gettext catalogue;
* region: python-stdnum's ``stdnum/cn/loc.dat`` (GB/T 2260 codes with the years each name was
  in use, so historical codes met in old ID numbers are kept and marked). English labels are
  toneless pinyin (pypinyin); ethnic group names are read from forms/codes/ethnicity.yaml.

Run: ``.venv/bin/python tools/gen_codes.py [--out DIR]``.
"""

from __future__ import annotations

import argparse
import csv
import gettext
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pycountry
import yaml
from pypinyin import Style, lazy_pinyin

CODES_DIR = Path(__file__).resolve().parents[1] / "forms" / "codes"

# -- country -------------------------------------------------------------------------------

# PRC-standard short names where pycountry's zh_CN catalogue differs from GB/T 2659 usage
# (political forms, long official names, and a few plain mistakes in the catalogue).
COUNTRY_ZH_OVERRIDES: dict[str, str] = {
    "CHN": "中国",
    "TWN": "中国台湾",
    "HKG": "中国香港",
    "MAC": "中国澳门",
    "KOR": "韩国",
    "PRK": "朝鲜",
    "IRN": "伊朗",
    "LAO": "老挝",
    "SYR": "叙利亚",
    "VEN": "委内瑞拉",
    "BOL": "玻利维亚",
    "MDA": "摩尔多瓦",
    "BGD": "孟加拉国",
    "KGZ": "吉尔吉斯斯坦",
    "KHM": "柬埔寨",
    "GTM": "危地马拉",
    "MLT": "马耳他",
    "PYF": "法属波利尼西亚",
    "SGS": "南乔治亚岛和南桑威奇群岛",
}


def country_rows() -> list[list[str]]:
    """One row per ISO 3166-1 country: alpha-3 code, Chinese name, English name, no parent."""
    zh = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["zh_CN"])
    rows = []
    for country in pycountry.countries:
        code = country.alpha_3
        name_zh = COUNTRY_ZH_OVERRIDES.get(code) or zh.gettext(country.name)
        if name_zh == country.name:
            raise ValueError(f"no Chinese name for {code}")
        rows.append([code, name_zh, country.name, ""])
    return sorted(rows)


# -- region --------------------------------------------------------------------------------

# Placeholder divisions have a meaning rather than a proper name; translate them.
GENERIC_EN: dict[str, str] = {
    "市辖区": "Districts",
    "县": "Counties",
    "市": "Cities",
    "省直辖县级行政单位": "County-level divisions under the province",
    "省直辖县级行政区划": "County-level divisions under the province",
    "自治区直辖县级行政单位": "County-level divisions under the autonomous region",
    "自治区直辖县级行政区划": "County-level divisions under the autonomous region",
    "省直辖行政单位": "Divisions under the province",
}

# Where the English name is not the pinyin, by code.
REGION_EN_OVERRIDES: dict[str, str] = {
    "810000": "Hong Kong Special Administrative Region",
    "820000": "Macao Special Administrative Region",
}

# Generic part of a name -> its romanisation, longest first so 自治县 wins over 县.
SUFFIXES: tuple[tuple[str, str], ...] = (
    ("特别行政区", "Tebie Xingzhengqu"),
    ("自治区", "Zizhiqu"),
    ("自治州", "Zizhizhou"),
    ("自治县", "Zizhixian"),
    ("自治旗", "Zizhiqi"),
    ("行政区", "Xingzhengqu"),
    ("地区", "Diqu"),
    ("林区", "Linqu"),
    ("特区", "Tequ"),
    ("矿区", "Kuangqu"),
    ("新区", "Xinqu"),
    ("省", "Sheng"),
    ("市", "Shi"),
    ("区", "Qu"),
    ("县", "Xian"),
    ("旗", "Qi"),
    ("盟", "Meng"),
)

# Readings pypinyin gets wrong in place names: per character, then whole proper names.
CHAR_READINGS: dict[str, str] = {"长": "chang", "朝": "chao", "都": "du", "勒": "le", "什": "shi"}
NAME_READINGS: dict[str, list[str]] = {
    "长子": ["zhang", "zi"],
    "单县": ["shan", "xian"],
    "洪洞": ["hong", "tong"],
    "荥经": ["ying", "jing"],
    "六合": ["lu", "he"],
}

# Codes the source lists without an end year although they are no longer in use: 随州 became
# the prefecture-level 421300 in 2000, and 神农架林区 has been 429021 since the 1980s.
RETIRED_CODES: frozenset[str] = frozenset({"429001", "422900", "422921"})

_ENTRY = re.compile(r"^(?:\[(\d*)-(\d*)\])?(.+)$")
_LINE = re.compile(r'^(\s*)(\d+) (\w+)="([^"]*)"$')


@dataclass(frozen=True)
class Region:
    """A GB/T 2260 code with its latest name and whether it is still in use."""

    code: str
    name: str
    in_use: bool


def _syllables(text: str) -> list[str]:
    if text in NAME_READINGS:
        return NAME_READINGS[text]
    readings = lazy_pinyin(text, style=Style.NORMAL, v_to_u=True)
    if len(readings) != len(text):  # non-Han characters: keep pypinyin's output as is
        return readings
    return [CHAR_READINGS.get(char, reading) for char, reading in zip(text, readings, strict=True)]


def _word(text: str) -> str:
    """Romanise a proper name as one word, with the apostrophe that keeps Xi'an apart."""
    out = ""
    for syllable in _syllables(text):
        if out and syllable[:1] in ("a", "o", "e"):
            out += "'"
        out += syllable
    return out[:1].upper() + out[1:]


def _split_ethnic(stem: str, ethnic_names: Sequence[str]) -> tuple[str, list[str]]:
    """Peel ethnic group names (土家族苗族) off the end of an autonomous area's name."""
    groups: list[str] = []
    while True:
        # The proper name left over must keep two characters: 内蒙古 is not 内 + 蒙古.
        match = next(
            (e for e in ethnic_names if stem.endswith(e) and len(stem) - len(e) >= 2), None
        )
        if match is None:
            return stem, groups
        groups.insert(0, match)
        stem = stem[: -len(match)]


def romanise(name: str, ethnic_names: Sequence[str]) -> str:
    """Toneless pinyin label, proper name and generic part apart: 朝阳区 -> Chaoyang Qu."""
    if name in GENERIC_EN:
        return GENERIC_EN[name]
    if len(name) <= 2:
        return _word(name)
    for suffix, roman in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            stem = name[: -len(suffix)]
            groups: list[str] = []
            if suffix.startswith("自治"):
                stem, groups = _split_ethnic(stem, ethnic_names)
            return " ".join([_word(stem), *(_word(g) for g in groups), roman])
    return _word(name)


def _entries(value: str) -> list[tuple[str, str, str]]:
    """Split ``[1983-1999]忻州地区,[2000-]忻州市`` into (start, end, name) triples."""
    out = []
    for part in value.split(","):
        match = _ENTRY.match(part.strip())
        if match is None:
            raise ValueError(f"unreadable entry {part!r}")
        start, end, name = match.groups()
        bracketed = part.strip().startswith("[")
        out.append((start or "", end if bracketed else "", name))
    return out


def _region(code: str, value: str) -> Region:
    entries = _entries(value)
    current = [e for e in entries if not e[1]]
    name = (current or entries)[-1][2]
    return Region(code, name, in_use=bool(current) and code not in RETIRED_CODES)


def parse_loc_dat(lines: Iterable[str]) -> list[Region]:
    """Read stdnum's loc.dat: a province line (2 digits) followed by 4-digit sub-codes."""
    regions: dict[str, Region] = {}
    province = ""
    province_name = ""
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"unreadable line {line!r}")
        indent, digits, _key, value = match.groups()
        if not indent:
            province, province_name = digits, value
            continue
        regions[province + digits] = _region(province + digits, value)
        if province + "0000" not in regions and digits != "0000":
            regions[province + "0000"] = _region(province + "0000", province_name)
    return sorted(regions.values(), key=lambda r: r.code)


def _parent(code: str, codes: set[str]) -> str:
    if code.endswith("0000"):
        return ""
    if code.endswith("00"):
        return code[:2] + "0000"
    prefecture = code[:4] + "00"
    return prefecture if prefecture in codes else code[:2] + "0000"


def _ethnic_names(codes_dir: Path) -> list[str]:
    """Group names as they appear in area names: 土家族, and also 蒙古 / 哈萨克 without 族."""
    table = yaml.safe_load((codes_dir / "ethnicity.yaml").read_text(encoding="utf-8"))
    full = [c["zh"] for c in table["codes"] if c["zh"].endswith("族")]
    bare = [name[:-1] for name in full if len(name) > 2]
    return sorted({*full, *bare}, key=len, reverse=True)


def region_rows(codes_dir: Path) -> list[list[str]]:
    """Rows code, zh, en, parent, historical for every current and former GB/T 2260 code."""
    text = (resources.files("stdnum.cn") / "loc.dat").read_text(encoding="utf-8")
    regions = parse_loc_dat(text.splitlines())
    codes = {r.code for r in regions}
    ethnic = _ethnic_names(codes_dir)
    return [
        [
            r.code,
            r.name,
            REGION_EN_OVERRIDES.get(r.code) or romanise(r.name, ethnic),
            _parent(r.code, codes),
            "" if r.in_use else "1",
        ]
        for r in regions
    ]


# -- output --------------------------------------------------------------------------------


def write_table(
    codes_dir: Path,
    table: str,
    meta: dict[str, object],
    header: list[str],
    rows: list[list[str]],
) -> None:
    """Write ``<table>.csv`` and its ``<table>.meta.yaml`` sidecar."""
    with (codes_dir / f"{table}.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    meta_text = yaml.safe_dump(
        {"table": table, **meta}, allow_unicode=True, sort_keys=False, width=100
    )
    (codes_dir / f"{table}.meta.yaml").write_text(meta_text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CODES_DIR, help="forms/codes directory")
    args = parser.parse_args(argv)
    out: Path = args.out
    write_table(
        out,
        "country",
        {
            "standard": "GB/T 2659 (ISO 3166-1 alpha-3)",
            "title": {"zh": "国籍（地区）", "en": "Nationality (region)"},
        },
        ["code", "zh", "en", "parent"],
        country_rows(),
    )
    write_table(
        out,
        "region",
        {
            "standard": "GB/T 2260",
            "title": {"zh": "行政区划", "en": "Administrative division"},
        },
        ["code", "zh", "en", "parent", "historical"],
        region_rows(out),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
