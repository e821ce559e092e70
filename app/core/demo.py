"""The demo community: a fictional street office to try GridCollect on, 300 to 1.63 M records.

One street office (清溪街道, fictional, in 杭州市西湖区 330106) with communities, grids (quads of
one jittered lattice, so grids never overlap), compounds, buildings, houses with owners and
rentals, households with GB/T 4761 relations, migrant tenants, a few foreigners and unregistered
children, and ground-floor units with valid credit codes (9/1, 9/2, 9/3, 5/1, 5/2, N, Y).

Deterministic: data *and* record ids follow from ``seed`` alone (one ``random.Random``, dates
relative to ``AS_OF``, never the wall clock). Ids are UUIDv7-shaped and time-ordered from
``AS_OF``; only the store's own bookkeeping (created_at, history, outbox) uses the real clock.

Fast: nothing is validated here (the tests validate every record); rows go to
``Store.insert_many`` in batches of about ``BATCH`` records, one transaction per batch, with
addresses before houses before residents and units, so every batch is self-consistent.
``cancel`` is asked before each batch: a cancelled run keeps the whole batches already written
(no dangling references) and reports ``cancelled=True``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from app.core import creditcode, idnumber
from app.core import demo_data as d
from app.core.store import Grid, Store

AS_OF = date(2026, 1, 1)  # the day the demo describes; every date is relative to it
COUNTY, COUNTY_NAME = "330106", "浙江省杭州市西湖区"
ORIGIN, CELL = (120.060, 30.255), (0.0045, 0.0036)  # SW corner; one grid ≈ 430 m × 400 m
JITTER = 0.12  # lattice vertices move up to this share of a cell: the quads stay convex
BATCH = 5000  # records per transaction
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
_ORG = creditcode.ALPHABET  # symbols of a 主体标识码 (no I, O, S, V, Z)
# unit kind key (credit-code department + category) -> (unit_kind, unit_category, body prefix)
_UNITS = {"91": ("1", "01", "MA2"), "92": ("2", "03", "MA2"), "93": ("1", "04", "MA2"),
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


class _Spec(NamedTuple):
    """A building: floors × stair units (单元) × flats per floor; shops on the ground floor."""

    floors: int
    units: int
    per_floor: int
    shops: bool = False

    @property
    def houses(self) -> int:
        return self.floors * self.units * self.per_floor

    def with_shops(self) -> _Spec:
        return self._replace(units=max(self.units, 2), shops=True)


def _spec(rng: random.Random, size: int) -> _Spec:
    """Walk-ups for small demos; towers join as the street grows."""
    r = rng.random()
    if size < 5000 or r < 0.45:
        spec = _Spec(rng.randint(3, 6), rng.randint(1, 2), 2)
    elif size < 100_000 or r < 0.85:
        spec = _Spec(rng.randint(11, 18), 2, rng.randint(2, 3))
    else:
        spec = _Spec(rng.randint(24, 32), rng.randint(1, 2), 4)
    return spec.with_shops() if rng.random() < 0.35 else spec


def _records(spec: _Spec) -> float:
    """Expected records of a building: addresses (50, 61s, 62s), houses, people, shop units."""
    shops = spec.units * spec.per_floor if spec.shops else 0
    return 1 + spec.units + (spec.houses - shops) * _PER_HOME + shops * 3


def _plan(rng: random.Random, size: int) -> tuple[list[list[list[_Spec]]], float]:
    """Communities → grids → buildings of about ``size`` records in all, and the estimate.

    The first building of every community has shops (its social organisations need one).
    """
    specs: list[_Spec] = []
    while sum(map(_records, specs)) < size:
        specs.append(_spec(rng, size))
    per_grid = min(12, max(2, round(math.sqrt(len(specs)) * 0.6)))
    per_comm = min(20, max(2, round(math.sqrt(len(specs) / per_grid))))
    specs = [s.with_shops() if k % (per_grid * per_comm) == 0 else s for k, s in enumerate(specs)]
    extra = [_records(s) + (k % per_grid == 0) for k, s in enumerate(specs)]  # + compound address
    keep = next((k + 1 for k, t in enumerate(itertools.accumulate(extra)) if t >= size), len(specs))
    last = specs[keep - 1]  # its floors are cut to fit the rest
    others = sum(extra[:keep]) - _records(last)
    fit = [abs(others + _records(last._replace(floors=f)) - size) for f in range(last.floors + 1)]
    specs[keep - 1] = last._replace(floors=max(1, fit.index(min(fit))))
    estimate = others + _records(specs[keep - 1])
    grids = [specs[i : min(i + per_grid, keep)] for i in range(0, keep, per_grid)]
    return [grids[i : i + per_comm] for i in range(0, len(grids), per_comm)], estimate


def _quad_point(quad: Sequence[tuple[float, float]], u: float, v: float) -> dict[str, float]:
    """Bilinear point (u, v in 0..1) of a convex quad given counter-clockwise from SW."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = quad
    lon = (1 - u) * (1 - v) * x0 + u * (1 - v) * x1 + u * v * x2 + (1 - u) * v * x3
    lat = (1 - u) * (1 - v) * y0 + u * (1 - v) * y1 + u * v * y2 + (1 - u) * v * y3
    return {"lon": round(lon, 6), "lat": round(lat, 6)}


