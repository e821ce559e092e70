"""The demo's fixed frame and layout: the day and place it describes, the plan of
communities, grids and buildings for a size, points inside a grid's quad, ids and small
field helpers. Pure functions of the random stream they are given."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from app.core import creditcode

AS_OF = date(2026, 1, 1)  # the day the demo describes; every date is relative to it
COUNTY, COUNTY_NAME = "330106", "浙江省杭州市西湖区"
ORIGIN, CELL = (120.060, 30.255), (0.0045, 0.0036)  # SW corner; one grid ≈ 430 m × 400 m
JITTER = 0.12  # lattice vertices move up to this share of a cell: the quads stay convex
AUTHOR = "demo"
FORMS = ("address", "house", "resident", "unit")  # insert order: referenced before referrers
DRAFT_SHARE = 0.03  # drafts lack these fields (a worker has not finished them):
DRAFT_DROPS = {
    "resident": ("ethnicity", "education"),
    "house": ("owner_phone",),
    "unit": ("phone",),
}
_PER_HOME = 4.44  # records per flat: its address, itself, ~2.4 residents (measured)
_EPOCH_MS = int(datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC).timestamp()) * 1000
ORG_SYMBOLS = creditcode.ALPHABET  # symbols of a 主体标识码 (no I, O, S, V, Z)
# unit kind key (credit-code department + category) -> (unit_kind, unit_category, body prefix)
UNITS = {"91": ("1", "01", "MA2"), "92": ("2", "03", "MA2"), "93": ("1", "04", "MA2"),
          "51": ("3", "", "MJ"), "52": ("3", "", "MJ"), "N2": ("9", "99", "MF"),
          "Y1": ("9", "99", "MH")}  # fmt: skip
Weighted = tuple[Sequence[str], Sequence[float]]  # (values, cumulative weights)
Who = tuple[str, str, str]  # (ID number, name, phone) of a person
Member = tuple[str, int, bool, str, str]  # (relation, age, male, marital status, surname from)


@dataclass(frozen=True)
class DemoSummary:
    """What ``generate`` wrote: records per form, grid codes, communities (code, name)."""

    counts: dict[str, int]
    grids: list[str]
    communities: list[tuple[str, str]]
    drafts: int
    cancelled: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Spec(NamedTuple):
    """A building: floors × stair units (单元) × flats per floor; shops on the ground floor."""

    floors: int
    units: int
    per_floor: int
    shops: bool = False

    @property
    def houses(self) -> int:
        return self.floors * self.units * self.per_floor

    def with_shops(self) -> Spec:
        return self._replace(units=max(self.units, 2), shops=True)


def random_spec(rng: random.Random, size: int) -> Spec:
    """Walk-ups for small demos; towers join as the street grows."""
    r = rng.random()
    if size < 5000 or r < 0.45:
        spec = Spec(rng.randint(3, 6), rng.randint(1, 2), 2)
    elif size < 100_000 or r < 0.85:
        spec = Spec(rng.randint(11, 18), 2, rng.randint(2, 3))
    else:
        spec = Spec(rng.randint(24, 32), rng.randint(1, 2), 4)
    return spec.with_shops() if rng.random() < 0.35 else spec


def expected_records(spec: Spec) -> float:
    """Expected records of a building: addresses (50, 61s, 62s), houses, people, shop units."""
    shops = spec.units * spec.per_floor if spec.shops else 0
    return 1 + spec.units + (spec.houses - shops) * _PER_HOME + shops * 3


def street_plan(rng: random.Random, size: int) -> tuple[list[list[list[Spec]]], float]:
    """Communities → grids → buildings of about ``size`` records in all, and the estimate.

    The first building of every community has shops (its social organisations need one).
    """
    specs: list[Spec] = []
    while sum(map(expected_records, specs)) < size:
        specs.append(random_spec(rng, size))
    per_grid = min(12, max(2, round(math.sqrt(len(specs)) * 0.6)))
    per_comm = min(20, max(2, round(math.sqrt(len(specs) / per_grid))))
    specs = [s.with_shops() if k % (per_grid * per_comm) == 0 else s for k, s in enumerate(specs)]
    extra = [
        expected_records(s) + (k % per_grid == 0) for k, s in enumerate(specs)
    ]  # + compound address
    keep = next((k + 1 for k, t in enumerate(itertools.accumulate(extra)) if t >= size), len(specs))
    last = specs[keep - 1]  # its floors are cut to fit the rest
    others = sum(extra[:keep]) - expected_records(last)
    fit = [
        abs(others + expected_records(last._replace(floors=f)) - size)
        for f in range(last.floors + 1)
    ]
    specs[keep - 1] = last._replace(floors=max(1, fit.index(min(fit))))
    estimate = others + expected_records(specs[keep - 1])
    grids = [specs[i : min(i + per_grid, keep)] for i in range(0, keep, per_grid)]
    return [grids[i : i + per_comm] for i in range(0, len(grids), per_comm)], estimate


def quad_point(quad: Sequence[tuple[float, float]], u: float, v: float) -> dict[str, float]:
    """Bilinear point (u, v in 0..1) of a convex quad given counter-clockwise from SW."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = quad
    lon = (1 - u) * (1 - v) * x0 + u * (1 - v) * x1 + u * v * x2 + (1 - u) * v * x3
    lat = (1 - u) * (1 - v) * y0 + u * (1 - v) * y1 + u * v * y2 + (1 - u) * v * y3
    return {"lon": round(lon, 6), "lat": round(lat, 6)}


class Ids:
    """UUIDv7-shaped ids, time-ordered from AS_OF (a counter in the ms and rand_a bits)."""

    def __init__(self, seed: int) -> None:
        self.rng, self.n = random.Random(f"gridcollect-demo-ids:{seed}"), 0

    def __call__(self) -> str:
        ms, counter = _EPOCH_MS + (self.n >> 12), self.n & 0xFFF
        self.n += 1
        value = ms << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | self.rng.getrandbits(62)
        h = f"{value:032x}"  # str(uuid.UUID(int=value)), without the object
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def gb11714(body: str) -> str:
    """Check character of an 8-character organisation code (the 主体标识码 without its last)."""
    total = sum(int(c, 36) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    return "0123456789X0"[11 - total % 11]


def who_fields(prefix: str, who: Who, id_type: bool = True) -> dict[str, str]:
    """A person's ID number, name and phone as the fields ``<prefix>id_number`` etc."""
    out = {f"{prefix}id_number": who[0], f"{prefix}name": who[1], f"{prefix}phone": who[2]}
    return {f"{prefix}id_type": "111", **out} if id_type else out


def day(days: int) -> str:
    """AS_OF plus ``days`` (negative: before), as a stored date."""
    return (AS_OF + timedelta(days=days)).isoformat()
