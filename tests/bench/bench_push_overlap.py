"""The device's push overlapping the server (issue 17), against batch after batch, same run.

Usage: python tests/bench/bench_push_overlap.py [--push 10000] [--rounds 2]

Pushes ``--push`` new residents to a fresh platform (server in its own process, as
``bench_sync.py``'s anchor) with the overlapped push and with ``overlap=False`` (the same code,
each batch read after the last one is recorded), ABBA in each round. Per run: the push's wall,
the server's CPU, the device's CPU and the time between requests (from one answer to the next
request going out: the device's work the server waits for); then the wall ratio of each round. Wall times are noisy
on a shared machine: read the ratios of several rounds. It prints figures; it never asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.forms import FormSet, load_formset  # noqa: E402
from sync import heap  # noqa: E402
from sync.client import Client  # noqa: E402
from tests.bench.bench_sync import (  # noqa: E402
    PushOnly,  # noqa: E402
    ServerProcess,
    device,
    platform_db,
    residents,
)


def one_push(
    root: Path, name: str, formset: FormSet, count: int, overlap: bool
) -> tuple[float, float, float, float]:
    """(wall s, server CPU s, device CPU s, gaps s) of one push of ``count`` new residents."""
    served = ServerProcess(platform_db(root / f"{name}.db", formset))
    try:
        store, client = device(served.url, root / f"{name}.sqlite", formset)
        rows = residents(count, 0)
        store.insert_many("resident", [(None, r, "draft") for r in rows], author="bench")
        heap.settle()
        gaps = _watch_gaps(client)
        server = served.cpu_s()
        cpu, wall = time.process_time(), time.perf_counter()
        summary = PushOnly(store, client, overlap=overlap).run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert summary.applied == count, summary
        store.close()
        return wall, served.cpu_s() - server, cpu, sum(gaps)
    finally:
        served.stop()


def _watch_gaps(client: Client) -> list[float]:
    """The times from one push request's answer to the next request's bytes going out: the
    device's work between requests, while the server waits (each request is one ``_send``)."""
    gaps: list[float] = []
    real = client._send
    last: list[float] = []

    def send(*args: Any) -> Any:
        if last:
            gaps.append(time.perf_counter() - last[0])
        try:
            return real(*args)
        finally:
            last[:] = [time.perf_counter()]

    setattr(client, "_send", send)  # noqa: B010 (a bench hook on one instance)
    return gaps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--push", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    formset = load_formset()
    ratios = []
    print(f"push of {args.push} new residents, platform on SQLite, server in its own process")
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            walls: dict[bool, list[float]] = {True: [], False: []}
            for k, overlap in enumerate((True, False, False, True)):  # ABBA
                name = f"r{n}-{k}"
                wall, server, cpu, gaps = one_push(Path(tmp), name, formset, args.push, overlap)
                walls[overlap].append(wall)
                label = "overlapped" if overlap else "batch after batch"
                print(
                    f"  round {n + 1} {label:<18} wall {wall:5.2f} s  server CPU {server:5.2f} s"
                    f"  device CPU {cpu:5.2f} s  between requests {gaps:5.2f} s"
                )
            ratio = sum(walls[False]) / sum(walls[True])
            ratios.append(ratio)
            print(f"  round {n + 1}: wall batch after batch / overlapped = {ratio:.2f}x")
    print(f"median ratio over {len(ratios)} rounds: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
