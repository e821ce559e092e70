"""Coordinates: typed input, China's map datums, Gauss-Krüger grid and grid boundaries.

Records store WGS84 lon/lat (what GPS gives). Everything else here exists to get a point into
that form or to check it:

* ``parse_coordinates`` reads what people type or paste (decimal degrees, DMS, 度分秒).
* 高德/腾讯 maps show GCJ-02 and 百度 shows BD-09. Neither is a PROJ CRS (PROJ declined to add
  them), so the public-domain formulas are written out here rather than adding ``prcoords``
  for fifty lines; the GCJ-02 inverse iterates to ~1e-9° instead of the usual one-step guess,
  which is off by metres.
* CGCS2000 3-degree Gauss-Krüger via pyproj. GPS gives WGS84 and we treat it as CGCS2000:
  the two datums differ by centimetres, far below handheld GPS accuracy, and PROJ itself
  treats EPSG:4326 -> 4490 as a no-op "ballpark" transform.
* Point-in-polygon for the grid boundary check (a warning, never a block).

No Qt, no network: pyproj's network access stays off (its default).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from pyproj import Transformer

from app.core.messages import pick

# China's bounding box for typed/stored coordinates (the form's coordinates check).
LON_MIN, LON_MAX = 73.0, 136.0
LAT_MIN, LAT_MAX = 3.0, 54.0

OUTSIDE_GRID = "coordinates.outside_grid"

_MESSAGES: dict[str, tuple[str, str]] = {
    "coordinates.invalid": (
        "无法识别的坐标。请输入“经度, 纬度”的十进制度数（如 116.397128, 39.916527）"
        "或度分秒（如 116°23′49.66″E 39°54′59.5″N）。",
        "Coordinates not understood. Type decimal degrees as 'longitude, latitude' "
        "(e.g. 116.397128, 39.916527) or degrees-minutes-seconds "
        "(e.g. 116°23'49.66\"E 39°54'59.5\"N).",
    ),
    "coordinates.range": (
        "坐标不在中国范围内（经度 73–136，纬度 3–54）。请检查经纬度是否填反或输错。",
        "The point is outside China (longitude 73-136, latitude 3-54). "
        "Check that longitude and latitude are not swapped or mistyped.",
    ),
    OUTSIDE_GRID: (
        "该位置不在本记录所属网格的范围内，请核对位置或所属网格。",
        "This point lies outside the record's grid; check the position or the grid.",
    ),
}


class GeoError(ValueError):
    """Bad coordinate input. ``str()`` is only the code: the values stay out of logs."""

    def __init__(self, code: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.params: dict[str, Any] = dict(params or {})

    def message(self, lang: str = "zh") -> str:
        return message(self.code, lang)


def message(code: str, lang: str = "zh") -> str:
    """The zh (default) or en text for a geo code."""
    return pick(lang, *_MESSAGES[code])


@dataclass(frozen=True)
class LonLat:
    """A point in degrees; WGS84 unless a function name says otherwise."""

    lon: float
    lat: float


def in_china_box(p: LonLat) -> bool:
    return LON_MIN <= p.lon <= LON_MAX and LAT_MIN <= p.lat <= LAT_MAX


def check_range(p: LonLat) -> LonLat:
    """Return ``p`` or raise ``coordinates.range`` when it is outside China's box."""
    if not (math.isfinite(p.lon) and math.isfinite(p.lat)):
        raise GeoError("coordinates.invalid")
    if not in_china_box(p):
        raise GeoError("coordinates.range", {"lon": p.lon, "lat": p.lat})
    return p


# ---------------------------------------------------------------------------------------------
# Parsing typed coordinates

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


# ---------------------------------------------------------------------------------------------
# GCJ-02 and BD-09 (public-domain formulas, as in prcoords / eviltransform)

_GCJ_A = 6378245.0  # Krasovsky 1940 semi-major axis
_GCJ_EE = 0.00669342162296594323  # its eccentricity squared
_BD_DLON, _BD_DLAT = 0.0065, 0.0060
_BD_K = math.pi * 3000.0 / 180.0
_INVERSE_EPS = 1e-10  # degrees, ~0.01 mm
_INVERSE_MAX_STEPS = 30


def out_of_china(p: LonLat) -> bool:
    """The usual GCJ-02 rule: outside this box GCJ-02 equals WGS84."""
    return not (72.004 <= p.lon <= 137.8347 and 0.8293 <= p.lat <= 55.8271)


