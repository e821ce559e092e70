"""The floor under a push of 10 k new residents (issue 17): what SQLite alone costs the server.

Usage: python tests/bench/bench_push_floor.py [--push 10000] [--pouchdb] [--profile FILE]
    [--tables] [--indexes]

Pushes ``--push`` new residents from a device store to the platform server in its own process,
as ``bench_sync.py``'s anchor does, and measures the server's CPU. Then it pushes the same
residents to a second fresh platform whose server records every statement it runs, with its
values and transaction boundaries (``tests/bench/sqlcapture.py``), and replays them on a third
fresh copy with plain ``sqlite3``: SQLite's share of the push, the floor that no Python-side
work of the server can beat. The replayed platform's row counts are compared with the captured
one's, so a statement the capture missed would show. With ``--pouchdb`` it also runs
``../shared/bench/pouchdb/run.sh`` in the same run and prints the time a push 3x faster than
PouchDB's would take, next to the floor. ``--profile FILE``: py-spy samples the first server
during its push (raw stacks, for ``py-spy``'s ``--format raw`` readers; summed by
``--top``). ``--tables``: each table's inserts replayed alone (CPU); ``--indexes``: the whole
replay again without each index the push's inserts maintain (what that index costs). It prints
figures; it never asserts.
"""

from __future__ import annotations

import argparse
import collections
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.forms import load_formset  # noqa: E402
from tests.bench import sqlcapture  # noqa: E402
from tests.bench.bench_import import measured  # noqa: E402
from tests.bench.bench_sync import (  # noqa: E402
    CLIENT_CPU,
    ServerProcess,
    platform_db,
    pouchdb_anchor,
    push_run,
    residents,
)


