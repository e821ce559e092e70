"""The demo's street office: communities, grids, buildings, houses and units, laid out and
written batch by batch; ``generate`` is the entry point."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

from app.core.demo import data as d
from app.core.demo.people import People
from app.core.demo.plan import (
    CELL,
    COUNTY,
    COUNTY_NAME,
    JITTER,
    ORIGIN,
    UNITS,
    DemoSummary,
    Spec,
    day,
    quad_point,
    street_plan,
    who_fields,
)
from app.core.store import Grid, Store

BATCH = 5000  # records per transaction


class Street(People):
    """A run that lays out the street office and writes it (``run``)."""

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
        house.update(is_rental=rental, **who_fields("owner_", owner))
        if rental:
            rent = float(rng.randint(15, 80) * 100)
            house.update(rental_use={"home": "02", "shop": "03", "office": "04"}[use], rent=rent,
                         rental_rooms=rooms, rental_since=day(-rng.randint(30, 2500)))  # fmt: skip
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
        unit_kind, category, _ = UNITS[kind]
        name, scope = self.unit_name(kind, addr)
        rep = self.someone(d.LOCAL_AREAS if rng.random() < 0.6 else d.MIGRANT_AREAS, 25, 62)
        unit = {"credit_code": self.credit_code(kind), "name": name, "unit_kind": unit_kind,
                "address_text": addr["full_address"], "house_ref": hid, "grid": addr["grid"],
                "phone": rep[2] if kind == "92" else f"0571-8{rng.randrange(10**7):07d}",
                "employees": rng.randint(1, 5) if kind == "92" else rng.randint(3, 60),
                "business_scope": scope, "opened_on": day(-rng.randint(60, 4000)),
                "location": addr["location"], **who_fields("legal_rep_", rep)}  # fmt: skip
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

    def building(self, ctx: dict, b: int, spec: Spec, loc: dict, specials: list[str]) -> None:
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
        plan, estimate = street_plan(rng, size)
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
                    ctx, gcode + "0" * 10, "42", detail, location=quad_point(quad, 0.5, 0.5)
                )
                across = math.ceil(math.sqrt(len(buildings)))
                down = math.ceil(len(buildings) / across)
                for k, spec in enumerate(buildings):
                    u, v = (k % across + 0.5) / across, (k // across + 0.5) / down
                    loc = quad_point(quad, 0.15 + 0.7 * u, 0.15 + 0.7 * v)
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
    demo = Street(store, seed)
    demo.progress, demo.cancel = progress, cancel
    demo.run(size)
    return DemoSummary(dict(demo.counts), demo.grids, demo.communities, demo.drafts, demo.cancelled)
