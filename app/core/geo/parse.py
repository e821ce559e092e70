"""Reading coordinates people type or paste: decimal degrees, DMS, 度分秒, with hemispheres
or 经度/纬度 words, in either order."""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from app.core.geo.point import GeoError, LonLat, check_range

_REPLACEMENTS = (
    # Longer words first: 经度/纬度 and 东经/北纬 are prefixes like "E"/"N".
    ("经度", "E"),
    ("纬度", "N"),
    ("东经", "E"),
    ("西经", "W"),
    ("北纬", "N"),
    ("南纬", "S"),
    ("东", "E"),
    ("西", "W"),
    ("北", "N"),
    ("南", "S"),
    ("度", "°"),
    ("º", "°"),  # masculine ordinal, often typed for a degree sign (NFKC would make it "o")
    ("˚", "°"),
    ("秒", '"'),
    ("″", '"'),
    ("”", '"'),
    ("“", '"'),
    ("分", "'"),
    ("′", "'"),
    ("’", "'"),
    ("‘", "'"),
    ("´", "'"),
    ("''", '"'),
    ("、", ","),
    ("：", " "),  # "经度：116.4"
    (":", " "),
)

_TOKEN = re.compile(
    r"(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+))|(?P<unit>[°'\"])|(?P<hemi>[NSEW])"
    r"|(?P<sep>[,;/])|(?P<ws>\s+)"
)
_UNIT_POS = {"°": 0, "'": 1, '"': 2}


class _Tok(NamedTuple):
    kind: str  # num | unit | hemi | sep
    text: str


def _normalise(text: str) -> str:
    for old, new in _REPLACEMENTS:
        text = text.replace(old, new)
    # NFKC folds full-width digits, letters, comma and space to ASCII.
    return unicodedata.normalize("NFKC", text).upper().strip()


def _tokenise(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise GeoError("coordinates.invalid")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, m.group()))
        pos = m.end()
    return tokens


def _split_groups(tokens: list[_Tok]) -> list[list[_Tok]]:
    """Split the tokens into the two coordinates (see ``parse_coordinates`` for the rules)."""
    seps = [i for i, t in enumerate(tokens) if t.kind == "sep"]
    if seps:
        if len(seps) != 1:
            raise GeoError("coordinates.invalid")
        return [tokens[: seps[0]], tokens[seps[0] + 1 :]]
    hemis = [i for i, t in enumerate(tokens) if t.kind == "hemi"]
    if hemis:
        if len(hemis) != 2:
            raise GeoError("coordinates.invalid")
        cut = hemis[1] if hemis[0] == 0 else hemis[0] + 1  # prefix vs suffix letters
        return [tokens[:cut], tokens[cut:]]
    nums = [i for i, t in enumerate(tokens) if t.kind == "num"]
    degs = [i for i in nums if i + 1 < len(tokens) and tokens[i + 1].text == "°"]
    if degs:
        if len(degs) != 2 or degs[0] != 0:
            raise GeoError("coordinates.invalid")
        return [tokens[: degs[1]], tokens[degs[1] :]]
    if any(t.kind == "unit" for t in tokens) or len(nums) not in (2, 4, 6):
        raise GeoError("coordinates.invalid")
    half = nums[len(nums) // 2]
    return [tokens[:half], tokens[half:]]


def _parse_angle(group: list[_Tok]) -> tuple[float, str | None]:
    """One coordinate: (signed degrees, hemisphere letter or None)."""
    hemi = None
    if group and group[0].kind == "hemi":
        hemi, group = group[0].text, group[1:]
    elif group and group[-1].kind == "hemi":
        hemi, group = group[-1].text, group[:-1]
    parts: list[tuple[str, int]] = []  # (number text, 0 deg / 1 min / 2 sec)
    i = 0
    while i < len(group):
        tok = group[i]
        if tok.kind != "num":
            raise GeoError("coordinates.invalid")
        pos = parts[-1][1] + 1 if parts else 0
        if i + 1 < len(group) and group[i + 1].kind == "unit":
            pos = _UNIT_POS[group[i + 1].text]
            i += 1
        if pos != len(parts):  # degrees, then minutes, then seconds, none skipped
            raise GeoError("coordinates.invalid")
        parts.append((tok.text, pos))
        i += 1
    if not parts:
        raise GeoError("coordinates.invalid")
    return _angle_value([text for text, _ in parts], hemi), hemi


def _angle_value(texts: list[str], hemi: str | None) -> float:
    negative = texts[0].startswith("-")
    if any(t[0] in "+-" for t in texts[1:]) or (negative and hemi):
        raise GeoError("coordinates.invalid")
    # Only the last part may carry decimals ("116.5 30" is not an angle).
    if any("." in t for t in texts[:-1]):
        raise GeoError("coordinates.invalid")
    values = [abs(float(t)) for t in texts]
    if any(v >= 60 for v in values[1:]):
        raise GeoError("coordinates.invalid")
    degrees = values[0] + sum(v / 60**k for k, v in enumerate(values[1:], start=1))
    if negative or hemi in ("S", "W"):
        degrees = -degrees
    return degrees


def _axis(hemi: str | None) -> str | None:
    return None if hemi is None else ("lon" if hemi in ("E", "W") else "lat")


def parse_coordinates(text: str) -> LonLat:
    """Read a typed or pasted point as WGS84 (or whatever datum the caller says it is).

    Accepts decimal degrees or degrees-minutes-seconds, with ASCII, full-width or Chinese
    marks (° ′ ″, 度分秒, 东经/北纬), separated by a comma, semicolon, slash or spaces.
    Which number is which:

    * hemisphere letters (N/S/E/W, prefix or suffix, or 东经/北纬) decide, in either order;
    * otherwise the order is "lon, lat" (高德 and 百度 copy it that way), except that when
      the first value is < 60 and the second > 60 they are swapped: in China a value above 60
      can only be a longitude, so "39.9, 116.4" (腾讯's "lat, lng" order) is read correctly.

    Raises ``GeoError("coordinates.invalid")`` for text that is not a point and
    ``GeoError("coordinates.range")`` for a point outside China's box.
    """
    tokens = _tokenise(_normalise(text))
    if not tokens:
        raise GeoError("coordinates.invalid")
    (a, ha), (b, hb) = (_parse_angle(g) for g in _split_groups(tokens))
    if ha or hb:
        axis_a, axis_b = _axis(ha), _axis(hb)
        if axis_a == axis_b:
            raise GeoError("coordinates.invalid")  # two longitudes or two latitudes
        a_is_lon = axis_a == "lon" or axis_b == "lat"
        lon, lat = (a, b) if a_is_lon else (b, a)
    elif abs(a) < 60 < abs(b):
        lon, lat = b, a
    else:
        lon, lat = a, b
    return check_range(LonLat(lon, lat))
