"""Grid boundaries: point-in-polygon with an edge tolerance, for the grid check (a warning,
never a block)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from app.core.geo.point import OUTSIDE_GRID, LonLat

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
