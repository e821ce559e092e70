"""The demo community: a fictional street office to try GridCollect on, from 300 to 1.63 M records.

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
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from app.core import creditcode, demo_data as d, idnumber
from app.core.store import Grid, Store

AS_OF = date(2026, 1, 1)  # the day the demo describes
COUNTY, COUNTY_NAME = "330106", "浙江省杭州市西湖区"
ORIGIN, CELL = (120.060, 30.255), (0.0045, 0.0036)  # SW corner; one grid ≈ 430 m × 400 m
JITTER = 0.12  # lattice vertices move up to this share of a cell: quads stay convex
BATCH = 5000
AUTHOR = "demo"
FORMS = ("address", "house", "resident", "unit")  # insert order: referenced first
DRAFT_SHARE = 0.03
_DRAFT_DROP = {
    "resident": ("ethnicity", "education"),
    "house": ("owner_phone", "floor_area"),
    "unit": ("phone", "employees"),
}
_PER_HOME = 4.44  # records per flat: its address, itself, ~2.4 residents (measured)
_MOBILE = (
    "130",
    "131",
    "132",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "157",
    "158",
    "159",
    "166",
    "177",
    "180",
    "181",
    "186",
    "187",
    "188",
    "189",
    "199",
)
_ORG_CHARS = "".join(c for c in creditcode.ALPHABET)
_EPOCH_MS = int(datetime(AS_OF.year, AS_OF.month, AS_OF.day).timestamp() // 1) * 1000


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


@dataclass(frozen=True)
class _Spec:
    """A building: floors × stair units (单元) × flats per floor; shops on the ground floor."""

    floors: int
    units: int
    per_floor: int
    shops: bool

    @property
    def houses(self) -> int:
        return self.floors * self.units * self.per_floor


def _spec(rng: random.Random, size: int, shops: bool | None = None) -> _Spec:
    """Walk-ups for small demos; towers join as the street grows."""
    r = rng.random()
    if size < 5000 or r < 0.45:
        floors, units, per = rng.randint(3, 6), rng.randint(1, 2), 2
    elif size < 100_000 or r < 0.85:
        floors, units, per = rng.randint(11, 18), 2, rng.randint(2, 3)
    else:
        floors, units, per = rng.randint(24, 32), rng.randint(1, 2), 4
    shop = rng.random() < 0.35 if shops is None else shops
    return _Spec(floors, max(units, 2) if shop else units, per, shop)


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
    specs = [
        _Spec(s.floors, max(s.units, 2), s.per_floor, True) if k % (per_grid * per_comm) == 0 else s
        for k, s in enumerate(specs)
    ]
    totals = list(
        itertools.accumulate(_records(s) + (k % per_grid == 0) for k, s in enumerate(specs))
    )
    keep = min(range(len(specs)), key=lambda k: abs(totals[k] - size)) + 1
    grids = [specs[i : i + per_grid] for i in range(0, keep, per_grid)]
    grids[-1] = grids[-1][: keep - per_grid * (len(grids) - 1)]
    return [grids[i : i + per_comm] for i in range(0, len(grids), per_comm)], totals[keep - 1]


def _quad_point(quad: Sequence[tuple[float, float]], u: float, v: float) -> dict[str, float]:
    """Bilinear point (u, v in 0..1) of a convex quad given counter-clockwise from SW."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = quad
    lon = (1 - u) * (1 - v) * x0 + u * (1 - v) * x1 + u * v * x2 + (1 - u) * v * x3
    lat = (1 - u) * (1 - v) * y0 + u * (1 - v) * y1 + u * v * y2 + (1 - u) * v * y3
    return {"lon": round(lon, 6), "lat": round(lat, 6)}


class _Ids:
    """UUIDv7-shaped ids: time-ordered from AS_OF (counter in the ms and rand_a bits)."""

    def __init__(self, seed: int) -> None:
        self.rng, self.n = random.Random(f"gridcollect-demo-ids:{seed}"), 0

    def __call__(self) -> str:
        ms, counter = _EPOCH_MS + (self.n >> 12), self.n & 0xFFF
        self.n += 1
        value = ms << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | self.rng.getrandbits(62)
        return str(uuid.UUID(int=value))


