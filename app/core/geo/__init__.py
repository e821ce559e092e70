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

Modules: ``point`` (LonLat, GeoError, messages, storage form), ``parse``, ``datum`` (GCJ-02,
BD-09), ``gk3`` (Gauss-Krüger) and ``boundary`` (point in a grid).

No Qt, no network: pyproj's network access stays off (its default).
"""

from __future__ import annotations

from app.core.geo.boundary import EDGE_TOLERANCE, Where, check_in_grid, point_in_polygon
from app.core.geo.datum import (
    Datum,
    bd_to_gcj,
    bd_to_wgs,
    gcj_to_bd,
    gcj_to_wgs,
    out_of_china,
    to_wgs,
    wgs_to_bd,
    wgs_to_gcj,
)
from app.core.geo.gk3 import GK3, GK3_ZONES, from_gk3, gk3_epsg, gk3_zone, gk3_zone_of_epsg, to_gk3
from app.core.geo.parse import parse_coordinates
from app.core.geo.point import (
    LAT_MAX,
    LAT_MIN,
    LON_MAX,
    LON_MIN,
    OUTSIDE_GRID,
    GeoError,
    LonLat,
    check_range,
    from_storage,
    in_china_box,
    message,
    to_storage,
)

__all__ = [
    "EDGE_TOLERANCE",
    "GK3_ZONES",
    "LAT_MAX",
    "LAT_MIN",
    "LON_MAX",
    "LON_MIN",
    "Datum",
    "Where",
    "in_china_box",
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
