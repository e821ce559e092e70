"""Where a push's wall goes on the device's side (issue 17): a timeline of one 10 k push.

Usage: python tests/bench/bench_push_timeline.py [--push 10000] [--known] [--compare DIR]
    [--rounds 2] [--spans]

The device pushes ``--push`` new residents (``--known``: residents the platform already holds,
pushed first from another device, not measured) to the real platform server (``bench_sync``'s
server process, SQLite) with ``SyncSession``, and the session's steps are timed as they run:
each request in flight (``Client._send``), each batch read and encoded (``_read``), each
batch's answers recorded (``_record``) and the session's last commit (the "last synced"
stamp, which copied the whole WAL when a bulk write had left it long). Printed: the push's
wall, the server's idle start (first request sent), the gaps between one answer and the next
request, the tail after the last answer, and that last commit, and the share of the wall those
three held the server idle. ``--spans`` prints every span.

Why: the server is the bottleneck of a push, and every millisecond the device keeps it waiting
(before the first request, between requests, after the last answer) is on the wall as it is.
``--compare DIR``: the same with that checkout's code and venv (``DIR/.venv``), alternated with
this one's (this, that, that, this per round), and the ratio of the medians. It prints figures;
it never asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
Span = tuple[str, float, float]


def _timed(owner: Any, name: str, tag: str, spans: list[Span]) -> None:
    """Wrap ``owner.name`` so that each call appends (tag, start, end) to ``spans``."""
    plain: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return plain(*args, **kwargs)
        finally:
            spans.append((tag, start, time.perf_counter()))

    setattr(owner, name, timed)


def child(count: int, known: bool, show: bool) -> None:
    """One timed push, in this process; prints its figures as JSON (and its spans)."""
    sys.path.insert(0, str(Path.cwd()))
    from app.core.forms import load_formset
    from app.core.store import Store
    from sync import client, session
    from tests.bench.bench_sync import ServerProcess, platform_db, push_run, residents

    spans: list[Span] = []
    formset = load_formset()
    rows = residents(count, 0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        served = ServerProcess(platform_db(root / "p.db", formset))
        try:
            if known:
                push_run(served.url, root / "d0.sqlite", formset, rows)
            _timed(client.Client, "_send", "http", spans)
            _timed(session.SyncSession, "_read", "read", spans)
            _timed(session.SyncSession, "_record", "record", spans)
            _timed(session.SyncSession, "run", "run", spans)
            _timed(Store, "set_meta", "meta", spans)
            spans.clear()
            push_run(served.url, root / "d.sqlite", formset, rows)
        finally:
            served.stop()
    print(json.dumps(figures(spans, show)))


def figures(spans: list[Span], show: bool) -> dict[str, float]:
    """The push's wall and where the device kept the server waiting, in ms."""
    run = next(s for s in spans if s[0] == "run")
    start = run[1]
    mine = sorted((s for s in spans if s[1] >= start and s[2] <= run[2]), key=lambda s: s[1])
    if show:
        for tag, a, b in mine:
            print(
                f"{tag:7s} {1000 * (a - start):8.1f} {1000 * (b - start):8.1f} {1000 * (b - a):7.1f}"
            )
    http = [s for s in mine if s[0] == "http"][1:]  # the first is GET /v1/info
    gaps = [1000 * (http[i + 1][1] - http[i][2]) for i in range(len(http) - 1)]
    last_meta = [s for s in mine if s[0] == "meta"][-1:]
    return {
        "wall": 1000 * (run[2] - run[1]),
        "first_request": 1000 * (http[0][1] - start),
        "gaps": sum(gaps),
        "gap_median": statistics.median(gaps) if gaps else 0.0,
        "tail": 1000 * (run[2] - http[-1][2]),
        "last_commit": 1000 * (last_meta[0][2] - last_meta[0][1]) if last_meta else 0.0,
        "requests": float(len(http)),
    }


def measure(checkout: Path, count: int, known: bool) -> dict[str, float]:
    """One timed push in a child process running ``checkout``'s code."""
    python = checkout / ".venv" / "bin" / "python"
    out = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--child", "--push", str(count)]
        + (["--known"] if known else []),
        cwd=checkout,
        check=True,
        capture_output=True,
        text=True,
    )
    found: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--push", type=int, default=10_000)
    parser.add_argument("--known", action="store_true", help="residents the platform holds")
    parser.add_argument("--compare", type=Path, help="a checkout with its own .venv")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--spans", action="store_true", help="print every span (one run)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child or args.spans:
        child(args.push, args.known, args.spans)
        return
    this: list[dict[str, float]] = []
    that: list[dict[str, float]] = []
    for _ in range(args.rounds):
        this.append(measure(ROOT, args.push, args.known))
        if args.compare:
            that.append(measure(args.compare, args.push, args.known))
            that.append(measure(args.compare, args.push, args.known))
            this.append(measure(ROOT, args.push, args.known))
    which = "known" if args.known else "new"
    print(f"push of {args.push} {which} residents, device timeline (ms, medians)")
    keys = list(this[0])
    print(f"  {'':6s}" + "".join(f"{k:>15s}" for k in keys))
    for name, runs in (("this", this), ("that", that)):
        if runs:
            print(f"  {name:6s}" + "".join(f"{_median(runs, k):15.1f}" for k in keys))
    for name, runs in (("this", this), ("that", that)):
        if runs:
            held = [(r["first_request"] + r["gaps"] + r["tail"]) / r["wall"] for r in runs]
            print(
                f"  {name}: the device held the server idle {statistics.median(held):.1%} of the wall"
            )
    if that:
        print(f"  this ÷ that, wall: {_median(this, 'wall') / _median(that, 'wall'):.2f}")


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


if __name__ == "__main__":
    main()