def _gb11714(body: str) -> str:
    """Check character of an 8-character organisation code (主体标识码 without its last)."""
    total = sum(int(c, 36) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


class _Demo:
    """One run: the random stream, the row buffers and what was written."""

    def __init__(
        self,
        store: Store,
        seed: int,
        progress: Callable[[int, int], None] | None,
        cancel: Callable[[], bool] | None,
    ) -> None:
        self.store, self.rng, self.new_id = store, random.Random(seed), _Ids(seed)
        self.progress, self.cancel = progress, cancel
        self.rows: dict[str, list[tuple[str, dict, str]]] = {f: [] for f in FORMS}
        self.pending: list[Grid] = []
        self.counts, self.grids, self.drafts = dict.fromkeys(FORMS, 0), [], 0
        self.communities: list[tuple[str, str]] = []
        self.done, self.total, self.cancelled = 0, 0, False
        self.used: set[int | str] = set()
        self.landlords: list[tuple[str, str, str]] = []
        self.seen: set[str] = set()
        self.serial = 0
        self.region = store.formset.table("region")
        n = len(d.SURNAMES)
        self.surname_weights = [1 / (i + 8) for i in range(n)]
        self.local = ([a for a, _ in d.LOCAL_AREAS], [w for _, w in d.LOCAL_AREAS])
        self.migrant = ([a for a, _ in d.MIGRANT_AREAS], [w for _, w in d.MIGRANT_AREAS])

    # -- buffers ---------------------------------------------------------------------------

    def add(self, form: str, data: dict, rid: str | None = None, draftable: bool = True) -> str:
        """Buffer one record; a few per cent become drafts with fields still to fill."""
        rid, status = rid or self.new_id(), "complete"
        if draftable and self.rng.random() < DRAFT_SHARE:
            status, self.drafts = "draft", self.drafts + 1
            for key in _DRAFT_DROP[form]:
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
                    self.store.insert_many(form, self.rows[form], author=AUTHOR)
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
        """A rare case at rate ``p``, but at the first chance if not seen yet (small demos)."""
        if kind in self.seen and self.rng.random() >= p:
            return False
        self.seen.add(kind)
        return True

    def place(self, code: str) -> str:
        """省市县 name of a county code from the region table (市辖区 and the like skipped)."""
        parts, table = [], self.region.codes
        while code in table:
            if table[code].zh not in ("市辖区", "县", "省直辖县级行政区划"):
                parts.append(table[code].zh)
            code = table[code].parent or ""
        return "".join(reversed(parts))

    def mobile(self) -> str:
        return self.rng.choice(_MOBILE) + f"{self.rng.randrange(10**8):08d}"

    def id_number(self, area: str, born: date, male: bool) -> str:
        while True:
            seq = 2 * self.rng.randrange(1, 500) - (1 if male else 0)
            first17 = f"{area}{born:%Y%m%d}{seq:03d}"
            if int(first17) not in self.used:
                self.used.add(int(first17))
                return first17 + idnumber.check_char(first17)

    def credit_code(self, dept_cat: str, prefix: str) -> str:
        while True:
            body = prefix + "".join(self.rng.choices(_ORG_CHARS, k=8 - len(prefix)))
            first17 = dept_cat + COUNTY + body + _gb11714(body)
            code = first17 + creditcode.check_char(first17)
            if code not in self.used:
                self.used.add(code)
                return code

    def name(self, male: bool, surname: str | None = None) -> str:
        rng = self.rng
        surname = surname or rng.choices(d.SURNAMES, self.surname_weights)[0]
        chars = d.MALE_CHARS if male else d.FEMALE_CHARS
        given = (
            rng.choice(chars)
            if rng.random() < 0.3
            else rng.choice(d.NEUTRAL_CHARS + chars) + rng.choice(chars)
        )
        return surname + given

    def someone(
        self, areas: tuple[list[str], list[int]], young: int, old: int
    ) -> tuple[str, str, str]:
        """(id number, name, phone) of a person who is not a resident (owner, legal rep)."""
        male = self.rng.random() < 0.6
        born = AS_OF - timedelta(days=self.rng.randint(young * 365, old * 365))
        area = self.rng.choices(*areas)[0]
        return self.id_number(area, born, male), self.name(male), self.mobile()

    def job(self, age: int) -> dict[str, str]:
        rng = self.rng
        if age < 6:
            return {}
        if age < 19 or (age < 23 and rng.random() < 0.5):
            school = rng.choice(d.SCHOOLS) if age < 19 else "杭州文澜学院"
            return {"occupation": "学生", "workplace": school}
        if age >= 60:
            return {"occupation": "离退休人员"}
        if rng.random() < 0.08:
            return {"occupation": "待业"}
        code, title, kind = rng.choice(d.JOBS)
        place = {
            "company": f"杭州{rng.choice(d.BRAND_WORDS)}{rng.choice(d.INDUSTRIES)[0]}有限公司",
            "school": rng.choice(d.SCHOOLS),
            "hospital": rng.choice(d.HOSPITALS),
            "courier": rng.choice(d.COURIERS),
            "factory": f"杭州{rng.choice(d.BRAND_WORDS)}制造有限公司",
            "shop": f"{rng.choice(d.SHOP_BRANDS)}{rng.choice(d.TRADES)[0]}",
            "": "",
        }[kind]
        return {"occupation_code": code, "occupation": title, "workplace": place}

    def person(
        self,
        age: int,
        male: bool,
        marital: str,
        surname: str | None = None,
        areas: tuple[list[str], list[int]] | None = None,
    ) -> dict:
        """The shared person block of one citizen (ID number consistent with birth and gender)."""
        rng = self.rng
        born = AS_OF - timedelta(days=age * 365 + rng.randrange(365))
        area = rng.choices(*(areas or self.local))[0]
        edu = (
            ("80" if age < 13 else "70" if age < 16 else "60")
            if age < 19
            else rng.choice(
                ("21", "21", "31", "14", "61", "71", "44") if age < 55 else ("61", "71", "81", "31")
            )
        )
        out = {
            "id_type": "111",
            "id_number": self.id_number(area, born, male),
            "name": self.name(male, surname),
            "gender": "1" if male else "2",
            "birth_date": born.isoformat(),
            "native_place": area,
            "marital_status": marital,
            "ethnicity": "01" if rng.random() < 0.95 else rng.choices(*zip(*d.MINORITIES))[0],
            "religion": "00" if rng.random() < 0.94 else rng.choice(("10", "30", "50")),
            "political_status": "01"
            if age >= 18 and rng.random() < 0.08
            else "03"
            if 14 <= age <= 28 and rng.random() < 0.4
            else "13",
            **self.job(age),
        }
        if age >= 6:
            out["education"] = edu
        if age >= 16 and rng.random() < 0.9:
            out["phone"] = self.mobile()
        return out

    # -- people ----------------------------------------------------------------------------

    def children(self, parent_age: int, n: int, rule: str) -> list[tuple[str, int, bool, str, str]]:
        """Children 22-40 years younger than the younger parent: 独生子/女, 长子/女, 次子/女 …"""
        kids = sorted(
            (
                (
                    max(0, parent_age - self.rng.randint(22, max(22, min(40, parent_age)))),
                    self.rng.random() < 0.52,
                )
                for _ in range(n)
            ),
            reverse=True,
        )
        out, order = [], {True: 0, False: 0}
        for age, male in kids:
            base = 20 if male else 30
            rel = base + 1 if n == 1 else base + 2 + order[male]
            order[male] += 1
            out.append((str(rel), age, male, "10", rule))
        return out

    def family(self) -> list[tuple[str, int, bool, str, str]]:
        """(relation, age, male, marital status, surname rule) of a household, head first."""
        rng = self.rng
        kind = rng.choices(
            ("elder", "young", "couple", "nuclear", "parents", "single", "three"),
            (20, 8, 10, 37, 12, 5, 8),
        )[0]
        if kind == "young":
            return [("02", rng.randint(22, 38), rng.random() < 0.5, "10", "own")]
        if kind == "single":
            age = rng.randint(30, 50)
            head = ("02", age, rng.random() < 0.3, rng.choice(("30", "40")), "own")
            return [head, *self.children(age, 1, "head")]
        age, male = (
            (rng.randint(62, 88), rng.random() < 0.5)
            if kind == "elder"
            else (
                (rng.randint(56, 72), True)
                if kind == "three"
                else (rng.randint(25, 50), rng.random() < 0.75)
            )
        )
        if kind == "elder" and rng.random() < 0.4:
            return [("02", age, male, "30", "own")]
        spouse = max(22, age + (rng.randint(-6, 2) if male else rng.randint(-2, 6)))
        out = [("02", age, male, "20", "own"), ("10", spouse, not male, "20", "own")]
        if kind == "three":
            son = age - rng.randint(24, 32)
            grandchild = max(0, son - rng.randint(24, 34))
            boy = rng.random() < 0.5
            out += [
                ("22", son, True, "20", "head"),
                ("38", max(22, son + rng.randint(-4, 2)), False, "20", "own"),
                ("41" if boy else "42", grandchild, boy, "10", "head"),
            ]
        elif kind in ("nuclear", "parents"):
            out += self.children(
                min(age, spouse), rng.choice((1, 1, 2)), "head" if male else "spouse"
            )
        if kind == "parents":
            both = rng.random() < 0.5
            for rel, is_father in (("51", True), ("52", False)):
                if both or is_father == (rng.random() < 0.3):
                    out.append(
                        (
                            rel,
                            min(95, age + rng.randint(23, 34)),
                            is_father,
                            "20" if both else "30",
                            "head" if is_father else "own",
                        )
                    )
        return out

    def unregistered(self, p: dict) -> None:
        """Turn a young child into a 未落户人员 with a birth certificate (出生医学证明)."""
        while (
            number := self.rng.choice("NOPQR") + f"{self.rng.randrange(10**9):09d}"
        ) in self.used:
            pass
        self.used.add(number)
        p.update(
            population_type="4",
            id_type="117",
            id_number=number,
            unregistered_reason=self.rng.choice(("出生后未申报户口登记", "父母户籍手续未办结")),
        )

    def registered(self, where: dict) -> tuple[str, str, str]:
        """A 户籍 household in a house; returns its head (id number, name, phone), the owner."""
        rng = self.rng
        self.serial += 1
        hukou, consistency, hukou_addr = COUNTY, "01", where["residence_address"]
        if rng.random() < 0.05:  # 人户不一致: registered elsewhere in the city
            hukou, consistency = rng.choice(("330105", "330102", "330108")), "02"
            hukou_addr = f"{self.place(hukou)}{rng.choice(d.ROAD_WORDS)}路{rng.randint(1, 300)}号"
        block = {
            "population_type": "1",
            "hukou_region": hukou,
            "hukou_address": hukou_addr,
            "hukou_consistency": consistency,
            "household_number": f"{330100000 + self.serial}",
        }
        surnames: dict[str, str] = {}
        for rel, age, male, marital, rule in self.family():
            p = self.person(age, male, marital, surnames.get(rule))
            if rel == "02":
                p.setdefault("phone", self.mobile())
                surnames["head"] = p["name"][0]
                block.update(
                    head_id_number=p["id_number"], head_name=p["name"], head_phone=p["phone"]
                )
                head = (p["id_number"], p["name"], p["phone"])
            elif rel == "10":
                surnames["spouse"] = p["name"][0]
            if age <= 2 and self.chance("unregistered", 0.25):
                self.unregistered(p)
            else:
                p.update(block, household_relation=rel)
            self.add("resident", {**p, **where})
        return head

    def tenants(self, where: dict) -> None:
        """流动人口 renting a flat: a worker, a couple, a family or roommates (or foreigners)."""
        rng = self.rng
        if self.chance("foreign", 0.04):
            return self.foreigners(where)
        kind = rng.choices(("single", "couple", "family", "roommates"), (40, 25, 15, 20))[0]
        age, male = rng.randint(19, 45), rng.random() < 0.6
        if kind == "roommates":
            group = [
                (rng.randint(19, 35), male, "10", rng.choice(("01", "01", "04")))
                for _ in range(rng.randint(2, 3))
            ]
        else:
            group = (
                [(max(22, age), True, "20", rng.choice(("01", "03")))]
                if kind != "single"
                else [(age, male, "10", "01")]
            )
        if kind in ("couple", "family"):
            group.append(
                (
                    max(22, group[0][0] + rng.randint(-5, 2)),
                    False,
                    "20",
                    rng.choice(("01", "05", "06")),
                )
            )
        if kind == "family":
            group.append(
                (rng.randint(0, min(14, group[1][0] - 20)), rng.random() < 0.5, "10", "06")
            )
        area, surname = rng.choices(*self.migrant)[0], None
        for i, (age, male, marital, reason) in enumerate(group):
            if kind == "roommates" or i == 0:
                area = rng.choices(*self.migrant)[0]
                home = f"{self.place(area)}{rng.choice(d.TOWN_WORDS)}镇{rng.choice(d.VILLAGE_WORDS)}村{rng.randint(1, 120)}号"
            p = self.person(age, male, marital, surname if i == 2 else None, ([area], [1]))
            surname = surname or p["name"][0]
            if age <= 6 and self.chance("unregistered", 0.3):
                self.unregistered(p)
            else:
                since = AS_OF - timedelta(days=rng.randint(15, 1400))
                p.update(
                    population_type="2",
                    hukou_region=area,
                    hukou_address=home,
                    inflow_reason=reason,
                    registered_on=since.isoformat(),
                    residence_type="02",
                )
                if age >= 16 and rng.random() < 0.8:
                    self.serial += 1
                    p.update(
                        permit_type="01" if rng.random() < 0.94 else "02",
                        permit_number=f"{COUNTY}{since.year}{self.serial:08d}",
                        permit_expires=(since + timedelta(days=1095)).isoformat(),
                    )
            self.add("resident", {**p, **where})
        return None

    def foreigners(self, where: dict) -> None:
        """境外人员: one person or a couple from the same country, on passports (414)."""
        rng = self.rng
        country, prefix, surnames, givens = rng.choice(d.FOREIGNERS)
        purpose, job, workplace = rng.choice(d.FOREIGN_JOBS)
        lead, size = rng.random() < 0.6, 2 if rng.random() < 0.3 else 1
        family = rng.choice(surnames)
        for i in range(size):
            male = lead if i == 0 else not lead
            surname = family if i == 0 or country not in ("KOR", "VNM") else rng.choice(surnames)
            given = rng.choice([g for g in givens if g[2] == male])
            zh = (
                surname[1] + given[1]
                if country in ("KOR", "JPN", "VNM")
                else f"{given[1]}·{surname[1]}"
            )
            while (number := prefix + f"{rng.randrange(10**9):09d}"[len(prefix) :]) in self.used:
                pass
            self.used.add(number)
            p = {
                "population_type": "3",
                "id_type": "414",
                "id_number": number,
                "name": zh,
                "gender": "1" if male else "2",
                "foreign_surname": surname[0],
                "foreign_given_name": given[0],
                "birth_date": (AS_OF - timedelta(days=rng.randint(22 * 365, 58 * 365))).isoformat(),
                "nationality": country,
                "marital_status": "20" if size == 2 else "10",
                "education": "21",
                "id_valid_until": (AS_OF + timedelta(days=rng.randint(200, 3000))).isoformat(),
                "visit_purpose": purpose if i == 0 else "05",
                "phone": self.mobile(),
                "arrived_on": (AS_OF - timedelta(days=rng.randint(30, 1500))).isoformat(),
                "expected_departure": (AS_OF + timedelta(days=rng.randint(30, 900))).isoformat(),
            }
            if i == 0:
                p.update(occupation=job, workplace=workplace)
            self.add("resident", {**p, **where})

    # -- houses, units, buildings ----------------------------------------------------------

    def owner(self, rental: bool) -> tuple[str, str, str]:
        if rental and self.landlords and self.rng.random() < 0.5:
            return self.rng.choice(self.landlords)
        return self.someone(self.local, 30, 75)

    def house(self, hid: str, addr: dict, grid: str, use: str) -> None:
        """A house (use: home, shop or office) with its owner and its occupants."""
        rng, home = self.rng, use == "home"
        area = round(rng.uniform(45, 140) if home else rng.uniform(30, 120), 2)
        house = {
            "house_code": "F" + addr["address_code"],
            "address_ref": addr["id"],
            "grid": grid,
            "address_text": addr["full_address"],
            "building": addr["building"],
            "unit_no": addr["unit_no"],
            "room": addr["room"],
            "house_category": "01",
            "ownership_type": rng.choices(("01", "05", "03"), (90, 7, 3))[0],
            "deed_number": f"浙（{rng.randint(2016, 2025)}）杭州市不动产权第{rng.randrange(10**7):07d}号",
            "building_use": "02" if use == "shop" else "01",
            "structure": addr["structure"],
            "floor_area": area,
            "rooms": min(5, 1 + int(area // 35)) if home else 1,
            "hazard": "00",
            "location": addr["location"],
        }
        where = {
            "residence_region": COUNTY,
            "residence_address": addr["full_address"],
            "house_ref": hid,
            "grid": grid,
        }
        r = rng.random()
        rental = use == "office" or (r < 0.8 if use == "shop" else 0.07 <= r < 0.30)
        if not home or r < 0.30:  # shop, office, vacant or let: the owner lives elsewhere
            owner = (
                self.landlords[rng.randrange(len(self.landlords))]
                if (rental and self.landlords and rng.random() < 0.5)
                else self.someone(self.local, 30, 75)
            )
            if home and rental:
                self.tenants(where)
        else:
            owner = self.registered(where)
            slot = len(self.landlords) if len(self.landlords) < 500 else rng.randrange(500)
            self.landlords[slot : slot + 1] = [owner]
        house.update(
            is_rental=rental,
            owner_id_type="111",
            owner_id_number=owner[0],
            owner_name=owner[1],
            owner_phone=owner[2],
        )
        if rental:
            since = AS_OF - timedelta(days=rng.randint(30, 2500))
            house.update(
                rental_use={"home": "02", "shop": "03", "office": "04"}[use],
                rental_area=area,
                rental_rooms=house["rooms"],
                rent=float(rng.randint(15, 80) * 100),
                rental_since=since.isoformat(),
                security_contact=owner[1],
                pledge_date=since.isoformat(),
            )
        self.add("house", house, rid=hid)

    def unit(self, kind: str, hid: str, addr: dict, grid: str, names: tuple[str, str]) -> None:
        """A unit in a shop: 9/1 enterprise, 9/2 个体, 9/3 合作社, 5/x social org, N, Y."""
        rng = self.rng
        rep = self.someone(self.local if rng.random() < 0.6 else self.migrant, 25, 62)
        brand = rng.choice(d.BRAND_WORDS)
        u = {
            "address_text": addr["full_address"],
            "house_ref": hid,
            "grid": grid,
            "location": addr["location"],
            "opened_on": (AS_OF - timedelta(days=rng.randint(60, 4000))).isoformat(),
            "hazard": "00",
            "is_hazardous_chemicals": False,
            "attention_level": "03",
            "legal_rep_id_type": "111",
            "legal_rep_id_number": rep[0],
            "legal_rep_name": rep[1],
            "legal_rep_phone": rep[2],
            "phone": f"0571-8{rng.randrange(10**7):07d}",
            "party_conditions": False,
            "has_party_org": False,
        }
        if kind == "92":
            trade, scope = rng.choice(d.TRADES)
            u.update(
                name=f"杭州市西湖区{rng.choice(d.SHOP_BRANDS)}{trade}",
                unit_kind="2",
                unit_category="03",
                employees=rng.randint(1, 5),
                business_scope=scope,
                phone=rep[2],
            )
        elif kind in ("91", "93"):
            industry, scope = (
                rng.choice(d.INDUSTRIES)
                if kind == "91"
                else ("茶叶专业合作社", "茶叶种植、加工、销售")
            )
            u.update(
                name=f"杭州{brand}{industry}" + ("有限公司" if kind == "91" else ""),
                unit_kind="1",
                unit_category="04" if kind == "93" else rng.choices(("01", "02"), (95, 5))[0],
                employees=rng.randint(3, 60),
                business_scope=scope,
            )
        elif kind in ("51", "52"):
            comm = names[0]
            u.update(
                name=f"杭州市西湖区{d.STREET_NAME}{comm}志愿者协会"
                if kind == "51"
                else f"杭州市西湖区{comm}居家养老服务中心",
                unit_kind="3",
                social_org_type="01" if kind == "51" else "02",
                registration_authority="杭州市西湖区民政局",
                approved_on=u["opened_on"],
                status="01",
                office_address=addr["full_address"],
                funding_source="政府购买服务、社会捐赠",
                has_foreign_background=False,
                employees=rng.randint(2, 12),
                business_scope="社区公益服务",
            )
        else:  # N2 股份经济合作社 (农业), Y1 业主委员会 (其他)
            u.update(
                name=f"杭州市西湖区{d.STREET_NAME}{names[0]}股份经济合作社"
                if kind == "N2"
                else f"{names[1]}业主委员会",
                unit_kind="9",
                unit_category="99",
                employees=rng.randint(3, 9),
                business_scope="集体资产经营管理" if kind == "N2" else "业主自治管理",
            )
        u["credit_code"] = self.credit_code(
            kind, {"51": "MJ", "52": "MJ", "N2": "MF", "Y1": "MH"}.get(kind, "MA2")
        )
        if kind in ("51", "52"):
            u["registration_number"] = u["credit_code"]
        self.add("unit", u)

    def building(self, ctx: dict, b: int, spec: _Spec, loc: dict, specials: list[str]) -> None:
        """A building's addresses (50, 61 per stair, 62 per room), houses, people and shops."""
        rng, grid = self.rng, ctx["grid"]
        structure = "3" if spec.floors > 7 else rng.choice("34")
        name = f"{b}栋"
        code = f"{grid}{b:03d}"
        self.address(ctx, code + "0" * 7, "50", ctx["detail"] + name, name, loc)
        for u in range(1, spec.units + 1):
            self.address(
                ctx, f"{code}{u:02d}00000", "61", f"{ctx['detail']}{name}{u}单元", name, loc
            )
            for floor in range(1, spec.floors + 1):
                for r in range(1, spec.per_floor + 1):
                    room = f"{floor}{r:02d}"
                    use = (
                        "shop"
                        if spec.shops and floor == 1
                        else "office"
                        if rng.random() < 0.01
                        else "home"
                    )
                    detail = f"{ctx['detail']}{name}{u}单元{room}室"
                    addr = self.address(
                        ctx, f"{code}{u:02d}{floor:03d}{r:02d}", "62", detail, name, loc
                    )
                    addr.update(unit_no=f"{u}单元", room=room, structure=structure)
                    hid = self.new_id()
                    self.house(hid, addr, grid, use)
                    if use != "home":
                        kind = (
                            specials.pop(0)
                            if specials and use == "shop"
                            else "91"
                            if use == "office"
                            else rng.choices(("92", "91", "93"), (65, 30, 5))[0]
                        )
                        self.unit(kind, hid, addr, grid, (ctx["community_name"], ctx["compound"]))

    def address(
        self, ctx: dict, code: str, element: str, detail: str, building: str | None, loc: dict
    ) -> dict:
        data = {
            **ctx["base"],
            "address_code": code,
            "element_type": element,
            "detail_address": detail,
            "full_address": COUNTY_NAME + detail,
            "location": loc,
        }
        if building:
            data["building"] = building
        rid = self.add("address", data, draftable=False)
        return {**data, "id": rid}

    def run(self, size: int) -> None:
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
            cname = (
                ("", "新", "东", "西", "南", "北")[c // len(words) % 6]
                + words[c % len(words)]
                + "社区"
            )
            ccode = f"{COUNTY}{d.STREET_CODE}{c + 1:03d}"
            self.communities.append((ccode, cname))
            roads = [w + rng.choice(d.ROAD_SUFFIXES) for w in rng.sample(d.ROAD_WORDS, 3)]
            specials = ["52", "51", "Y1"] + (["N2"] if c == 0 else [])
            for g, buildings in enumerate(comm):
                i, j = (c % cols) * w + g % w, (c // cols) * h + g // w
                quad = [vertex[i, j], vertex[i + 1, j], vertex[i + 1, j + 1], vertex[i, j + 1]]
                gcode = f"{ccode}{g + 1:03d}"
                self.pending.append(
                    Grid(
                        gcode,
                        f"{cname}第{g + 1}网格",
                        ccode,
                        cname,
                        "1",
                        quad,
                        self.name(rng.random() < 0.4),
                    )
                )
                road, door = roads[g % 3], 10 * (g // 3 + 1) + rng.choice((0, 2, 4, 6, 8))
                compound = rng.choice(d.ROAD_WORDS) + rng.choice(d.COMPOUND_SUFFIXES)
                detail = f"{d.STREET_NAME}{cname}{road}{door}号{compound}"
                base = {
                    "region": COUNTY,
                    "community_code": ccode,
                    "community_name": cname,
                    "grid": gcode,
                    "street": road,
                    "door_number": f"{door}号",
                    "in_use": True,
                }
                ctx = {
                    "grid": gcode,
                    "detail": detail,
                    "base": base,
                    "community_name": cname,
                    "compound": compound,
                }
                self.address(ctx, gcode + "0" * 10, "42", detail, None, _quad_point(quad, 0.5, 0.5))
                cols_b = math.ceil(math.sqrt(len(buildings)))
                rows_b = math.ceil(len(buildings) / cols_b)
                for k, spec in enumerate(buildings):
                    u = 0.15 + 0.7 * (k % cols_b + 0.5) / cols_b
                    v = 0.15 + 0.7 * (k // cols_b + 0.5) / rows_b
                    self.building(ctx, k + 1, spec, _quad_point(quad, u, v), specials)
                    if sum(map(len, self.rows.values())) >= BATCH and not self.flush():
                        return
        if (any(self.rows.values()) or self.pending) and not self.flush():
            return
        if self.progress is not None:
            self.progress(self.done, self.done)


def generate(
    store: Store,
    size: int = 500,
    seed: int = 7,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> DemoSummary:
    """Fill an empty store with the demo street office of about ``size`` records.

    ``progress(done, total)`` is called after each batch (``total`` is an estimate until the
    last call, where it equals ``done``); ``cancel()`` is asked before each batch.
    """
    if size < 1:
        raise ValueError("size must be at least 1")
    if store.count() > 0:
        raise ValueError("演示数据只能写入空的数据库 / the demo community needs an empty store")
    demo = _Demo(store, seed, progress, cancel)
    demo.run(size)
    return DemoSummary(dict(demo.counts), demo.grids, demo.communities, demo.drafts, demo.cancelled)
