"""Grids (网格): base data, community -> grid, with boundary polygons.

A part ``Store`` composes (``Store.put_grid`` / ``Store.grids``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from app.core.store.db import Database


@dataclass(frozen=True)
class Grid:
    """A grid (网格): its community and its boundary as [(lon, lat), ...] in WGS84."""

    code: str
    name: str
    community_code: str
    community_name: str
    level: str = "1"
    polygon: list[tuple[float, float]] = field(default_factory=list)
    worker: str | None = None


class Grids:
    """The grid table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, grid: Grid) -> None:
        """Create or replace a grid definition."""
        with self._db.transaction():
            self._db.conn.execute(
                "INSERT OR REPLACE INTO grids (code, name, community_code, community_name, level, polygon, "
                "worker) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    grid.code,
                    grid.name,
                    grid.community_code,
                    grid.community_name,
                    grid.level,
                    json.dumps(grid.polygon) if grid.polygon else None,
                    grid.worker,
                ),
            )

    def merge(self, grid: Grid) -> None:
        """Take a grid from the platform (a pull): its name, community, level and boundary,
        keeping what only this device knows (its worker) and, when the platform has no
        boundary, the boundary the device already has."""
        with self._db.transaction():
            row = self._db.conn.execute(
                "SELECT polygon, worker FROM grids WHERE code = ?", (grid.code,)
            ).fetchone()
            if row is None:
                self.put(grid)
                return
            polygon = json.dumps(grid.polygon) if grid.polygon else row[0]
            self._db.conn.execute(
                "UPDATE grids SET name = ?, community_code = ?, community_name = ?, level = ?, "
                "polygon = ? WHERE code = ?",
                (
                    grid.name,
                    grid.community_code,
                    grid.community_name,
                    grid.level,
                    polygon,
                    grid.code,
                ),
            )

    def boundary(self, code: str) -> list[tuple[float, float]]:
        """One grid's boundary ([] when the grid is unknown or has none): what checking one
        record's location needs, without reading every grid's."""
        row = self._db.conn.execute("SELECT polygon FROM grids WHERE code = ?", (code,)).fetchone()
        return [tuple(p) for p in json.loads(row[0])] if row and row[0] else []

    def all(self, boundaries: bool = True) -> list[Grid]:
        """All grids, by community then code; ``boundaries`` False: without their polygons
        (empty), for what lists grids by name: a worker's 30 grids' boundaries took ~4.7 ms
        to read and parse, at every opening of a form with a grid field on its first screen."""
        polygon = "polygon" if boundaries else "NULL"
        rows = self._db.conn.execute(
            f"SELECT code, name, community_code, community_name, level, {polygon}, worker "
            "FROM grids ORDER BY community_code, code"
        )
        return [
            Grid(c, n, cc, cn, lv, [tuple(p) for p in json.loads(pg)] if pg else [], w)
            for c, n, cc, cn, lv, pg, w in rows
        ]
