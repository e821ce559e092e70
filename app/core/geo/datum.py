"""GCJ-02 (高德/腾讯) and BD-09 (百度) to and from WGS84: public-domain formulas, as in
prcoords / eviltransform; the inverses iterate to ~1e-9° instead of the usual one-step guess
(which is off by metres)."""

from __future__ import annotations

import math
from typing import Any, Literal

from app.core.geo.point import LonLat

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
