"""The device's CPU for applying a pulled 10 k (issue 17's pull aim), against older code.

Usage: python tests/bench/bench_pull_device.py [--records 10000] [--rounds 5]
       [--baseline REF] [--by-table]

Why: ``bench_sync.py --anchor-only`` prints the client's CPU of a whole pull, but one figure a
run on a shared 2-core machine moves by ±15 %, and a change of a few per cent in the device's
application of pages cannot be told from noise across runs. Here the pull pages are fetched
once from a real platform (``bench_sync``'s server process, ``--records`` new residents
pushed first), kept as the bytes the server sent, and then applied into fresh stores in child
processes, as ``SyncSession`` applies them (the settled heap, ``replica.bulk_writes``, one
transaction per ``COMMIT_EVERY`` records, ``apply_pull`` and ``backfill.note`` per page): no
HTTP and no server in the measured time. With ``--baseline REF`` the same pages are applied
with the code of that git commit (default ``main``; extracted to a temporary folder) in
alternating rounds, and the ratio of the medians is printed: the same code on both sides
shows the noise floor (±2-3 % for medians of 7 rounds on the shared 2-core machine). CPU
seconds (``time.process_time`` of the child): parsing the pages, applying them, and the
commits. ``--by-table`` adds one pass with the
CPU of each statement of the device's writes (records and each side table). It prints
figures; it never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.forms import load_formset  # noqa: E402
from tests.bench import bench_sync  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("total", "parse", "apply", "commit")

# Runs in a child process with PYTHONPATH set to the tree under test: argv[1] the pages file
# (JSON list of response bodies), argv[2] the store folder, argv[3] "1" for the by-table pass.
REPLAY = r"""
import collections, json, sys, time
from pathlib import Path
from app.core.forms import load_formset
from app.core.search import char_pinyin
from app.core.store import Store
from sync import heap, replica
from sync.protocol import PullResponse
from sync.replica import backfill
from sync.session import COMMIT_EVERY

bodies = [b.encode() for b in json.loads(Path(sys.argv[1]).read_text())]
store = Store(Path(sys.argv[2]) / "device.sqlite", load_formset())
by_table = collections.Counter()
if sys.argv[3] == "1":
    class Timed:
        def __init__(self, conn):
            self._conn = conn
        def executemany(self, sql, rows):
            t = time.process_time()
            try:
                return self._conn.executemany(sql, rows)
            finally:
                by_table[" ".join(sql.split()[:4])] += time.process_time() - t
        def execute(self, sql, *args):
            t = time.process_time()
            try:
                return self._conn.execute(sql, *args)
            finally:
                by_table[" ".join(sql.split()[:4])] += time.process_time() - t
        def __getattr__(self, name):
            return getattr(self._conn, name)
    store.replica.conn = Timed(store.replica.conn)
char_pinyin("中")  # pypinyin loaded, as in a running app (its first save or search loads it)
heap.settle()
parse = apply = commit = 0.0
start = time.process_time()
scope = replica.scope_of("http://bench", "bench")
pages = iter(bodies)
with replica.bulk_writes(store):
    backfill.clear(store)
    finished = False
    while not finished:
        with store.transaction():  # the session's local commit of COMMIT_EVERY records
            applied = 0
            while applied < COMMIT_EVERY:
                t = time.process_time()
                page = PullResponse.model_validate_json(next(pages))
                parse += time.process_time() - t
                t = time.process_time()
                applied += max(1, replica.apply_pull(store, page, scope).records)
                backfill.note(store, scope, page.entered)
                apply += time.process_time() - t
                if not page.more:
                    finished = True
                    break
            t = time.process_time()
        commit += time.process_time() - t
total = time.process_time() - start
count = store.conn.execute("SELECT count(*) FROM records").fetchone()[0]
print(json.dumps({"total": total, "parse": parse, "apply": apply, "commit": commit,
                  "records": count, "by_table": dict(by_table)}))
"""


def capture(root: Path, count: int) -> tuple[Path, int]:
    """Push ``count`` new residents to a fresh platform and keep its pull pages' bodies."""
    formset = load_formset()
    served = bench_sync.ServerProcess(bench_sync.platform_db(root / "platform.db", formset))
    try:
        rows = bench_sync.residents(count, 0)
        bench_sync.push_run(served.url, root / "pusher.sqlite", formset, rows)
        _store, client = bench_sync.device(served.url, root / "puller.sqlite", formset)
        bodies: list[str] = []
        cursor, more = 0, True
        while more:
            response = client._request("GET", "/v1/pull", params={"since": cursor, "limit": 1000})
            body = json.loads(response.content)
            bodies.append(response.content.decode())
            cursor, more = int(body["cursor"]), bool(body["more"])
    finally:
        served.stop()
    path = root / "pages.json"
    path.write_text(json.dumps(bodies))
    return path, sum(len(b) for b in bodies)


def baseline_tree(root: Path, ref: str) -> Path:
    """The code of git commit ``ref``, extracted next to the pages."""
    tree = root / f"tree-{ref}"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def replay(tree: Path, pages: Path, by_table: bool = False) -> dict[str, Any]:
    """One application of the pages into a fresh store, in a child running ``tree``'s code."""
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [sys.executable, "-c", REPLAY, str(pages), folder, "1" if by_table else "0"],
            env={**os.environ, "PYTHONPATH": str(tree)},
            cwd=str(tree),
            check=True,
            capture_output=True,
            text=True,
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--baseline", default="main", help="a git commit to compare with ('' for none)"
    )
    parser.add_argument("--by-table", action="store_true", help="CPU of each write statement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pages, size = capture(root, args.records)
        print(f"pages of {args.records:,} records captured: {size / 1e6:.1f} MB of JSON")
        trees = {"this tree": ROOT}
        if args.baseline:
            trees[args.baseline] = baseline_tree(root, args.baseline)
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
        for i in range(args.rounds):
            order = list(trees.items()) if i % 2 == 0 else list(reversed(trees.items()))
            for label, tree in order:
                runs[label].append(replay(tree, pages))
        print("device CPU (s) of the pull, median of rounds   total   parse   apply  commit")
        medians = {}
        for label, results in runs.items():
            med = {k: statistics.median(r[k] for r in results) for k in STAGES}
            medians[label] = med
            totals = " ".join(f"{r['total']:.3f}" for r in results)
            print(
                f"  {label:<42} {med['total']:6.3f}  {med['parse']:6.3f}  {med['apply']:6.3f}  "
                f"{med['commit']:6.3f}   (totals {totals})"
            )
        if args.baseline:
            base, this = medians[args.baseline]["total"], medians["this tree"]["total"]
            print(f"  this tree / {args.baseline}: x{this / base:.3f} (CPU {this / base - 1:+.1%})")
        if args.by_table:
            shares = replay(ROOT, pages, by_table=True)["by_table"]
            print("CPU of the device's statements in one pass (s):")
            for sql, cpu in sorted(shares.items(), key=lambda kv: -kv[1])[:10]:
                print(f"  {cpu:6.3f}  {sql}")


if __name__ == "__main__":
    main()
