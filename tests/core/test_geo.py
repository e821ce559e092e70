"""Coordinates: parsing, GCJ-02/BD-09, Gauss-Krüger against pyproj, point in grid."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pyproj import CRS, Transformer

from app.core import geo
from app.core.geo import (
    GeoError,
    LonLat,
    bd_to_gcj,
    bd_to_wgs,
    check_in_grid,
    from_gk3,
    from_storage,
    gcj_to_bd,
    gcj_to_wgs,
    gk3_epsg,
    gk3_zone,
    parse_coordinates,
    point_in_polygon,
    to_gk3,
    to_storage,
    to_wgs,
    wgs_to_bd,
    wgs_to_gcj,
)

lons = st.floats(min_value=73.0, max_value=136.0)
lats = st.floats(min_value=3.0, max_value=54.0)
points = st.builds(LonLat, lons, lats)


def metres(a: LonLat, b: LonLat) -> float:
    """Small distances on the sphere (equirectangular is exact enough below a kilometre)."""
    k = math.pi / 180.0
    dx = (a.lon - b.lon) * k * math.cos(a.lat * k) * 6_371_000.0
    dy = (a.lat - b.lat) * k * 6_371_000.0
    return math.hypot(dx, dy)


# --- GCJ-02 / BD-09 -------------------------------------------------------------------------

# WGS84 -> GCJ-02 reference values published with eviltransform and coordtransform.
GCJ_REFERENCE = [
    (LonLat(121.5272106, 31.1774276), LonLat(121.531541859215, 31.17530398364597)),  # Shanghai
    (LonLat(113.912316, 22.543847), LonLat(113.9171764808363, 22.540796131694766)),  # Shenzhen
    (LonLat(116.377817, 39.911954), LonLat(116.38404722455657, 39.91334545536069)),  # Beijing
    (LonLat(116.404, 39.915), LonLat(116.41024449916938, 39.91640428150164)),
]


@pytest.mark.parametrize(("wgs", "gcj"), GCJ_REFERENCE)
def test_wgs_to_gcj_reference_points(wgs: LonLat, gcj: LonLat) -> None:
    out = wgs_to_gcj(wgs)
    assert out.lon == pytest.approx(gcj.lon, abs=1e-9)
    assert out.lat == pytest.approx(gcj.lat, abs=1e-9)


def test_tiananmen() -> None:
    gcj = wgs_to_gcj(LonLat(116.391278, 39.906217))
    assert gcj.lon == pytest.approx(116.397524, abs=1e-5)
    assert gcj.lat == pytest.approx(39.907623, abs=1e-5)
    # The offset is a few hundred metres, so a no-op conversion would fail the check above.
    assert metres(gcj, LonLat(116.391278, 39.906217)) > 100


@given(points)
def test_gcj_round_trip_well_under_a_metre(p: LonLat) -> None:
    back = gcj_to_wgs(wgs_to_gcj(p))
    assert metres(back, p) < 0.001


@given(points)
def test_gcj_inverse_is_exact_in_the_other_direction(g: LonLat) -> None:
    assert metres(wgs_to_gcj(gcj_to_wgs(g)), g) < 0.001


def test_gcj_is_wgs_outside_china() -> None:
    paris = LonLat(2.3522, 48.8566)
    assert wgs_to_gcj(paris) == paris
    assert gcj_to_wgs(paris) == paris


def test_gcj_to_bd_reference_point() -> None:
    bd = gcj_to_bd(LonLat(116.404, 39.915))
    assert bd.lon == pytest.approx(116.41036949371029, abs=1e-9)
    assert bd.lat == pytest.approx(39.92133699351021, abs=1e-9)


@given(points)
def test_bd_round_trips(p: LonLat) -> None:
    assert metres(bd_to_gcj(gcj_to_bd(p)), p) < 0.001
    assert metres(bd_to_wgs(wgs_to_bd(p)), p) < 0.001
    assert metres(wgs_to_bd(p), p) > 1  # BD-09 really is shifted


def test_to_wgs_by_datum() -> None:
    p = LonLat(116.404, 39.915)
    assert to_wgs(p, "wgs84") == p
    assert to_wgs(p, "gcj02") == gcj_to_wgs(p)
    assert to_wgs(p, "bd09") == bd_to_wgs(p)
    with pytest.raises(ValueError):
        to_wgs(p, "mars")  # type: ignore[arg-type]


# --- Gauss-Krüger ----------------------------------------------------------------------------


def test_beijing_zone_and_epsg() -> None:
    assert gk3_zone(116.4) == 39
    assert gk3_epsg(116.4) == 4527
    # Zone 39 without the zone prefix is EPSG:4548 ("CM 117E"); 4547 is CM 114E (zone 38).
    assert gk3_epsg(116.4, with_zone_prefix=False) == 4548
    assert "117E" in CRS.from_epsg(4548).name


def _tmerc_params(epsg: int) -> tuple[float, float]:
    params = {p.name: p.value for p in CRS.from_epsg(epsg).coordinate_operation.params}
    return params["Longitude of natural origin"], params["False easting"]


@pytest.mark.parametrize("zone", range(25, 46))
def test_epsg_codes_match_pyproj_definitions(zone: int) -> None:
    lon = 3.0 * zone
    assert gk3_zone(lon) == zone
    assert _tmerc_params(gk3_epsg(lon)) == (3.0 * zone, zone * 1_000_000 + 500_000)
    assert _tmerc_params(gk3_epsg(lon, with_zone_prefix=False)) == (3.0 * zone, 500_000)


@given(lons)
def test_zone_contains_the_longitude(lon: float) -> None:
    zone = gk3_zone(lon)
    assert 25 <= zone <= 45
    limit = 2.0 if lon < 73.5 else 1.5  # 73.0-73.5 is folded into zone 25
    assert abs(lon - 3 * zone) <= limit


@given(points, st.booleans())
def test_to_gk3_matches_pyproj(p: LonLat, prefixed: bool) -> None:
    got = to_gk3(p, with_zone_prefix=prefixed)
    direct = Transformer.from_crs(CRS.from_epsg(4490), CRS.from_epsg(got.epsg), always_xy=True)
    easting, northing = direct.transform(p.lon, p.lat)
    assert got.zone == gk3_zone(p.lon)
    assert got.epsg == gk3_epsg(p.lon, prefixed)
    assert got.easting == pytest.approx(easting, abs=1e-6)
    assert got.northing == pytest.approx(northing, abs=1e-6)
    if prefixed:
        assert int(got.easting // 1_000_000) == got.zone


def test_to_gk3_at_beijing_matches_epsg_4527() -> None:
    p = LonLat(116.391278, 39.906217)
    direct = Transformer.from_crs(CRS.from_epsg(4490), CRS.from_epsg(4527), always_xy=True)
    got = to_gk3(p)
    assert got.epsg == 4527
    assert (got.easting, got.northing) == pytest.approx(direct.transform(p.lon, p.lat), abs=1e-6)
    # WGS84 taken as CGCS2000: PROJ agrees to well under a centimetre.
    via_wgs = Transformer.from_crs(4326, 4527, always_xy=True).transform(p.lon, p.lat)
    assert (got.easting, got.northing) == pytest.approx(via_wgs, abs=0.01)


@given(points, st.booleans())
def test_gk3_round_trip(p: LonLat, prefixed: bool) -> None:
    g = to_gk3(p, with_zone_prefix=prefixed)
    back = from_gk3(g.easting, g.northing, g.epsg)
    assert metres(back, p) < 0.001


def test_easting_without_zone_number_in_a_prefixed_zone_is_refused() -> None:
    g = to_gk3(LonLat(116.4, 39.9), with_zone_prefix=False)
    with pytest.raises(GeoError) as err:
        from_gk3(g.easting, g.northing, 4527)
    assert err.value.code == "coordinates.range"


def test_from_gk3_rejects_other_crs() -> None:
    with pytest.raises(ValueError):
        from_gk3(500_000, 4_400_000, 32650)  # UTM 50N is not a CGCS2000 3-degree zone


def test_zone_outside_china_is_a_range_error() -> None:
    with pytest.raises(GeoError):
        gk3_zone(2.35)
    with pytest.raises(GeoError):
        to_gk3(LonLat(2.35, 48.85))


# --- point in polygon ------------------------------------------------------------------------

SQUARE = [(116.0, 39.0), (117.0, 39.0), (117.0, 40.0), (116.0, 40.0)]
# A "U": the notch between x 116.3..116.7 above y 39.5 is outside.
U_SHAPE = [
    (116.0, 39.0),
    (117.0, 39.0),
    (117.0, 40.0),
    (116.7, 40.0),
    (116.7, 39.5),
    (116.3, 39.5),
    (116.3, 40.0),
    (116.0, 40.0),
]


@pytest.mark.parametrize(
    ("point", "polygon", "expected"),
    [
        (LonLat(116.5, 39.5), SQUARE, "inside"),
        (LonLat(117.5, 39.5), SQUARE, "outside"),
        (LonLat(116.5, 41.0), SQUARE, "outside"),
        (LonLat(116.5, 39.0), SQUARE, "edge"),
        (LonLat(117.0, 39.25), SQUARE, "edge"),
        (LonLat(116.0, 40.0), SQUARE, "vertex"),
        (LonLat(118.0, 39.0), SQUARE, "outside"),  # on the bottom edge's extension
        (LonLat(116.5, 39.8), U_SHAPE, "outside"),  # in the notch
        (LonLat(116.1, 39.8), U_SHAPE, "inside"),  # in the left arm
        (LonLat(115.5, 39.5), U_SHAPE, "outside"),  # ray passes through two vertices
        (LonLat(116.5, 39.5), U_SHAPE, "edge"),
        (LonLat(116.7, 39.5), U_SHAPE, "vertex"),
    ],
)
def test_point_in_polygon_cases(point: LonLat, polygon, expected: str) -> None:
    expected = "edge" if expected == "vertex" else expected
    assert point_in_polygon(point, polygon) == expected
    assert point_in_polygon(point, [*polygon, polygon[0]]) == expected  # closed ring
    assert point_in_polygon(point, polygon[::-1]) == expected  # other winding


def test_edge_tolerance() -> None:
    assert point_in_polygon(LonLat(116.5, 39.0 + 1e-10), SQUARE) == "edge"
    assert point_in_polygon(LonLat(116.5, 39.0 + 1e-7), SQUARE) == "inside"
    assert point_in_polygon(LonLat(116.5, 39.0 - 1e-7), SQUARE) == "outside"


@given(
    st.floats(115.0, 118.0),
    st.floats(38.0, 41.0),
    st.floats(115.5, 116.5),
    st.floats(38.5, 39.5),
    st.floats(0.01, 1.5),
    st.floats(0.01, 1.5),
)
def test_rectangles_agree_with_bounds(x, y, x0, y0, w, h) -> None:
    x1, y1 = x0 + w, y0 + h
    rect = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    margin = 1e-8
    near_edge = (min(abs(x - x0), abs(x - x1)) < margin and y0 - margin <= y <= y1 + margin) or (
        min(abs(y - y0), abs(y - y1)) < margin and x0 - margin <= x <= x1 + margin
    )
    assume(not near_edge)
    inside = x0 < x < x1 and y0 < y < y1
    assert point_in_polygon(LonLat(x, y), rect) == ("inside" if inside else "outside")


def test_check_in_grid() -> None:
    assert check_in_grid(LonLat(116.5, 39.5), SQUARE) is None
    assert check_in_grid(LonLat(116.0, 39.5), SQUARE) is None  # on the boundary: no warning
    assert check_in_grid(LonLat(118.0, 39.5), SQUARE) == "coordinates.outside_grid"


def test_degenerate_polygon_is_refused() -> None:
    with pytest.raises(ValueError):
        point_in_polygon(LonLat(116.5, 39.5), [(116.0, 39.0), (117.0, 39.0), (116.0, 39.0)])


# --- storage ---------------------------------------------------------------------------------


@given(points)
def test_storage_round_trip(p: LonLat) -> None:
    stored = to_storage(p)
    assert set(stored) == {"lon", "lat"}
    assert stored["lon"] == round(stored["lon"], 7)
    back = from_storage(stored)
    assert abs(back.lon - p.lon) <= 5e-8 and abs(back.lat - p.lat) <= 5e-8
    assert to_storage(back) == stored


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"lon": 116.4},
        {"lon": "116.4", "lat": 39.9},
        {"lon": True, "lat": 39.9},
        {"lon": float("nan"), "lat": 39.9},
        None,
        [116.4, 39.9],
    ],
)
def test_from_storage_rejects_bad_values(value) -> None:
    with pytest.raises(GeoError) as err:
        from_storage(value)  # type: ignore[arg-type]
    assert err.value.code == "coordinates.invalid"


# --- parsing ---------------------------------------------------------------------------------

TIAN_LON = 116 + 23 / 60 + 49.66 / 3600
TIAN_LAT = 39 + 54 / 60 + 59.5 / 3600


@pytest.mark.parametrize(
    ("text", "lon", "lat"),
    [
        ("116.397128, 39.916527", 116.397128, 39.916527),
        ("116.397128,39.916527", 116.397128, 39.916527),
        ("116.397128 39.916527", 116.397128, 39.916527),
        ("39.916527, 116.397128", 116.397128, 39.916527),  # 腾讯 order: swapped
        ("39.916527N 116.397128E", 116.397128, 39.916527),
        ("116.397128E 39.916527N", 116.397128, 39.916527),
        ("N39.916527, E116.397128", 116.397128, 39.916527),
        ("39.916527 n 116.397128 e", 116.397128, 39.916527),
        ("１１６．３９７１２８，３９．９１６５２７", 116.397128, 39.916527),
        ("经度：116.397128  纬度：39.916527", 116.397128, 39.916527),
        ("116°23'49.66\"E 39°54'59.5\"N", TIAN_LON, TIAN_LAT),
        ("39°54'59.5\"N, 116°23'49.66\"E", TIAN_LON, TIAN_LAT),
        ("116°23'49.66\" 39°54'59.5\"", TIAN_LON, TIAN_LAT),
        ("116 23 49.66 E 39 54 59.5 N", TIAN_LON, TIAN_LAT),
        ("116 23 49.66 39 54 59.5", TIAN_LON, TIAN_LAT),
        ("116°23′49.66″E 39°54′59.5″N", TIAN_LON, TIAN_LAT),
        ("116°23’49.66”E，39°54’59.5”N", TIAN_LON, TIAN_LAT),
        ("116°23'49.66'' E 39°54'59.5'' N", TIAN_LON, TIAN_LAT),
        ("东经116度23分49.66秒，北纬39度54分59.5秒", TIAN_LON, TIAN_LAT),
        ("北纬39度54分59.5秒 东经116度23分49.66秒", TIAN_LON, TIAN_LAT),
        ("116°23.8277'E 39°54.99167'N", 116 + 23.8277 / 60, 39 + 54.99167 / 60),
        ("116 23.8277, 39 54.99167", 116 + 23.8277 / 60, 39 + 54.99167 / 60),
    ],
)
def test_parse_variants(text: str, lon: float, lat: float) -> None:
    p = parse_coordinates(text)
    assert p.lon == pytest.approx(lon, abs=1e-9)
    assert p.lat == pytest.approx(lat, abs=1e-9)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "abc",
        "116.4",
        "116.4, 39.9, 12",
        "116.4,,39.9",
        "116 23 39",  # three numbers: not two coordinates
        "116°61'E 39°N",  # 61 minutes
        "116°23'60\"E 39°N",  # 60 seconds
        "39.9N 40.1N",  # two latitudes
        "116.4E 117.1E",  # two longitudes
        "116.5 30, 39.9",  # decimal degrees followed by minutes
        '116°49"E 39°N',  # seconds without minutes
        "-116.4W, 39.9N",  # sign and hemisphere
        "116.4E",
        "116.4 # 39.9",
    ],
)
def test_parse_invalid(text: str) -> None:
    with pytest.raises(GeoError) as err:
        parse_coordinates(text)
    assert err.value.code == "coordinates.invalid"


@pytest.mark.parametrize(
    "text",
    ["2.3522, 48.8566", "116.4, 60.1", "S39.9 E116.4", "116.4W 39.9N", "150, 39.9", "-116.4, 39.9"],
)
def test_parse_outside_china(text: str) -> None:
    with pytest.raises(GeoError) as err:
        parse_coordinates(text)
    assert err.value.code == "coordinates.range"
    assert str(err.value) == "coordinates.range"  # values stay out of logged text


def _dms(value: float) -> tuple[int, int, float]:
    total = round(value * 3600 * 10_000)  # seconds to 4 decimals, as integers
    degrees, rest = divmod(total, 3600 * 10_000)
    minutes, seconds = divmod(rest, 60 * 10_000)
    return degrees, minutes, seconds / 10_000


def _format(value: float, hemi: str, style: str) -> str:
    d, m, s = _dms(value)
    return {
        "ascii": f"{d}°{m}'{s}\"{hemi}",
        "unicode": f"{d}°{m}′{s}″{hemi}",
        "chinese": f"{'东经' if hemi == 'E' else '北纬'}{d}度{m}分{s}秒",
        "spaces": f"{d} {m} {s} {hemi}",
        "decimal": f"{value:.7f}{hemi}",
    }[style]


@given(
    points,
    st.sampled_from(["ascii", "unicode", "chinese", "spaces", "decimal"]),
    st.booleans(),
    st.sampled_from([" ", ", ", "，", ";"]),
)
def test_parse_formatted_points(p: LonLat, style: str, lat_first: bool, sep: str) -> None:
    parts = [_format(p.lon, "E", style), _format(p.lat, "N", style)]
    if lat_first:
        parts.reverse()
    got = parse_coordinates(sep.join(parts))
    assert got.lon == pytest.approx(p.lon, abs=1e-7)
    assert got.lat == pytest.approx(p.lat, abs=1e-7)


@given(points)
def test_plain_decimal_pairs_read_as_lon_lat_in_either_order(p: LonLat) -> None:
    for text in (f"{p.lon!r}, {p.lat!r}", f"{p.lat!r}, {p.lon!r}"):
        if "e" in text.lower():
            continue  # repr of tiny floats; not how anyone types a coordinate
        assert parse_coordinates(text) == p


def test_geo_messages_exist_in_both_languages() -> None:
    for code in ("coordinates.invalid", "coordinates.range", "coordinates.outside_grid"):
        assert geo.message(code) != geo.message(code, "en")
        assert re.search(r"[\u4e00-\u9fff]", geo.message(code))
        assert not re.search(r"[\u4e00-\u9fff]", geo.message(code, "en"))
        assert GeoError(code).message("en") == geo.message(code, "en")
