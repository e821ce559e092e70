"""One demo run's state: the random stream, the row buffers written batch by batch, and the
small random pieces (names, phones, ID numbers, credit codes) the people and the street use."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import date, timedelta

from app.core import creditcode, idnumber
from app.core.demo import data as d
from app.core.demo.plan import (
    AS_OF,
    AUTHOR,
    COUNTY,
    DRAFT_DROPS,
    DRAFT_SHARE,
    FORMS,
    ORG_SYMBOLS,
    UNITS,
    Ids,
    Weighted,
    Who,
    gb11714,
)
from app.core.store import Grid, Store


class Run:
    """One run: the random stream, the row buffers and what was written."""

    def __init__(self, store: Store, seed: int) -> None:
        self.store, self.rng, self.new_id = store, random.Random(seed), Ids(seed)
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
        prefix = UNITS[kind][2]
        body = self.unique(
            lambda: prefix + "".join(self.rng.choices(ORG_SYMBOLS, k=8 - len(prefix)))
        )
        first17 = kind + COUNTY + body + gb11714(body)
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