class _Ids:
    """UUIDv7-shaped ids, time-ordered from AS_OF (a counter in the ms and rand_a bits)."""

    def __init__(self, seed: int) -> None:
        self.rng, self.n = random.Random(f"gridcollect-demo-ids:{seed}"), 0

    def __call__(self) -> str:
        ms, counter = _EPOCH_MS + (self.n >> 12), self.n & 0xFFF
        self.n += 1
        value = ms << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | self.rng.getrandbits(62)
        h = f"{value:032x}"  # str(uuid.UUID(int=value)), without the object
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _gb11714(body: str) -> str:
    """Check character of an 8-character organisation code (the 主体标识码 without its last)."""
    total = sum(int(c, 36) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    return "0123456789X0"[11 - total % 11]


def _who(prefix: str, who: Who, id_type: bool = True) -> dict[str, str]:
    """A person's ID number, name and phone as the fields ``<prefix>id_number`` etc."""
    out = {f"{prefix}id_number": who[0], f"{prefix}name": who[1], f"{prefix}phone": who[2]}
    return {f"{prefix}id_type": "111", **out} if id_type else out


def _day(days: int) -> str:
    """AS_OF plus ``days`` (negative: before), as a stored date."""
    return (AS_OF + timedelta(days=days)).isoformat()


class _Demo:
    """One run: the random stream, the row buffers and what was written."""

    def __init__(self, store: Store, seed: int) -> None:
        self.store, self.rng, self.new_id = store, random.Random(seed), _Ids(seed)
        self.progress: Callable[[int, int], None] | None = None
        self.cancel: Callable[[], bool] | None = None
        self.rows: dict[str, list[tuple[str, dict, str]]] = {f: [] for f in FORMS}
        self.pending: list[Grid] = []
        self.counts = dict.fromkeys(FORMS, 0)
        self.grids: list[str] = []
        self.communities: list[tuple[str, str]] = []
        self.drafts = self.done = self.total = self.serial = 0
        self.cancelled = False
        self.used: set[object] = set()  # ID numbers (as int), other document numbers, codes
        self.landlords: list[Who] = []
        self.seen: set[str] = set()
        self.region = store.formset.table("region").codes
        self.surnames = (
            list(d.SURNAMES),
            list(itertools.accumulate(1 / (i + 8) for i in range(len(d.SURNAMES)))),
        )

    # -- buffers ---------------------------------------------------------------------------

    def add(self, form: str, data: dict, rid: str | None = None, draftable: bool = True) -> str:
        """Buffer one record; a few per cent become drafts with fields still to fill."""
        rid, status = rid or self.new_id(), "complete"
        if draftable and self.rng.random() < DRAFT_SHARE:
            status, self.drafts = "draft", self.drafts + 1
            for key in DRAFT_DROPS[form]:
                data.pop(key, None)
        self.rows[form].append((rid, data, status))
        return rid

    def flush(self) -> bool:
        """Write the buffers as one transaction; False when cancelled (buffers dropped)."""
        if self.cancel is not None and self.cancel():
            self.cancelled = True
            return False
        with self.store.transaction():
            for grid in self.pending:
                self.store.put_grid(grid)
            for form in FORMS:
                if self.rows[form]:
                    self.store.insert_many(form, self.rows[form], author=AUTHOR, local_change=False)
        for form in FORMS:
            self.counts[form] += len(self.rows[form])
            self.done += len(self.rows[form])
            self.rows[form] = []
        self.grids += [g.code for g in self.pending]
        self.pending = []
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))
        return True

    # -- small pieces ----------------------------------------------------------------------

    def chance(self, kind: str, p: float) -> bool:
        """A rare case at rate ``p``, but at its first chance if not seen yet (small demos)."""
        if kind in self.seen and self.rng.random() >= p:
            return False
        self.seen.add(kind)
        return True

    def place(self, code: str) -> str:
        """省市县 name of a county code from the region table (市辖区 and the like skipped)."""
        parts = []
        while code in self.region:
            if self.region[code].zh not in ("市辖区", "县", "省直辖县级行政区划"):
                parts.append(self.region[code].zh)
            code = self.region[code].parent or ""
        return "".join(reversed(parts))

    def pick(self, table: Weighted) -> str:
        """A weighted choice from (values, cumulative weights)."""
        return self.rng.choices(table[0], cum_weights=table[1])[0]

    def mobile(self) -> str:
        return self.rng.choice(d.MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    def unique(self, make: Callable[[], str]) -> str:
        while (value := make()) in self.used:
            pass
        self.used.add(value)
        return value

    def id_number(self, area: str, born: date, male: bool) -> str:
        """A GB 11643 number: sequence parity = gender (odd male), never issued twice."""
        while True:
            first17 = f"{area}{born:%Y%m%d}{2 * self.rng.randrange(1, 500) - int(male):03d}"
            if int(first17) not in self.used:
                self.used.add(int(first17))
                return first17 + idnumber.check_char(first17)

    def credit_code(self, kind: str) -> str:
        """A GB 32100 code: department + category, county, 主体标识码 (with its GB 11714 check)."""
        prefix = _UNITS[kind][2]
        body = self.unique(lambda: prefix + "".join(self.rng.choices(_ORG, k=8 - len(prefix))))
        first17 = kind + COUNTY + body + _gb11714(body)
        return first17 + creditcode.check_char(first17)

    def name(self, male: bool, surname: str | None = None) -> str:
        rng, chars = self.rng, d.MALE_CHARS if male else d.FEMALE_CHARS
        surname = surname or self.pick(self.surnames)
        if rng.random() < 0.3:
            return surname + rng.choice(chars)
        return surname + rng.choice(d.NEUTRAL_CHARS + chars) + rng.choice(chars)

    def someone(self, areas: Weighted, young: int, old: int) -> Who:
        """A person who is not a resident here (an owner, a legal representative)."""
        male = self.rng.random() < 0.6
        born = AS_OF - timedelta(days=self.rng.randint(young * 365, old * 365))
        area = self.pick(areas)
        return self.id_number(area, born, male), self.name(male), self.mobile()

    # -- people ----------------------------------------------------------------------------

    def job(self, age: int) -> dict[str, str]:
        """Occupation (GB/T 6565 group) and workplace by age: pupils, workers, retirees."""
        rng = self.rng
        if age < 6:
            return {}
        if age < 19 or (age < 23 and rng.random() < 0.5):
            return {
                "occupation": "学生",
                "workplace": rng.choice(d.SCHOOLS) if age < 19 else d.COLLEGE,
            }
        if age >= 60 or rng.random() < 0.08:
            return {"occupation": "离退休人员" if age >= 60 else "待业"}
        code, title, kind = rng.choice(d.JOBS)
        if kind in ("company", "factory"):
            trade = rng.choice(d.INDUSTRIES)[0] if kind == "company" else "制造"
            place = f"杭州{rng.choice(d.BRAND_WORDS)}{trade}有限公司"
        elif kind == "shop":
            place = f"{rng.choice(d.SHOP_BRANDS)}{rng.choice(d.TRADES)[0]}"
        else:
            place = rng.choice(
                {"school": d.SCHOOLS, "hospital": d.HOSPITALS, "courier": d.COURIERS}[kind]
            )
        return {"occupation_code": code, "occupation": title, "workplace": place}

    def person(
        self,
        age: int,
        male: bool,
        marital: str,
        surname: str | None = None,
        areas: Weighted = d.LOCAL_AREAS,
    ) -> dict:
        """The person block of a citizen; the ID number agrees with birth date and gender."""
        rng = self.rng
        born = AS_OF - timedelta(days=age * 365 + rng.randrange(365))
        area = self.pick(areas)
        politics = "13"
        if age >= 18 and rng.random() < 0.08:
            politics = "01"
        elif 14 <= age <= 28 and rng.random() < 0.4:
            politics = "03"
        p = {"id_type": "111", "id_number": self.id_number(area, born, male),
             "name": self.name(male, surname), "gender": "1" if male else "2",
             "birth_date": born.isoformat(), "native_place": area, "marital_status": marital,
             "ethnicity": "01" if rng.random() < 0.95 else self.pick(d.MINORITIES),
             "religion": "00" if rng.random() < 0.94 else rng.choice(("10", "30", "50")),
             "political_status": politics, **self.job(age)}  # fmt: skip
        if 6 <= age < 19:
            p["education"] = "80" if age < 13 else "70" if age < 16 else "60"
        elif age >= 19:
            p["education"] = rng.choice(d.ADULT_EDUCATION if age < 55 else d.OLDER_EDUCATION)
        if age >= 16 and rng.random() < 0.9:
            p["phone"] = self.mobile()
        return p

    def children(self, parent_age: int, n: int, surname: str) -> list[Member]:
        """Children 22-40 years younger than the younger parent: 独生子/女, 长子/女, 次子/女."""
        rng, born = self.rng, {True: 0, False: 0}
        top = max(22, min(40, parent_age))
        kids = sorted(
            ((max(0, parent_age - rng.randint(22, top)), rng.random() < 0.52) for _ in range(n)),
            reverse=True,
        )
        out = []
        for age, male in kids:
            rel = (20 if male else 30) + (1 if n == 1 else 2 + born[male])
            born[male] += 1
            out.append((str(rel), age, male, "10", surname))
        return out

    def family(self) -> list[Member]:
        """One 户籍 household, head (02) first; surname from "" (own), "head" or "spouse"."""
        rng = self.rng
        kinds = ("elder", "young", "couple", "nuclear", "parents", "single", "three")
        kind = rng.choices(kinds, (20, 8, 10, 37, 12, 5, 8))[0]
        if kind == "young":
            return [("02", rng.randint(22, 38), rng.random() < 0.5, "10", "")]
        if kind == "single":
            age = rng.randint(30, 50)
            head = ("02", age, rng.random() < 0.3, rng.choice(("30", "40")), "")
            return [head, *self.children(age, 1, "head")]
        low, high, p_male = {"elder": (62, 88, 0.5), "three": (56, 72, 1)}.get(kind, (25, 50, 0.75))
        age, male = rng.randint(low, high), rng.random() < p_male
        if kind == "elder" and rng.random() < 0.4:
            return [("02", age, male, "30", "")]
        spouse = max(22, age + (rng.randint(-6, 2) if male else rng.randint(-2, 6)))
        out = [("02", age, male, "20", ""), ("10", spouse, not male, "20", "")]
        if kind == "three":  # head, spouse, eldest son, his wife (儿媳), their child (孙子/孙女)
            son, boy = min(age, spouse) - rng.randint(24, 32), rng.random() < 0.5
            out.append(("22", son, True, "20", "head"))
            out.append(("38", max(22, son + rng.randint(-4, 2)), False, "20", ""))
            out.append(
                ("41" if boy else "42", max(0, son - rng.randint(24, 34)), boy, "10", "head")
            )
        elif kind in ("nuclear", "parents"):
            kids = rng.choice((1, 1, 2))
            out += self.children(min(age, spouse), kids, "head" if male else "spouse")
        if kind == "parents":  # the head's father (51) and/or mother (52)
            both, father = rng.random() < 0.5, rng.random() < 0.5
            for rel, is_father in (("51", True), ("52", False)):
                if both or father == is_father:
                    parent, marital = min(95, age + rng.randint(23, 34)), "20" if both else "30"
                    out.append((rel, parent, is_father, marital, "head" if is_father else ""))
        return out

    def unregistered(self, p: dict) -> None:
        """Make a young child a 未落户人员 with a birth certificate (出生医学证明, 117)."""
        number = self.unique(lambda: self.rng.choice("NOPQR") + f"{self.rng.randrange(10**9):09d}")
        reason = self.rng.choice(("出生后未申报户口登记", "父母户籍手续未办结"))
        p.update(population_type="4", id_type="117", id_number=number, unregistered_reason=reason)

    def registered(self, where: dict) -> Who:
        """A 户籍 household living in a house; returns its head, who owns the house."""
        rng = self.rng
        self.serial += 1
        block = {"population_type": "1", "hukou_region": COUNTY, "hukou_consistency": "01",
                 "hukou_address": where["residence_address"],
                 "household_number": f"{330100000 + self.serial}"}  # fmt: skip
        if rng.random() < 0.05:  # 人户不一致: registered elsewhere in the city
            block["hukou_region"] = area = rng.choice(d.OTHER_DISTRICTS)
            block["hukou_address"] = (
                f"{self.place(area)}{rng.choice(d.ROAD_WORDS)}路{rng.randint(1, 300)}号"
            )
            block["hukou_consistency"] = "02"
        surnames: dict[str, str] = {}
        for rel, age, male, marital, surname in self.family():
            p = self.person(age, male, marital, surnames.get(surname))
            if rel == "02":
                p.setdefault("phone", self.mobile())  # the owner's phone is required
                head = (p["id_number"], p["name"], p["phone"])
                block.update(_who("head_", head, id_type=False))
            if rel in ("02", "10"):
                surnames["head" if rel == "02" else "spouse"] = p["name"][0]
            if age <= 2 and self.chance("unregistered", 0.1):
                self.unregistered(p)
            else:
                p.update(block, household_relation=rel)
            self.add("resident", {**p, **where})
        return head

    def tenants(self, where: dict) -> None:
        """流动人口 renting a flat: a worker, a couple, a family, roommates (or foreigners)."""
        rng = self.rng
        if self.chance("foreign", 0.04):
            return self.foreigners(where)
        kind = rng.choices(("single", "couple", "family", "roommates"), (40, 25, 15, 20))[0]
        if kind in ("single", "roommates"):
            male, count = rng.random() < 0.6, 1 if kind == "single" else rng.randint(2, 3)
            group = [
                (rng.randint(19, 40), male, "10", rng.choice(("01", "01", "04")))
                for _ in range(count)
            ]
        else:
            man = rng.randint(22, 45)
            woman = max(22, man + rng.randint(-5, 2))
            group = [
                (man, True, "20", rng.choice(("01", "03"))),
                (woman, False, "20", rng.choice(("01", "05", "06"))),
            ]
            if kind == "family":
                group.append((rng.randint(0, min(14, woman - 20)), rng.random() < 0.5, "10", "06"))
        for i, (age, male, marital, reason) in enumerate(group):
            if i == 0 or kind == "roommates":  # a family shares its home town
                area = self.pick(d.MIGRANT_AREAS)
                home = (
                    f"{self.place(area)}{rng.choice(d.TOWN_WORDS)}镇{rng.choice(d.VILLAGE_WORDS)}村"
                )
                surname = None
            p = self.person(age, male, marital, surname if i == 2 else None, ([area], [1]))
            surname = surname or p["name"][0]
            if age <= 6 and self.chance("unregistered", 0.15):
                self.unregistered(p)
            else:
                since = AS_OF - timedelta(days=rng.randint(15, 1400))
                p.update(population_type="2", hukou_region=area, inflow_reason=reason,
                         hukou_address=f"{home}{rng.randint(1, 120)}号",
                         registered_on=since.isoformat(), residence_type="02")  # fmt: skip
                if age >= 16 and rng.random() < 0.8:
                    self.serial += 1
                    p.update(permit_type="01" if rng.random() < 0.94 else "02",
                             permit_number=f"{COUNTY}{since.year}{self.serial:08d}",
                             permit_expires=(since + timedelta(days=1095)).isoformat())  # fmt: skip
            self.add("resident", {**p, **where})
        return None

    def foreigners(self, where: dict) -> None:
        """境外人员 on passports (414): one person or a couple from the same country."""
        rng = self.rng
        country = rng.choice(sorted(d.FOREIGNERS))
        prefix, surname_text, given_text = d.FOREIGNERS[country]
        surnames, givens = surname_text.split(), given_text.split()
        purpose, job, workplace = rng.choice(d.FOREIGN_JOBS)
        lead, size, family = rng.random() < 0.6, 1 + (rng.random() < 0.3), rng.choice(surnames)
        for i in range(size):
            male = lead if i == 0 else not lead
            surname = (
                family if i == 0 or country not in ("KOR", "VNM") else rng.choice(surnames)
            ).split(":")
            given = rng.choice([g for g in givens if g.endswith("m" if male else "f")]).split(":")
            zh = surname[1] + given[1] if country in d.SURNAME_FIRST else f"{given[1]}·{surname[1]}"
            number = self.unique(lambda: prefix + f"{rng.randrange(10**9):09d}"[len(prefix) :])
            p = {"population_type": "3", "id_type": "414", "id_number": number, "name": zh,
                 "gender": "1" if male else "2", "nationality": country,
                 "birth_date": _day(-rng.randint(22 * 365, 58 * 365)),
                 "foreign_surname": surname[0], "foreign_given_name": given[0],
                 "marital_status": "20" if size == 2 else "10", "education": "21",
                 "id_valid_until": _day(rng.randint(200, 3000)),
                 "arrived_on": _day(-rng.randint(30, 1500)),
                 "expected_departure": _day(rng.randint(30, 900)), "phone": self.mobile(),
                 "visit_purpose": purpose if i == 0 else "05"}  # fmt: skip
            if i == 0:
                p.update(occupation=job, workplace=workplace)
            self.add("resident", {**p, **where})

    # -- houses, units, buildings ----------------------------------------------------------

    def house(self, hid: str, addr: dict, use: str) -> None:
        """A house (use: home, shop or office) with its owner and the people living in it."""
        rng, home, grid = self.rng, use == "home", addr["grid"]
        area = round(rng.uniform(45, 140) if home else rng.uniform(30, 120), 2)
        rooms = min(5, 1 + int(area // 35)) if home else 1
        house = {"house_code": "F" + addr["address_code"], "address_ref": addr["id"], "grid": grid,
                 "address_text": addr["full_address"], "building": addr["building"],
                 "unit_no": addr["unit_no"], "room": addr["room"],
                 "building_use": "01" if home else "02",
                 "ownership_type": rng.choices(("01", "05", "03"), (90, 7, 3))[0],
                 "structure": addr["structure"], "floor_area": area, "rooms": rooms,
                 "location": addr["location"]}  # fmt: skip
        where = {"residence_region": COUNTY, "residence_address": addr["full_address"],
                 "house_ref": hid, "grid": grid}  # fmt: skip
        r = rng.random()
        rental = use == "office" or (r < 0.8 if use == "shop" else 0.07 <= r < 0.33)
        if home and r >= 0.33:  # owner-occupied
            owner = self.registered(where)
            slot = len(self.landlords) if len(self.landlords) < 500 else rng.randrange(500)
            self.landlords[slot : slot + 1] = [owner]  # owners living here let other flats too
        elif rental and self.landlords and rng.random() < 0.5:
            owner = self.landlords[rng.randrange(len(self.landlords))]
        else:
            owner = self.someone(d.LOCAL_AREAS, 30, 75)
        if home and rental:
            self.tenants(where)
        house.update(is_rental=rental, **_who("owner_", owner))
        if rental:
            rent = float(rng.randint(15, 80) * 100)
            house.update(rental_use={"home": "02", "shop": "03", "office": "04"}[use], rent=rent,
                         rental_rooms=rooms, rental_since=_day(-rng.randint(30, 2500)))  # fmt: skip
        self.add("house", house, rid=hid)

    def unit_name(self, kind: str, addr: dict) -> tuple[str, str]:
        """(name, business scope) of a unit of one kind."""
        rng, community = self.rng, addr["community_name"]
        if kind == "92":
            trade, scope = rng.choice(d.TRADES)
            return f"杭州市西湖区{rng.choice(d.SHOP_BRANDS)}{trade}", scope
        brand = rng.choice(d.BRAND_WORDS)
        if kind == "91":
            industry, scope = rng.choice(d.INDUSTRIES)
            return f"杭州{brand}{industry}有限公司", scope
        return {"93": (f"杭州{brand}茶叶专业合作社", "茶叶种植、加工、销售"),
                "51": (f"杭州市西湖区{d.STREET_NAME}{community}志愿者协会", "社区志愿服务"),
                "52": (f"杭州市西湖区{community}居家养老服务中心", "居家养老服务"),
                "N2": (f"杭州市西湖区{d.STREET_NAME}{community}股份经济合作社", "集体资产经营管理"),
                "Y1": (f"{addr['compound']}业主委员会", "业主自治管理")}[kind]  # fmt: skip

    def unit(self, kind: str, hid: str, addr: dict) -> None:
        """A unit in a shop or office: 9/1, 9/2, 9/3, social organisations 5/1 5/2, N, Y."""
        rng = self.rng
        unit_kind, category, _ = _UNITS[kind]
        name, scope = self.unit_name(kind, addr)
        rep = self.someone(d.LOCAL_AREAS if rng.random() < 0.6 else d.MIGRANT_AREAS, 25, 62)
        unit = {"credit_code": self.credit_code(kind), "name": name, "unit_kind": unit_kind,
                "address_text": addr["full_address"], "house_ref": hid, "grid": addr["grid"],
                "phone": rep[2] if kind == "92" else f"0571-8{rng.randrange(10**7):07d}",
                "employees": rng.randint(1, 5) if kind == "92" else rng.randint(3, 60),
                "business_scope": scope, "opened_on": _day(-rng.randint(60, 4000)),
                "location": addr["location"], **_who("legal_rep_", rep)}  # fmt: skip
        if category:
            unit["unit_category"] = "02" if kind == "91" and rng.random() < 0.05 else category
        else:  # 社会组织: the credit code is its registration number since 2016
            unit.update(registration_number=unit["credit_code"], status="01",
                        registration_authority="杭州市西湖区民政局", approved_on=unit["opened_on"],
                        social_org_type="0" + kind[1])  # fmt: skip
        self.add("unit", unit)

    def address(self, ctx: dict, code: str, element: str, detail: str, **extra: object) -> dict:
        """A standard address (地址元素类型 42 compound, 50 building, 61 stair, 62 room)."""
        data = {**ctx["base"], "address_code": code, "element_type": element,
                "detail_address": detail, "full_address": COUNTY_NAME + detail,
                **extra}  # fmt: skip
        context = {k: ctx[k] for k in ("grid", "community_name", "compound")}
        return {**data, **context, "id": self.add("address", data, draftable=False)}

    def building(self, ctx: dict, b: int, spec: _Spec, loc: dict, specials: list[str]) -> None:
        """A building's addresses, houses, households and shops (ground floor of a shop block)."""
        rng, code, name = self.rng, f"{ctx['grid']}{b:03d}", f"{b}栋"
        structure = "3" if spec.floors > 7 else rng.choice("34")
        self.address(ctx, code + "0" * 7, "50", ctx["detail"] + name, building=name, location=loc)
        for u in range(1, spec.units + 1):
            stair = f"{ctx['detail']}{name}{u}单元"
            self.address(ctx, f"{code}{u:02d}00000", "61", stair, building=name, location=loc)
            for floor, r in itertools.product(
                range(1, spec.floors + 1), range(1, spec.per_floor + 1)
            ):
                room = f"{floor}{r:02d}"
                addr = self.address(
                    ctx,
                    f"{code}{u:02d}{floor:03d}{r:02d}",
                    "62",
                    f"{stair}{room}室",
                    building=name,
                    location=loc,
                )
                addr.update(unit_no=f"{u}单元", room=room, structure=structure)
                use = "home"
                if spec.shops and floor == 1:
                    use = "shop"
                elif rng.random() < 0.01:  # a small company registered in a flat
                    use = "office"
                hid = self.new_id()
                self.house(hid, addr, use)
                if use != "home":
                    self.unit(self.occupant(use, specials), hid, addr)

    def occupant(self, use: str, specials: list[str]) -> str:
        """Unit kind in a shop or office: the community's own organisations first."""
        if use == "office":
            return "91"
        if specials:
            return specials.pop(0)
        return "93" if self.chance("coop", 0.05) else self.rng.choices(("92", "91"), (68, 32))[0]

    def run(self, size: int) -> None:
        """Lay out the street office and write it, batch by batch."""
        rng = self.rng
        plan, estimate = _plan(rng, size)
        self.total = round(estimate)
        per_comm = max(len(c) for c in plan)
        w = math.ceil(math.sqrt(per_comm))
        h, cols = math.ceil(per_comm / w), math.ceil(math.sqrt(len(plan)))
        vertex = {
            (i, j): (
                round(ORIGIN[0] + (i + rng.uniform(-JITTER, JITTER)) * CELL[0], 6),
                round(ORIGIN[1] + (j + rng.uniform(-JITTER, JITTER)) * CELL[1], 6),
            )
            for j in range(math.ceil(len(plan) / cols) * h + 1)
            for i in range(cols * w + 1)
        }
        words = rng.sample(d.COMMUNITY_WORDS, len(d.COMMUNITY_WORDS))
        for c, comm in enumerate(plan):
            cname = d.COMMUNITY_PREFIXES[c // len(words) % 6] + words[c % len(words)] + "社区"
            ccode = f"{COUNTY}{d.STREET_CODE}{c + 1:03d}"
            self.communities.append((ccode, cname))
            roads = [word + rng.choice(d.ROAD_SUFFIXES) for word in rng.sample(d.ROAD_WORDS, 3)]
            specials = ["52", "51", "Y1"] + ["N2"] * (c == 0)  # social organisations, N and Y
            for g, buildings in enumerate(comm):
                i, j = (c % cols) * w + g % w, (c // cols) * h + g // w
                quad = [vertex[i, j], vertex[i + 1, j], vertex[i + 1, j + 1], vertex[i, j + 1]]
                gcode = f"{ccode}{g + 1:03d}"
                worker = self.name(rng.random() < 0.4)
                self.pending.append(
                    Grid(gcode, f"{cname}第{g + 1}网格", ccode, cname, "1", quad, worker)
                )
                road, door = roads[g % 3], 10 * (g // 3 + 1) + rng.choice((0, 2, 4, 6, 8))
                compound = rng.choice(d.ROAD_WORDS) + rng.choice(d.COMPOUND_SUFFIXES)
                detail = f"{d.STREET_NAME}{cname}{road}{door}号{compound}"
                base = {"region": COUNTY, "community_code": ccode, "community_name": cname,
                        "grid": gcode, "street": road, "door_number": f"{door}号",
                        "in_use": True}  # fmt: skip
                ctx = {"grid": gcode, "detail": detail, "base": base, "community_name": cname,
                       "compound": compound}  # fmt: skip
                self.address(
                    ctx, gcode + "0" * 10, "42", detail, location=_quad_point(quad, 0.5, 0.5)
                )
                across = math.ceil(math.sqrt(len(buildings)))
                down = math.ceil(len(buildings) / across)
                for k, spec in enumerate(buildings):
                    u, v = (k % across + 0.5) / across, (k // across + 0.5) / down
                    loc = _quad_point(quad, 0.15 + 0.7 * u, 0.15 + 0.7 * v)
                    self.building(ctx, k + 1, spec, loc, specials)
                    if sum(map(len, self.rows.values())) >= BATCH and not self.flush():
                        return
        if self.flush() and self.progress is not None:
            self.progress(self.done, self.done)


def generate(
    store: Store,
    size: int = 500,
    seed: int = 7,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> DemoSummary:
    """Fill an empty store with the demo street office of about ``size`` records (all forms).

    ``progress(done, total)`` is called after each batch (``total`` is an estimate until the
    last call, where it equals ``done``); ``cancel()`` is asked before each batch.
    """
    if size < 1:
        raise ValueError("size must be at least 1")
    if store.count() > 0:
        raise ValueError("演示数据只能写入空的数据库 / the demo community needs an empty store")
    demo = _Demo(store, seed)
    demo.progress, demo.cancel = progress, cancel
    demo.run(size)
    return DemoSummary(dict(demo.counts), demo.grids, demo.communities, demo.drafts, demo.cancelled)
