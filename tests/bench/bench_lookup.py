"""Exact ID lookup and fuzzy duplicate candidates on a large demo store.

Usage: python tests/bench/bench_lookup.py [--size 1630000] [--data /tmp/gc-bench-1630000]
The store is generated once and reused (it takes minutes at full size). Prints per-call
p50/p95 in ms for: a primary-key read (baseline), exact natural-key lookup, fuzzy candidates.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core import dedup  # noqa: E402
from app.core.demo import generate  # noqa: E402
from app.core.forms import load_formset  # noqa: E402
from app.core.store import Store  # noqa: E402
from tests.bench.common import median, percentile  # noqa: E402


def demo_store(size: int, data: Path) -> Store:
    """Open the cached demo store for ``size``, generating it the first time."""
    data.mkdir(parents=True, exist_ok=True)
    path = data / "gridcollect.sqlite"
    fresh = not path.exists()
    store = Store(path, load_formset())
    if fresh:
        start = time.perf_counter()
        generate(store, size=size, seed=7)
        print(f"generated {store.count()} records in {time.perf_counter() - start:.0f} s")
    return store


def per_call_ms(fn, args_list) -> list[float]:  # noqa: ANN001
    times = []
    for args in args_list:
        start = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1_630_000)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    store = demo_store(args.size, args.data or Path(f"/tmp/gc-bench-{args.size}"))
    rng = random.Random(3)
    total = store.count("resident")
    top = store.conn.execute("SELECT max(rid) FROM records").fetchone()[0]
    sample: list[str] = []
    while len(sample) < args.calls:
        row = store.conn.execute(
            "SELECT id FROM records WHERE rid = ? AND form = 'resident'",
            (rng.randrange(1, top + 1),),
        ).fetchone()
        if row:
            sample.append(row[0])
    records = [store.get(i) for i in sample]
    base = per_call_ms(store.get, [(i,) for i in sample])
    exact = per_call_ms(
        lambda d: dedup.exact_matches(store, "resident", d), [(r.data,) for r in records]
    )
    fuzzy = per_call_ms(
        lambda d: dedup.fuzzy_candidates(store, "resident", d), [(r.data,) for r in records]
    )
    print(f"residents in store                 {total}")
    for name, values in (
        ("primary-key read (baseline)", base),
        ("exact ID lookup", exact),
        ("fuzzy candidates", fuzzy),
    ):
        print(f"{name:<34} p50 {median(values):6.2f} ms   p95 {percentile(values, 0.95):6.2f} ms")
    print(
        f"ratio exact/baseline (p50)         {median(exact) / median(base):.2f}   (aim: exact <= 2 ms)"
    )
    print(
        f"ratio fuzzy/baseline (p50)         {median(fuzzy) / median(base):.2f}   (aim: fuzzy <= 50 ms)"
    )


if __name__ == "__main__":
    main()
