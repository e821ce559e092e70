"""The demo platform: the app's fictional demo street office (``app.core.demo``) loaded into a
platform database, with users to log in as, so the console has something to show.

Records go through the push path (``Service.apply``) as the pseudo-device ``demo``, like base
data, so counters, history, natural keys and the duplicate index are all real. Grids keep
their demo boundaries. Users: ``admin``, one supervisor per community (``sup-<community>``)
and one worker per grid (``w-<grid>``), all with the given password.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.core import demo
from app.core.store import Store
from sync import protocol as p
from sync.merge import STATUS
from sync.server import admin, auth
from sync.server.service import Service

DEVICE = "demo"
BATCH = 500


@dataclass
class DemoPlatform:
    records: int
    communities: list[str]
    grids: list[str]
    users: list[str]


def load_demo(service: Service, password: str, size: int = 600, seed: int = 7) -> DemoPlatform:
    """Fill an empty platform with the demo community (see the module doc)."""
    with tempfile.TemporaryDirectory(prefix="gc-demo-") as tmp:
        store = Store(Path(tmp) / "demo.sqlite", service.formset)
        try:
            demo.generate(store, size=size, seed=seed)
            grids = store.grids()
            rows = store.live_rows()
        finally:
            store.close()
    engine = service.engine
    for code, name in {(g.community_code, g.community_name) for g in grids}:
        admin.put_community(engine, code, name)
    for g in grids:
        admin.put_grid(engine, g.code, g.name, g.community_code, g.level)
        if g.polygon:
            admin.set_boundary(engine, g.code, [list(pt) for pt in g.polygon])
    users = ["admin"]
    admin.put_user(engine, "admin", password, "admin")
    for community in sorted({g.community_code for g in grids}):
        admin.put_user(engine, f"sup-{community}", password, "supervisor", community=community)
        users.append(f"sup-{community}")
    for g in grids:
        admin.put_user(engine, f"w-{g.code}", password, "worker", grids=[g.code])
        users.append(f"w-{g.code}")
    order = {form: i for i, form in enumerate(demo.FORMS)}  # referenced before referrers
    rows.sort(key=lambda r: order.get(r[1], len(order)))
    user = auth.User(DEVICE, "admin", None, None, DEVICE)
    stamp = auth.iso(auth.now()) + "#0000"
    ops = [
        p.Op(
            op_id=f"demo:{rid}",
            record_id=rid,
            form=form,
            kind="create",
            fields={**json.loads(data), STATUS: status},
            edited_at=stamp,
            author=DEVICE,
        )
        for rid, form, data, status in rows
    ]
    for start in range(0, len(ops), BATCH):
        service.apply(user, DEVICE, ops[start : start + BATCH])
    return DemoPlatform(
        len(ops),
        sorted({g.community_code for g in grids}),
        [g.code for g in grids],
        users,
    )
