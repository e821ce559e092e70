"""The server's Python per pushed op (issue 17), without HTTP: CPU of ``Service.push_all`` for
``--push`` new residents, 1 000 ops a request, on a fresh SQLite platform in this process.

Usage: python tests/bench/bench_push_apply.py [--push 10000] [--status draft] [--compare DIR]
    [--rounds 2] [--known] [--commits] [--cold]

``--known``: the platform first holds the residents (pushed from another device, not measured)
and the measured push sends them again under new record ids, as a device set up anew does:
every create is answered ``merged_into`` the held record (the issue's "push known").

Each measurement runs in a child process (``--child``) whose collector is settled as the
server's is (``sync.heap.settle``); the requests are built before the clock starts, each
op's fields in name order as a device's outbox sends them (canonical JSON), so the figure
is the service's check, prefetch, apply and write of the ops, SQLite's share included.
``--compare DIR``: the same run with that checkout's code and venv (``DIR/.venv``), alternated
with this one's (this, that, that, this per round), and the ratio of the CPU seconds.
``--cold``: the names' spellings and search terms worked out before the measured push are
forgotten (their ``lru_cache``s cleared), as on a server that pushed the held residents before
its last restart: without it a ``--known`` push finds every name's pinyin from the first push.
``--commits``: also the wall and CPU seconds the pushing thread spent in its commits (what a
request waits on there: the WAL's fsync, and a checkpoint when the commit runs one).
It prints figures; it never asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def timed_commits() -> dict[str, float]:
    """The wall and this thread's CPU seconds of every SQLite commit from now on."""
    from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

    spent = {"commit_wall": 0.0, "commit_cpu": 0.0}
    plain = SQLiteDialect_pysqlite.do_commit

    def do_commit(self: Any, conn: Any) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        plain(self, conn)
        spent["commit_wall"] += time.perf_counter() - wall
        spent["commit_cpu"] += time.thread_time() - cpu

    SQLiteDialect_pysqlite.do_commit = do_commit  # type: ignore[method-assign]
    return spent


def forget_names() -> None:
    """Clear the caches of names' spellings and search terms (``--cold``)."""
    import app.core.search
    from sync.server import rows

    for module in (app.core.search, rows):
        for value in vars(module).values():
            clear = getattr(value, "cache_clear", None)
            if callable(clear):
                clear()


def child(count: int, status: str, known: bool, commits: bool = False, cold: bool = False) -> None:
    """One measured push, in this process; prints its CPU seconds as JSON."""
    sys.path.insert(0, str(Path.cwd()))
    from app.core import ids
    from app.core.forms import load_formset
    from sync import heap
    from sync import protocol as p
    from sync.server import auth
    from sync.server.app import create_app
    from tests.bench.bench_sync import PASSWORD, platform_db, residents

    formset = load_formset()
    rows = residents(count, 0)
    with tempfile.TemporaryDirectory() as tmp:
        path = platform_db(Path(tmp) / "p.db", formset)
        app = create_app(f"sqlite:///{path}", forms=formset, secret="bench-secret")
        _t, _e, user = auth.login(app.state.engine, app.state.key, "bench", PASSWORD, "dev1")
        stamp = ids.now_iso()

        def requests_of(device: str) -> list[p.PushRequest]:
            return [
                p.PushRequest(
                    protocol=max(p.SUPPORTED_PROTOCOLS),
                    device_id=device,
                    ops=[
                        p.Op(
                            op_id=ids.uuid7(),
                            record_id=ids.uuid7(),
                            form="resident",
                            kind="create",
                            fields=dict(sorted({**r, "_status": status}.items())),
                            edited_at=f"{stamp}#0001",
                            author="bench",
                        )
                        for r in rows[start : start + 1000]
                    ],
                )
                for start in range(0, count, 1000)
            ]

        service = app.state.service
        if known:  # the platform holds them already, from another device (not measured)
            for req in requests_of("dev0"):
                service.push_all(user, req, "dev0")
        requests = requests_of("dev1")
        if cold:
            forget_names()
        heap.settle()
        spent = timed_commits() if commits else {}
        began = time.process_time()
        answers = [service.push_all(user, req, "dev1") for req in requests]
        cpu = time.process_time() - began
        spent = dict(spent)  # the push's alone
        want = "merged_into" if known else "applied"
        applied = sum(r["status"] == want for a in answers for r in a["results"])
        app.state.engine.dispose()
    print(json.dumps({"cpu": cpu, "applied": applied, **spent}))


def measure(
    checkout: Path, count: int, status: str, known: bool, commits: bool = False, cold: bool = False
) -> dict[str, float]:
    """CPU seconds of one push in a child process running ``checkout``'s code (and its
    commits' wall and CPU seconds with ``commits``)."""
    python = checkout / ".venv" / "bin" / "python"
    out = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--child", "--push", str(count)]
        + ["--status", status]
        + (["--known"] if known else [])
        + (["--commits"] if commits else [])
        + (["--cold"] if cold else []),
        cwd=checkout,
        check=True,
        capture_output=True,
        text=True,
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    if found["applied"] != count:
        raise RuntimeError(f"{checkout}: {found['applied']} of {count} applied")
    return {k: float(v) for k, v in found.items() if k != "applied"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--push", type=int, default=10_000)
    parser.add_argument("--status", default="draft", choices=["draft", "complete"])
    parser.add_argument("--compare", type=Path, help="a checkout with its own .venv")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--known", action="store_true", help="residents the platform holds")
    parser.add_argument("--commits", action="store_true", help="the pushing thread's commits")
    parser.add_argument("--cold", action="store_true", help="names' caches cleared first")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.push, args.status, args.known, args.commits, args.cold)
        return
    this: list[dict[str, float]] = []
    that: list[dict[str, float]] = []
    run = (args.push, args.status, args.known, args.commits, args.cold)
    for _ in range(args.rounds):
        this.append(measure(ROOT, *run))
        if args.compare:
            that.append(measure(args.compare, *run))
            that.append(measure(args.compare, *run))
            this.append(measure(ROOT, *run))
    n = args.push
    which = "known" if args.known else "new"
    cold = ", names' caches cleared" if args.cold else ""
    print(f"push of {n} {which} {args.status} residents, Service.push_all in process, SQLite{cold}")
    for name, runs in (("this", this), ("that", that)):
        if runs:
            cpu = [r["cpu"] for r in runs]
            print(f"  {name}: CPU {statistics.median(cpu):.3f} s (runs {_listed(cpu)})")
        if runs and args.commits:
            for key in ("commit_wall", "commit_cpu"):
                spent = [r[key] for r in runs]
                print(f"    {key}: {statistics.median(spent):.3f} s (runs {_listed(spent)})")
    if that:
        ratio = statistics.median(r["cpu"] for r in this) / statistics.median(
            r["cpu"] for r in that
        )
        print(f"  this ÷ that (medians): {ratio:.2f}")


def _listed(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


if __name__ == "__main__":
    main()
