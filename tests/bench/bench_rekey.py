"""Recording a push batch whose every answer is ``merged_into`` (records the platform already
knows), on the device: the bulk path (``record_results``, a run of renames applied from a temp
table) against the plain path of the same rules (``bulk=False``: ``rewrite_id`` one record at a
time), on copies of one device store, in one run.

Usage: python tests/bench/bench_rekey.py [--count 1000] [--form resident|house]

``--form resident``: ``--count`` residents typed on the device, one batch answering each merged
(what a known push does on the device). ``--form house``: ``--count`` houses, each lived in by a
resident whose create is still pending (not in the batch): every rename must also reach the
resident's data, its refs and people row, and its pending op. Prints the device's CPU seconds
(``time.process_time``) of each path and the ratio. It prints figures; it never asserts.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core import ids  # noqa: E402
from app.core.forms import FormSet, load_formset  # noqa: E402
from app.core.store import Store  # noqa: E402
from sync import replica  # noqa: E402
from sync.protocol import OpResult  # noqa: E402
from tests.bench.bench_sync import residents  # noqa: E402

GRID = "330106001001-01"


def device(path: Path, formset: FormSet, count: int, form: str) -> None:
    """The device before the push: ``count`` records of ``form`` (houses lived in by one
    resident each), all pending."""
    store = Store(path, formset)
    if form == "house":
        houses = store.insert_many(
            "house",
            [
                (
                    None,
                    {"house_code": f"H{i}", "address_text": f"幸福路{i}号", "grid": GRID},
                    "draft",
                )
                for i in range(count)
            ],
            author="bench",
        )
        people = [{**r, "house_ref": h} for r, h in zip(residents(count, 0), houses, strict=True)]
    else:
        people = residents(count, 0)
    store.insert_many("resident", [(None, r, "draft") for r in people], author="bench")
    store.close()


def record(path: Path, formset: FormSet, count: int, bulk: bool) -> float:
    """CPU seconds of recording one batch of ``count`` merged answers."""
    store = Store(path, formset)
    try:
        ops = replica.next_batch(store, 0, count)
        results = [
            OpResult(
                op_id=op.op_id,
                status="merged_into",
                record_id=(canonical := ids.uuid7()),
                merged_into=canonical,
                version=1,
            )
            for op in ops
        ]
        cpu = time.process_time()
        with store.transaction():
            replica.record_results(store, ops, results, bulk=bulk)
        return time.process_time() - cpu
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--form", choices=("resident", "house"), default="resident")
    args = parser.parse_args()
    formset = load_formset()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "device.sqlite"
        device(base, formset, args.count, args.form)
        took = {}
        for bulk in (False, True):
            path = Path(tmp) / f"{bulk}.sqlite"
            shutil.copy(base, path)
            took[bulk] = record(path, formset, args.count, bulk)
    print(
        f"{args.count} known {args.form}s answered merged: plain (one rewrite_id per record) "
        f"{took[False]:.3f} CPU-s, bulk {took[True]:.3f} CPU-s: plain/bulk "
        f"x{took[False] / took[True]:.1f}"
    )


if __name__ == "__main__":
    main()