def _gcj_offset(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 minus WGS84 in degrees at a WGS84 point (no china check)."""
    x, y = lon - 105.0, lat - 35.0
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    wave_x = 20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)
    d_lat += (
        (
            wave_x
            + 20.0 * math.sin(y * math.pi)
            + 40.0 * math.sin(y / 3.0 * math.pi)
            + 160.0 * math.sin(y / 12.0 * math.pi)
            + 320.0 * math.sin(y * math.pi / 30.0)
        )
        * 2.0
        / 3.0
    )
    d_lon += (
        (
            wave_x
            + 20.0 * math.sin(x * math.pi)
            + 40.0 * math.sin(x / 3.0 * math.pi)
            + 150.0 * math.sin(x / 12.0 * math.pi)
            + 300.0 * math.sin(x / 30.0 * math.pi)
        )
        * 2.0
        / 3.0
    )
    rad_lat = math.radians(lat)
    magic = 1.0 - _GCJ_EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = d_lat * 180.0 / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = d_lon * 180.0 / (_GCJ_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return d_lon, d_lat


def wgs_to_gcj(p: LonLat) -> LonLat:
    if out_of_china(p):
        return p
    d_lon, d_lat = _gcj_offset(p.lon, p.lat)
    return LonLat(p.lon + d_lon, p.lat + d_lat)


def _invert(forward: Any, target: LonLat, guess: LonLat) -> LonLat:
    """Solve forward(x) == target by fixed-point steps (the forward map is nearly a shift)."""
    x = guess
    for _ in range(_INVERSE_MAX_STEPS):
        y = forward(x)
        d_lon, d_lat = y.lon - target.lon, y.lat - target.lat
        x = LonLat(x.lon - d_lon, x.lat - d_lat)
        if abs(d_lon) < _INVERSE_EPS and abs(d_lat) < _INVERSE_EPS:
            break
    return x


def _wgs_to_gcj_anywhere(p: LonLat) -> LonLat:
    d_lon, d_lat = _gcj_offset(p.lon, p.lat)
    return LonLat(p.lon + d_lon, p.lat + d_lat)


def gcj_to_wgs(p: LonLat) -> LonLat:
    """Exact inverse of ``wgs_to_gcj`` (iterated to ~1e-10°), not the one-step guess."""
    if out_of_china(p):
        return p
    d_lon, d_lat = _gcj_offset(p.lon, p.lat)
    return _invert(_wgs_to_gcj_anywhere, p, LonLat(p.lon - d_lon, p.lat - d_lat))


def gcj_to_bd(p: LonLat) -> LonLat:
    x, y = p.lon, p.lat
    r = math.hypot(x, y) + 0.00002 * math.sin(y * _BD_K)
    theta = math.atan2(y, x) + 0.000003 * math.cos(x * _BD_K)
    return LonLat(r * math.cos(theta) + _BD_DLON, r * math.sin(theta) + _BD_DLAT)


def _bd_to_gcj_rough(p: LonLat) -> LonLat:
    x, y = p.lon - _BD_DLON, p.lat - _BD_DLAT
    r = math.hypot(x, y) - 0.00002 * math.sin(y * _BD_K)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _BD_K)
    return LonLat(r * math.cos(theta), r * math.sin(theta))


def bd_to_gcj(p: LonLat) -> LonLat:
    """Inverse of ``gcj_to_bd``: Baidu's own one-step inverse, then refined."""
    return _invert(gcj_to_bd, p, _bd_to_gcj_rough(p))


def wgs_to_bd(p: LonLat) -> LonLat:
    return gcj_to_bd(wgs_to_gcj(p))


def bd_to_wgs(p: LonLat) -> LonLat:
    return gcj_to_wgs(bd_to_gcj(p))


Datum = Literal["wgs84", "gcj02", "bd09"]
_TO_WGS = {"wgs84": lambda p: p, "gcj02": gcj_to_wgs, "bd09": bd_to_wgs}


def to_wgs(p: LonLat, datum: Datum) -> LonLat:
    """A point typed or pasted in ``datum`` (GPS / 高德·腾讯 / 百度) as WGS84."""
    try:
        convert = _TO_WGS[datum]
    except KeyError:
        raise ValueError(f"unknown datum {datum!r}") from None
    return convert(p)


# ---------------------------------------------------------------------------------------------
# CGCS2000 3-degree Gauss-Krüger

GK3_ZONES = range(25, 46)  # central meridians 75E .. 135E
_EPSG_WITH_PREFIX = 4513  # zone 25; EPSG:4513-4533 put the zone number in the easting
_EPSG_NO_PREFIX = 4534  # zone 25; EPSG:4534-4554 do not
_CGCS2000 = 4490


class GK3(NamedTuple):
    zone: int
    epsg: int
    easting: float
    northing: float


def gk3_zone(lon: float) -> int:
    """Zone n = floor((lon + 1.5) / 3), central meridian 3n.

    Longitudes 73.0-73.5 (zone 24 by the formula, west of China's westernmost zone) are put in
    zone 25: half a degree past a zone edge adds no error that matters for field work.
    """
    if not (LON_MIN <= lon <= LON_MAX):
        raise GeoError("coordinates.range", {"lon": lon})
    zone = math.floor((lon + 1.5) / 3.0)
    return min(max(zone, GK3_ZONES.start), GK3_ZONES.stop - 1)


def gk3_epsg(lon: float, with_zone_prefix: bool = True) -> int:
    """The EPSG code of the 3-degree zone for ``lon`` (4513-4533 or 4534-4554)."""
    base = _EPSG_WITH_PREFIX if with_zone_prefix else _EPSG_NO_PREFIX
    return base + gk3_zone(lon) - GK3_ZONES.start


def gk3_zone_of_epsg(epsg: int) -> tuple[int, bool]:
    """(zone, with_zone_prefix) for a 3-degree CGCS2000 EPSG code; ValueError otherwise."""
    for base, prefixed in ((_EPSG_WITH_PREFIX, True), (_EPSG_NO_PREFIX, False)):
        if base <= epsg < base + len(GK3_ZONES):
            return GK3_ZONES.start + epsg - base, prefixed
    raise ValueError(f"EPSG:{epsg} is not a CGCS2000 3-degree Gauss-Kruger zone")


@lru_cache(maxsize=64)
def _transformer(src: int, dst: int) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def to_gk3(p: LonLat, with_zone_prefix: bool = True) -> GK3:
    """Project a WGS84 point (taken as CGCS2000, see the module note) into its own zone."""
    check_range(p)
    zone = gk3_zone(p.lon)
    epsg = gk3_epsg(p.lon, with_zone_prefix)
    easting, northing = _transformer(_CGCS2000, epsg).transform(p.lon, p.lat)
    return GK3(zone, epsg, easting, northing)


def from_gk3(easting: float, northing: float, epsg: int) -> LonLat:
    """Back to lon/lat; ``coordinates.range`` when the result is not in China (for example an
    easting typed without its zone number for a zone-prefixed EPSG code)."""
    gk3_zone_of_epsg(epsg)
    lon, lat = _transformer(epsg, _CGCS2000).transform(easting, northing)
    margin = 0.01  # projection round-off at the box's corners is not an input error
    near = (
        LON_MIN - margin <= lon <= LON_MAX + margin and LAT_MIN - margin <= lat <= LAT_MAX + margin
    )
    if not near:  # also catches inf/nan from an easting far outside its zone
        raise GeoError("coordinates.range", {"easting": easting, "northing": northing})
    return LonLat(lon, lat)


# ---------------------------------------------------------------------------------------------
# Grid boundaries

EDGE_TOLERANCE = 1e-9  # degrees (~0.1 mm): "on the boundary" within float noise
Where = Literal["inside", "outside", "edge"]


def _ring(polygon: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    ring = [(float(x), float(y)) for x, y in polygon]
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring.pop()
    if len(set(ring)) < 3:
        raise ValueError("a polygon needs at least three distinct vertices")
    return ring


def _on_segment(px: float, py: float, a: tuple[float, float], b: tuple[float, float]) -> bool:
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    length_sq = dx * dx + dy * dy
    t = 0.0 if length_sq == 0 else ((px - ax) * dx + (py - ay) * dy) / length_sq
    t = min(max(t, 0.0), 1.0)
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy)) <= EDGE_TOLERANCE


