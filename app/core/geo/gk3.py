"""CGCS2000 3-degree Gauss-Krüger via pyproj (WGS84 treated as CGCS2000: they differ by
centimetres, and PROJ treats EPSG:4326 -> 4490 as a no-op "ballpark" transform)."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

from pyproj import Transformer

from app.core.geo.point import LAT_MAX, LAT_MIN, LON_MAX, LON_MIN, GeoError, LonLat, check_range

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
