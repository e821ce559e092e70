"""The demo community: a fictional street office to try GridCollect on, 300 to 1.63 M records.

One street office (清溪街道, fictional, in 杭州市西湖区 330106) with communities, grids (quads of
one jittered lattice, so grids never overlap), compounds, buildings, houses with owners and
rentals, households with GB/T 4761 relations, migrant tenants, a few foreigners and unregistered
children, and ground-floor units with valid credit codes (9/1, 9/2, 9/3, 5/1, 5/2, N, Y).

Deterministic: data *and* record ids follow from ``seed`` alone (one ``random.Random``, dates
relative to ``AS_OF``, never the wall clock). Ids are UUIDv7-shaped and time-ordered from
``AS_OF``; only the store's own bookkeeping (created_at, history, outbox) uses the real clock.

Fast: nothing is validated here (the tests validate every record); rows go to
``Store.insert_many`` in batches of about ``street.BATCH`` records, one transaction per batch, with
addresses before houses before residents and units, so every batch is self-consistent.
``cancel`` is asked before each batch: a cancelled run keeps the whole batches already written
(no dangling references) and reports ``cancelled=True``.

Modules: ``plan`` (the frame: date, place, layout of communities, grids and buildings), ``run``
(the random stream and row buffers), ``people`` (households, tenants, foreigners), ``street``
(houses, units, buildings and ``generate``) and ``data`` (the word lists).
"""

from __future__ import annotations

from app.core.demo.plan import AS_OF, COUNTY, COUNTY_NAME, FORMS, DemoSummary
from app.core.demo.street import generate

__all__ = ["AS_OF", "COUNTY", "COUNTY_NAME", "FORMS", "DemoSummary", "generate"]