def copy_db(src: Path, dst: Path) -> Path:
    """A copy of a SQLite file, its WAL included (the backup API)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return dst


def counts(db: Path) -> dict[str, int]:
    """Rows per table (what the replay must reproduce)."""
    conn = sqlite3.connect(db)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    out = {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    conn.close()
    return out


def spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` (with its idle threads left out) into ``out``, raw stacks."""
    spy_bin = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [str(spy_bin), "record", "--gil", "-p", str(pid), "-r", "200", "--format", "raw"]
        + ["-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def top(raw: Path, count: int) -> None:
    """The functions with most samples in ``raw`` (py-spy raw stacks), inclusive and self."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = [f.split(" (")[0] for f in stack.split(";")]
        n = int(samples)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"  py-spy: {total} samples of the server's push")
    for label, counter in (("inclusive", inclusive), ("self", own)):
        for name, n in counter.most_common(count):
            print(f"    {label:<9} {100 * n / total:5.1f} %  {name}")


def insert_table(sql: str) -> str | None:
    """The table an INSERT statement writes (None for other statements)."""
    found = re.match(r'\s*INSERT\s+(?:OR\s+\w+\s+)?INTO\s+"?(\w+)"?', sql, re.IGNORECASE)
    return found.group(1) if found else None


def replay_cpu(
    steps: list[sqlcapture.Step],
    db: Path,
    only: Callable[[str], bool] | None = None,
    setup: Sequence[str] = (),
) -> float:
    """CPU seconds of one replay of ``steps`` on ``db`` (``sqlcapture.replay``'s options)."""
    return measured(lambda: sqlcapture.replay(steps, db, only, setup))[1]


def shares(steps: list[sqlcapture.Step], base: Path, root: Path) -> list[tuple[str, float]]:
    """CPU seconds of each table's inserts replayed alone, most first."""
    tables = sorted({t for sql, _p, _m in steps if (t := insert_table(sql))})
    out = []
    for table in tables:
        db = copy_db(base, root / f"t-{table}.db")
        out.append((table, replay_cpu(steps, db, only=lambda sql, t=table: insert_table(sql) == t)))
    return sorted(out, key=lambda x: -x[1])


def index_costs(steps: list[sqlcapture.Step], base: Path, root: Path) -> list[tuple[str, float]]:
    """CPU seconds of the whole replay without each index of the tables the push inserts
    into, as (index, seconds); the first entry is the replay with all of them."""
    tables = {t for sql, _p, _m in steps if (t := insert_table(sql))}
    with sqlite3.connect(base) as conn:
        names = [
            name
            for name, table in conn.execute(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
            if table in tables
        ]
    out = [("(all indexes)", replay_cpu(steps, copy_db(base, root / "i.db")))]
    for name in sorted(names):
        db = copy_db(base, root / f"i-{name}.db")
        out.append((name, replay_cpu(steps, db, setup=[f'DROP INDEX "{name}"'])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--push", type=int, default=10_000)
    parser.add_argument("--pouchdb", action="store_true", help="run the PouchDB anchor too")
    parser.add_argument("--profile", type=Path, help="py-spy raw stacks of the first push")
    parser.add_argument("--top", type=int, default=25, help="functions printed from --profile")
    parser.add_argument("--tables", action="store_true", help="each table's inserts alone")
    parser.add_argument("--indexes", action="store_true", help="the replay without each index")
    args = parser.parse_args()
    formset = load_formset()
    rows = residents(args.push, 0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = platform_db(root / "base.db", formset)
        served = ServerProcess(copy_db(base, root / "p1.db"))
        try:
            sampler = spy(served.proc.pid, args.profile) if args.profile else None
            cpu = served.cpu_s()
            push = push_run(served.url, root / "d1.sqlite", formset, rows)
            server_cpu = served.cpu_s() - cpu
            if sampler is not None:
                sampler.send_signal(signal.SIGINT)
                sampler.wait(60)
        finally:
            served.stop()
        capture, captured = root / "steps.pickle", copy_db(base, root / "p2.db")
        served = ServerProcess(captured, env={"GC_BENCH_CAPTURE": str(capture)})
        try:
            push_run(served.url, root / "d2.sqlite", formset, rows)
        finally:
            served.stop()
        steps = sqlcapture.load(capture)
        replayed = copy_db(base, root / "p3.db")
        floor_wall, floor_cpu = measured(lambda: sqlcapture.replay(steps, replayed))
        want, got = counts(captured), counts(replayed)
        differ = {t: (n, got.get(t)) for t, n in want.items() if got.get(t) != n}
        alone = shares(steps, base, root) if args.tables else []
        without = index_costs(steps, base, root) if args.indexes else []
    pouch = pouchdb_anchor(args.push) if args.pouchdb else None
    n = args.push
    client_cpu = CLIENT_CPU.get(id(push), float("nan"))
    print(f"push of {n} new residents, platform on SQLite, server in its own process")
    print(
        f"  push wall                  {push.duration_s:6.2f} s  {n / push.duration_s:8,.0f} rec/s"
    )
    print(f"  server CPU                 {server_cpu:6.2f} s  (device CPU {client_cpu:.2f} s)")
    print(
        f"  SQL floor (replay)         {floor_cpu:6.2f} s CPU, {floor_wall:.2f} s wall: "
        f"{len(steps)} steps, {floor_cpu / server_cpu:.2f} of the server's CPU"
    )
    print(f"  rows that differ after the replay: {differ or 'none'}")
    if isinstance(pouch, dict):
        pouch_rate = float(pouch["push_docs_per_s"])
        budget = n / (3 * pouch_rate)
        print(
            f"  PouchDB push {pouch_rate:,.0f} docs/s: a push 3x faster takes {budget:.2f} s; "
            f"the SQL floor alone is {floor_cpu / budget:.2f} of it, the server's CPU "
            f"{server_cpu / budget:.2f}"
        )
    elif pouch is not None:
        print(f"  {pouch}")
    for table, cpu in alone:
        print(f"  {table + ' inserts alone':<31}{cpu:6.3f} s CPU")
    if without:
        whole = without[0][1]
        print(f"  replay with every index    {whole:6.3f} s CPU; without one of them:")
        for name, cpu in without[1:]:
            print(f"    {name:<33}{cpu:6.3f} s CPU ({cpu - whole:+.3f})")
    if args.profile:
        top(args.profile, args.top)


if __name__ == "__main__":
    main()
