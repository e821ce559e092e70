"""The HTTP layer of a push of 10 k new residents (issue 17): the server's CPU by thread.

Usage: python tests/bench/bench_push_http.py [--push 10000] [--rounds 3] [--compare DIR]

A server process (uvicorn, SQLite, settled as ``server-admin server`` does) takes a device's
login and then its push; the server's CPU is read from the kernel's per-thread run time
(``/proc/PID/task/*/schedstat``, nanoseconds) around each: the login (and ``/v1/info``)
apart, the push in all threads and in the event loop's thread alone (the request's parse,
gzip in and out, the answer sent: everything of the HTTP layer but the answer's encoding,
which runs with ``Service.push_all`` in the worker thread).
``--compare DIR``: the same with that checkout's code and venv (``DIR/.venv``), alternated
with this one's (this, that, that, this...), medians and the difference this - that.
Then, in this process, the encoding of one 1,000-op push answer: ``JSONResponse`` against
``wire.json_response`` (ratio), and the request's parse (``model_validate_json``) against
``orjson.loads`` alone, the floor any other parse would stand on. It prints figures; it
never asserts.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core import ids  # noqa: E402
from app.core.forms import FormSet, load_formset  # noqa: E402
from app.core.records import canonical_json  # noqa: E402
from sync import heap  # noqa: E402
from tests.bench.bench_push_floor import copy_db  # noqa: E402
from tests.bench.bench_sync import PushOnly, device, platform_db, residents  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SERVER = """
import sys, uvicorn
from sync import heap
from sync.server.app import create_app
app = create_app(sys.argv[1], secret="bench-secret")
heap.settle()
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


def run_ns(pid: int, main_only: bool = False) -> int:
    """Run time so far (ns) of the process's threads, or of its first thread alone."""
    tasks = [Path(f"/proc/{pid}/task/{pid}")] if main_only else Path(f"/proc/{pid}/task").iterdir()
    total = 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):
            continue  # the thread ended
    return total


def serve(checkout: Path, db: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``checkout``'s server on ``db``, started with its venv's python."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    python = checkout / ".venv" / "bin" / "python"
    proc = subprocess.Popen(
        [str(python if python.exists() else sys.executable), "-c", SERVER, f"sqlite:///{db}"]
        + [str(port)],
        env={**os.environ, "PYTHONPATH": str(checkout)},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(url + "/v1/info", timeout=1).ok:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def one(
    checkout: Path, base: Path, tmp: Path, formset: FormSet, rows: list[dict[str, Any]]
) -> tuple[float, float, float]:
    """(login + info, push, push in the event loop's thread) in CPU seconds of the server."""
    work = Path(tempfile.mkdtemp(dir=tmp))
    proc, url = serve(checkout, copy_db(base, work / "p.db"))
    try:
        before = run_ns(proc.pid)
        store, client = device(url, work / "d.sqlite", formset)
        login = run_ns(proc.pid) - before
        store.insert_many("resident", [(None, r, "draft") for r in rows], author="bench")
        heap.settle()
        before, loop = run_ns(proc.pid), run_ns(proc.pid, main_only=True)
        summary = PushOnly(store, client).run()
        push, loop = run_ns(proc.pid) - before, run_ns(proc.pid, main_only=True) - loop
        assert summary.applied == len(rows), summary
        store.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return login / 1e9, push / 1e9, loop / 1e9


def servers(args: argparse.Namespace, formset: FormSet) -> None:
    """The ABBA rounds and their medians."""
    rows = residents(args.push, 0)
    checkouts = [ROOT] + ([Path(args.compare).resolve()] if args.compare else [])
    got: dict[Path, list[tuple[float, float, float]]] = {c: [] for c in checkouts}
    with tempfile.TemporaryDirectory() as tmp:
        base = platform_db(Path(tmp) / "base.db", formset)
        for n in range(args.rounds):
            for checkout in checkouts if n % 2 == 0 else checkouts[::-1]:
                got[checkout].append(one(checkout, base, Path(tmp), formset, rows))
    print(f"push of {args.push} new residents, server CPU (schedstat), medians of {args.rounds}")
    medians = {}
    for name, checkout in zip(("this", "that"), checkouts, strict=False):
        login, push, loop = (statistics.median(x[i] for x in got[checkout]) for i in range(3))
        medians[name] = (login, push, loop)
        runs = ", ".join(f"{x[1]:.3f}" for x in got[checkout])
        print(
            f"  {name}: login+info {login:.3f} s, push {push:.3f} s (event loop's thread "
            f"{loop:.3f} s; runs {runs})  [{checkout}]"
        )
    if "that" in medians:
        diff = [a - b for a, b in zip(medians["this"], medians["that"], strict=True)]
        print(
            f"  this - that: login+info {diff[0]:+.3f} s, push {diff[1]:+.3f} s, "
            f"event loop's thread {diff[2]:+.3f} s"
        )


def cpu_ms(fn: Any, repeat: int = 200) -> float:
    """Mean CPU ms of ``fn()``, the collector settled as a server's."""
    began = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - began) / repeat * 1000


def encoding() -> None:
    """One 1,000-op push answer written both ways, and the parse against its floor."""
    import orjson
    from starlette.responses import JSONResponse

    from sync import protocol as p
    from sync.server import wire

    stamp = ids.now_iso()
    ops = [
        {
            "op_id": f"{ids.uuid7()}:{n}",
            "record_id": str(ids.uuid7()),
            "form": "resident",
            "kind": "create",
            "base_version": None,
            "fields": {**r, "_status": "draft"},
            "edited_at": f"{stamp}#{n % 10000:04d}",
            "author": "bench",
        }
        for n, r in enumerate(residents(1000, 7))
    ]
    body = canonical_json({"protocol": 1, "device_id": "d1", "ops": ops}, sort_keys=False)
    raw = body.encode("utf-8")
    answer: dict[str, Any] = {
        "results": [
            {
                "op_id": o["op_id"],
                "status": "applied",
                "record_id": o["record_id"],
                "version": 1,
                "conflicts": [],
            }
            for o in ops
        ]
    }
    heap.settle()
    assert wire.json_response(answer).body == JSONResponse(answer).body
    old, new = cpu_ms(lambda: JSONResponse(answer)), cpu_ms(lambda: wire.json_response(answer))
    print(f"a 1,000-op push answer ({len(JSONResponse(answer).body):,} bytes), CPU per answer")
    print(f"  JSONResponse {old:.3f} ms, wire.json_response {new:.3f} ms: {new / old:.2f}")
    parse = cpu_ms(lambda: p.PushRequest.model_validate_json(raw), 50)
    floor = cpu_ms(lambda: orjson.loads(raw), 50)
    print(f"its request ({len(raw):,} bytes), CPU per parse")
    print(
        f"  PushRequest.model_validate_json {parse:.2f} ms; orjson.loads alone (no Op made, "
        f"nothing checked) {floor:.2f} ms: {parse / floor:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--push", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", help="another checkout, run alternately (ABBA)")
    args = parser.parse_args()
    servers(args, load_formset())
    encoding()


if __name__ == "__main__":
    main()
