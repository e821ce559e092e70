"""The device's recording of a push's answers (issue 17): ``replica.record_results`` of
``--batches`` batches of ``--size`` answers, all ``applied`` (a push of new residents) or all
``merged_into`` a record the platform holds under another id (a push of residents it already
knows: every record is renamed), on the same device store, in one run.

Usage: python tests/bench/bench_record_push.py [--batches 10] [--size 1000] [--rounds 2]
    [--compare DIR] [--profile]

The device holds ``batches * size`` residents typed on it, as in ``bench_sync.py``'s push; the
answers are built before the clock starts and each batch is recorded as ``SyncSession._record``
does (one transaction, inside ``replica.bulk_writes``). Each measurement runs in a child
process (``--child``) on a store of its own; the figure is that process's CPU seconds
(``time.process_time``) of the recording alone, per batch and in all. ``--compare DIR``: the
same children with that checkout's code and venv (``DIR/.venv``), alternated with this one's
(this, that, that, this per round), and the ratios. ``--profile``: cProfile of the known
recording in this process (top lines by own time). It prints figures; it never asserts.
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


def child(batches: int, size: int, known: bool, profile: bool = False) -> dict[str, Any]:
    """One measured recording in this process: total and per-batch CPU seconds."""
    sys.path.insert(0, str(Path.cwd()))
    from app.core import ids
    from app.core.forms import load_formset
    from app.core.store import Store
    from sync import heap, replica
    from sync.protocol import OpResult, ResultStatus
    from tests.bench.bench_sync import residents

    formset = load_formset()
    count = batches * size
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "device.sqlite", formset)
        store.insert_many("resident", [(None, r, "draft") for r in residents(count, 0)], "bench")
        ops = replica.next_batch(store, 0, count)
        status: ResultStatus = "merged_into" if known else "applied"
        results = [
            OpResult(
                op_id=op.op_id,
                status=status,
                record_id=(held := ids.uuid7() if known else op.record_id),
                merged_into=held if known else None,
                version=2 if known else 1,
            )
            for op in ops
        ]
        heap.settle()
        spent: list[float] = []
        prof = None
        if profile:
            import cProfile

            prof = cProfile.Profile()
        with replica.bulk_writes(store):
            for start in range(0, count, size):
                part = slice(start, start + size)
                began = time.process_time()
                if prof is not None:
                    prof.enable()
                with store.transaction():
                    tally = replica.record_results(store, ops[part], results[part])
                if prof is not None:
                    prof.disable()
                spent.append(time.process_time() - began)
                assert tally.merged + tally.applied == size, tally
        store.close()
    if prof is not None:
        import pstats

        st = pstats.Stats(prof)
        st.sort_stats("tottime").print_stats(25)
        st.sort_stats("cumulative").print_stats(40)
    return {"cpu": sum(spent), "batches": spent}


def measure(checkout: Path, batches: int, size: int, known: bool) -> dict[str, Any]:
    """One child process running ``checkout``'s code."""
    python = checkout / ".venv" / "bin" / "python"
    out = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--child"]
        + ["--batches", str(batches), "--size", str(size)]
        + (["--known"] if known else []),
        cwd=checkout,
        check=True,
        capture_output=True,
        text=True,
    )
    found: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def _line(label: str, runs: list[dict[str, Any]]) -> str:
    totals = [r["cpu"] for r in runs]
    per = [1000 * b for r in runs for b in r["batches"]]
    return (
        f"{label}: {statistics.median(totals):.3f} CPU-s "
        f"(runs {', '.join(f'{t:.3f}' for t in totals)}), per batch median "
        f"{statistics.median(per):.1f} ms, max {max(per):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compare", type=Path, help="a checkout with its own .venv")
    parser.add_argument("--profile", action="store_true", help="cProfile the known recording")
    parser.add_argument("--known", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.batches, args.size, args.known)))
        return
    if args.profile:
        child(args.batches, args.size, True, profile=True)
        return
    runs: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    checkouts = [("this", ROOT)] + ([("that", args.compare)] if args.compare else [])
    for n in range(args.rounds):
        order = checkouts if n % 2 == 0 else checkouts[::-1]
        for known in (False, True):
            for name, checkout in order + order[::-1] if args.compare else order:
                got = measure(checkout, args.batches, args.size, known)
                runs.setdefault((name, known), []).append(got)
    size = f"{args.batches} batches of {args.size}"
    for name, checkout in checkouts:
        print(f"[{name}: {checkout}] {size}")
        new, old = runs[(name, False)], runs[(name, True)]
        print("  " + _line("new (applied)      ", new))
        print("  " + _line("known (merged_into)", old))
        ratio = statistics.median(r["cpu"] for r in old) / statistics.median(r["cpu"] for r in new)
        print(f"  known / new: x{ratio:.2f}")
    if args.compare:
        for known in (False, True):
            this = statistics.median(r["cpu"] for r in runs[("this", known)])
            that = statistics.median(r["cpu"] for r in runs[("that", known)])
            label = "known" if known else "new"
            print(f"{label}: this / that x{this / that:.2f} ({this:.3f} vs {that:.3f} CPU-s)")


if __name__ == "__main__":
    main()