def point_in_polygon(p: LonLat, polygon: Sequence[tuple[float, float]]) -> Where:
    """Where ``p`` lies against a ring of (lon, lat) vertices, closed or not.

    Edges and vertices (within ``EDGE_TOLERANCE``) count as "edge", decided before the ray
    cast so that points on the boundary never flip between inside and outside.
    """
    ring = _ring(polygon)
    edges = list(zip(ring, ring[1:] + ring[:1], strict=True))
    if any(_on_segment(p.lon, p.lat, a, b) for a, b in edges):
        return "edge"
    inside = False
    for (ax, ay), (bx, by) in edges:
        if (ay > p.lat) != (by > p.lat):
            x_cross = ax + (p.lat - ay) * (bx - ax) / (by - ay)
            if p.lon < x_cross:
                inside = not inside
    return "inside" if inside else "outside"


def check_in_grid(p: LonLat, polygon: Sequence[tuple[float, float]]) -> str | None:
    """None when the point is inside the grid or on its boundary, else a warning code."""
    return None if point_in_polygon(p, polygon) != "outside" else OUTSIDE_GRID


# ---------------------------------------------------------------------------------------------
# Storage form of a coordinates field


def to_storage(p: LonLat) -> dict[str, float]:
    """The field's JSON value; 7 decimals is about 1 cm."""
    return {"lon": round(p.lon, 7), "lat": round(p.lat, 7)}


def from_storage(d: Mapping[str, Any]) -> LonLat:
    """Read a stored value; ``coordinates.invalid`` when it is not a pair of numbers."""
    try:
        lon, lat = d["lon"], d["lat"]
    except (KeyError, TypeError):
        raise GeoError("coordinates.invalid") from None
    values = (lon, lat)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise GeoError("coordinates.invalid")
    if not all(math.isfinite(v) for v in values):
        raise GeoError("coordinates.invalid")
    return LonLat(float(lon), float(lat))


__all__ = [
    "GK3",
    "LonLat",
    "GeoError",
    "OUTSIDE_GRID",
    "bd_to_gcj",
    "bd_to_wgs",
    "check_in_grid",
    "check_range",
    "from_gk3",
    "from_storage",
    "gcj_to_bd",
    "gcj_to_wgs",
    "gk3_epsg",
    "gk3_zone",
    "gk3_zone_of_epsg",
    "message",
    "out_of_china",
    "parse_coordinates",
    "point_in_polygon",
    "to_gk3",
    "to_storage",
    "to_wgs",
    "wgs_to_bd",
    "wgs_to_gcj",
]
