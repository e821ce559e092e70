"""What encrypting the device store costs: import, search p95 and pull, plaintext against
SQLCipher-encrypted, in the same run (prints; asserts nothing).

Usage: python tests/bench/bench_encryption.py [--rows 50000] [--demo 100000] [--pull 50000]
                                              [--rounds 2]

Both sides run the same code and the same SQLite (the sqlcipher3 build): the plaintext store is
opened without a key, the encrypted one has a key file beside it (``app.core.vault``), so the
difference is the page encryption alone. Rounds alternate which side goes first. The slow
passphrase derivation happens before the timed part (it is the start-up cost, measured by
``bench_startup.py``). The issue's aim: encryption costs <= 25 % on each.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.forms import FormSet, load_formset  # noqa: E402
from app.core.store import Store  # noqa: E402
from app.core.transfer import import_file  # noqa: E402
from app.core.vault import encrypt, keys  # noqa: E402
from tests.bench.bench_search import sample_people, typed_prefixes  # noqa: E402
from tests.bench.common import percentile, resident_rows, write_csv  # noqa: E402

PASSPHRASE = "bench passphrase for encryption"
SIDES = ("plain", "encrypted")


def new_store(path: Path, side: str, formset: FormSet) -> Store:
    """A fresh store; keyed when ``side`` is "encrypted"."""
    if side == "encrypted":
        keys.setup(path, PASSPHRASE)
    return Store(path, formset)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def order(round_no: int) -> tuple[str, ...]:
    return SIDES if round_no % 2 == 0 else SIDES[::-1]


def bench_import(root: Path, formset: FormSet, rows: int, rounds: int) -> dict[str, float]:
    csv_path = write_csv(root / "residents.csv", resident_rows(rows))
    seconds: dict[str, list[float]] = {s: [] for s in SIDES}
    for r in range(rounds):
        for side in order(r):
            store = new_store(root / f"import-{side}-{r}.sqlite", side, formset)
            seconds[side].append(
                timed(lambda s=store: import_file(csv_path, formset.form("resident"), s))
            )
            store.close()
    return {s: statistics.median(v) for s, v in seconds.items()}


def build_demo(root: Path, formset: FormSet, size: int) -> dict[str, Path]:
    from app.core.demo import generate

    made = root / "demo-made.sqlite"
    store = Store(made, formset)
    generate(store, size=size, seed=7)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # both sides are rewritten copies (sqlcipher_export compacts like VACUUM does), so the
    # comparison is encryption alone, not a fresh file against a grown one
    plain = root / "demo-plain" / "gridcollect.sqlite"
    plain.parent.mkdir()
    store.conn.execute("VACUUM INTO ?", (str(plain),))
    store.close()
    enc = root / "demo-enc" / "gridcollect.sqlite"
    enc.parent.mkdir()
    shutil.copy(made, enc)
    encrypt.encrypt_in_place(enc, keys.setup(enc, PASSPHRASE))
    return {"plain": plain, "encrypted": enc}


def bench_search(stores: dict[str, Path], formset: FormSet, rounds: int) -> dict[str, float]:
    opened = {side: Store(path, formset) for side, path in stores.items()}
    queries = [
        prefix
        for person in sample_people(opened["plain"], 12, 7)
        for text in person.values()
        if text
        for prefix in typed_prefixes(text)
    ]
    ms: dict[str, list[float]] = {s: [] for s in SIDES}
    for r in range(rounds):
        for query in queries:
            for side in order(r):
                ms[side].append(1000 * timed(lambda q=query, s=opened[side]: s.search(q)))
    for store in opened.values():
        store.close()
    return {s: percentile(v, 0.95) for s, v in ms.items()}


def bench_pull(root: Path, formset: FormSet, count: int, rounds: int) -> dict[str, float]:
    from sync.server import admin
    from sync.server.db import make_engine
    from sync.session import SyncSession
    from tests.bench.bench_sync import (
        GRID,
        PASSWORD,
        ServerProcess,
        device,
        residents,
        seed_server,
        seeded_template,
    )

    db_path = seeded_template(root / "platform.db", formset)
    engine = make_engine(f"sqlite:///{db_path}")
    admin.put_user(engine, "bench", PASSWORD, "worker", grids=[GRID])
    admin.put_user(engine, "root", PASSWORD, "admin")
    engine.dispose()
    seed_server(db_path, formset, residents(count, 10**6))
    served = ServerProcess(db_path)
    seconds: dict[str, list[float]] = {s: [] for s in SIDES}
    try:
        for r in range(rounds):
            for side in order(r):
                path = root / f"pull-{side}-{r}.sqlite"
                if side == "encrypted":
                    keys.setup(path, PASSPHRASE)
                store, client = device(served.url, path, formset)
                summary = SyncSession(store, client, chunk=1000).run()
                store.close()
                client.close()
                assert summary.pulled >= count, summary
                seconds[side].append(summary.duration_s)
    finally:
        served.stop()
    return {s: statistics.median(v) for s, v in seconds.items()}


def report(label: str, figures: dict[str, float], unit: str) -> None:
    cost = figures["encrypted"] / figures["plain"] - 1
    print(
        f"{label:<22} plain {figures['plain']:9.3f} {unit}   encrypted "
        f"{figures['encrypted']:9.3f} {unit}   cost {cost:+6.1%}   (aim <= +25 %)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows imported per side")
    parser.add_argument("--demo", type=int, default=100_000, help="demo store size for search")
    parser.add_argument("--pull", type=int, default=50_000, help="records pulled per side")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    formset = load_formset()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        report(f"import {args.rows:,}", bench_import(root, formset, args.rows, args.rounds), "s")
        stores = build_demo(root, formset, args.demo)
        report(f"search p95 ({args.demo:,})", bench_search(stores, formset, args.rounds), "ms")
        report(f"pull {args.pull:,}", bench_pull(root, formset, args.pull, args.rounds), "s")


if __name__ == "__main__":
    main()
