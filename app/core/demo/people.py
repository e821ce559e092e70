"""The demo's people: households with GB/T 4761 relations, registered residents, migrant
tenants, foreigners and unregistered children, with jobs and schools."""

from __future__ import annotations

from datetime import timedelta

from app.core.demo import data as d
from app.core.demo.plan import AS_OF, COUNTY, Member, Weighted, Who, day, who_fields
from app.core.demo.run import Run


class People(Run):
    """A run that can make people (see ``street.Street`` for where they live)."""

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
                block.update(who_fields("head_", head, id_type=False))
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
                 "birth_date": day(-rng.randint(22 * 365, 58 * 365)),
                 "foreign_surname": surname[0], "foreign_given_name": given[0],
                 "marital_status": "20" if size == 2 else "10", "education": "21",
                 "id_valid_until": day(rng.randint(200, 3000)),
                 "arrived_on": day(-rng.randint(30, 1500)),
                 "expected_departure": day(rng.randint(30, 900)), "phone": self.mobile(),
                 "visit_purpose": purpose if i == 0 else "05"}  # fmt: skip
            if i == 0:
                p.update(occupation=job, workplace=workplace)
            self.add("resident", {**p, **where})
