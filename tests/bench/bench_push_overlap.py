"""The device's push overlapping the server (issue 17), against batch after batch, same run.

Usage: python tests/bench/bench_push_overlap.py [--push 10000] [--rounds 2] [--known]

Pushes ``--push`` new residents to a fresh platform (server in its own process, as
``bench_sync.py``'s anchor) with the overlapped push and with ``overlap=False`` (the same code,
each batch read after the last one is recorded), ABBA in each round. Per run: the push's wall,
the server's CPU, the device's CPU and the time between requests (from one answer to the next
request going out: the device's work the server waits for); then the wall ratio of each round. Wall times are noisy
on a shared machine: read the ratios of several rounds. It prints figures; it never asserts.
``--known``: the residents were pushed first from another device (not measured), so the
measured push is of records the platform knows: every answer gives a new id (issue 17).
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
    root: Path, name: str, formset: FormSet, count: int, overlap: bool, known: bool = False
) -> tuple[float, float, float, float]:
    """(wall s, server CPU s, device CPU s, gaps s) of one push of ``count`` residents, new
    to the platform or (``known``) pushed before from another device."""
    served = ServerProcess(platform_db(root / f"{name}.db", formset))
    try:
        rows = residents(count, 0)
        if known:
            first, link = device(served.url, root / f"{name}-first.sqlite", formset)
            first.insert_many("resident", [(None, r, "draft") for r in rows], author="bench")
            assert PushOnly(first, link).run().applied == count
            first.close()
        store, client = device(served.url, root / f"{name}.sqlite", formset)
        store.insert_many("resident", [(None, r, "draft") for r in rows], author="bench")
        heap.settle()
        gaps = _watch_gaps(client)
        server = served.cpu_s()
        cpu, wall = time.process_time(), time.perf_counter()
        session = PushOnly(store, client, overlap=overlap)
        sent_ahead = _count_sent_ahead(session)
        summary = session.run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert summary.applied + summary.merged == count, summary
        assert summary.merged == (count if known else 0), summary
        store.close()
        print(f"    requests {summary.requests}, sent ahead (read during the last) {sent_ahead[0]}")
        return wall, served.cpu_s() - server, cpu, sum(gaps)
    finally:
        served.stop()


def _count_sent_ahead(session: PushOnly) -> list[int]:
    """Counts the batches read ahead that were sent (a count that load does not blur): each
    batch read ahead and not sent is read again after the answers are recorded."""
    count = [0]
    real_read, real_send = session._read, session._send
    ahead_ids: set[int] = set()

    def read(*args: Any, ahead: bool) -> Any:
        batch = real_read(*args, ahead=ahead)
        if ahead and batch is not None:
            ahead_ids.add(id(batch))
        return batch

    def send(batch: Any) -> Any:
        if id(batch) in ahead_ids:
            count[0] += 1
        return real_send(batch)

    setattr(session, "_read", read)  # noqa: B010 (bench hooks on one instance)
    setattr(session, "_send", send)  # noqa: B010
    return count


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
    parser.add_argument("--known", action="store_true", help="residents the platform knows")
    args = parser.parse_args()
    formset = load_formset()
    ratios = []
    kind = "known" if args.known else "new"
    print(f"push of {args.push} {kind} residents, platform on SQLite, server in its own process")
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            walls: dict[bool, list[float]] = {True: [], False: []}
            for k, overlap in enumerate((True, False, False, True)):  # ABBA
                name = f"r{n}-{k}"
                wall, server, cpu, gaps = one_push(
                    Path(tmp), name, formset, args.push, overlap, args.known
                )
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
