"""A point in degrees, China's box around it, its stored form and the bilingual messages of
bad coordinates (``GeoError`` carries only a code: values stay out of logs)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
