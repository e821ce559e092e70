"""The location warning: coordinates outside the record's grid boundary.

Why in core: the editor shows it, and the boundaries come from the platform (a pull) or the
demo, so the rule itself must be testable without a screen. A warning, never a blocker: GPS
drifts in stairwells, and grid boundaries get redrawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.core.forms import Form
from app.core.rules.validate import Issue


def location_warnings(
    form: Form,
    values: Mapping[str, Any],
    polygons: Mapping[str, Sequence[tuple[float, float]]],
) -> list[Issue]:
    """A warning for each coordinates field of ``values`` outside its record's grid boundary.

    ``polygons`` maps grid code -> boundary ([(lon, lat), ...], e.g. from ``Store.grids``);
    a record without a grid, or whose grid has no boundary, gets no warning. ``polygons`` is
    asked only when some coordinates field holds a point (it may read the boundary then)."""
    points = [
        (fld.id, value)
        for fld in form.fields.values()
        if fld.type == "coordinates"
        and isinstance(value := values.get(fld.id), dict)
        and "lon" in value
    ]
    if not points:  # most records (every resident): no boundary to read
        return []
    grid_field = form.roles.grid
    grid = values.get(grid_field) if grid_field else None
    polygon = polygons.get(str(grid)) if grid else None
    if not polygon:
        return []
    from app.core import geo  # pyproj: loaded only for records with a grid boundary

    warnings = []
    for field_id, value in points:
        point = geo.LonLat(float(value["lon"]), float(value["lat"]))
        code = geo.check_in_grid(point, polygon)
        if code:
            warnings.append(Issue(field_id, code, severity="warning"))
    return warnings
