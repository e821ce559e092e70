"""What a task's items add to a device's pull (the device side: HTTP, parsing, store writes).

Usage: python tests/bench/bench_task_pull.py [--records 100000] [--runs 2] [--chunk 1000]
       [--dir DIR]

Seeds a platform (SQLite file, its own process as deployed) with ``--records`` residents of
one grid, copies it, and on the copy an admin issues a verify task over every one of them (one
item per record). A fresh device of the grid's worker then pulls everything with the real
``SyncSession`` from the platform without the task and from the one with it, alternately,
``--runs`` times each. Prints the median of each and their ratio (the issue's aim: the items
add at most 20 %, a ratio <= 1.2), and the same pulls by a bare HTTP loop (JSON decoded, nothing
stored): the difference is the device's own work. ``--dir`` keeps the two platforms there and
reuses them. It prints figures; it never asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.forms import load_formset  # noqa: E402
from sync.server import admin, auth  # noqa: E402
from sync.server.app import create_app  # noqa: E402
from sync.server.console.audit import Actor  # noqa: E402
from sync.server.db import make_engine  # noqa: E402
from sync.server.tasks import actions  # noqa: E402
from sync.server.tasks.spec import TaskSpec  # noqa: E402
from tests.bench.bench_sync import (  # noqa: E402
    GRID,
    PASSWORD,
    ServerProcess,
    pull_run,
    residents,
    seed_server,
)
from tests.bench.common import median  # noqa: E402
from tests.sync.devicekit import seeded_template  # noqa: E402


def issue_task(db_path: Path) -> int:
    """A verify task over every resident of the grid, issued by an admin; its item count."""
    formset = load_formset()
    app = create_app(f"sqlite:///{db_path}", forms=formset, secret="bench-secret")
    engine = app.state.engine
    _token, _expires, user = auth.login(engine, app.state.key, "root", PASSWORD, "bench")
    spec = TaskSpec(title="核实电话", form="resident", fields=["phone"], grids=[GRID])
    t = time.perf_counter()
    made = actions.create(engine, formset, Actor(user), spec)
    print(f"(task issued over {made['items']:,} records in {time.perf_counter() - t:.1f} s)")
    engine.dispose()
    return int(made["items"])


def raw_pull(url: str, chunk: int) -> float:
    """Seconds of a whole pull from 0 by a bare HTTP loop (the platform's and the wire's part)."""
    http = requests.Session()
    login = {"username": "bench", "password": PASSWORD, "device_id": "bench-raw"}
    token = http.post(f"{url}/v1/login", json=login, timeout=60).json()["token"]
    headers = {"Authorization": f"Bearer {token}", "X-Device-Id": "bench-raw"}
    since, started = 0, time.perf_counter()
    while True:
        page = http.get(
            f"{url}/v1/pull", params={"since": since, "limit": chunk}, headers=headers, timeout=120
        ).json()
        since = page["cursor"]
        if not page["more"]:
            http.close()
            return time.perf_counter() - started


@contextlib.contextmanager
def workdir(given: str | None) -> Iterator[Path]:
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        yield Path(given)
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def platforms(root: Path, records: int) -> int:
    """The two platforms in ``root`` (made unless there); the task's item count."""
    formset = load_formset()
    plain, with_task = root / "plain.db", root / "task.db"
    if plain.exists() and with_task.exists():
        return records
    plain.unlink(missing_ok=True)
    seeded_template(plain, formset)
    engine = make_engine(f"sqlite:///{plain}")
    admin.put_user(engine, "bench", PASSWORD, "worker", grids=[GRID])
    admin.put_user(engine, "root", PASSWORD, "admin")
    engine.dispose()
    t = time.perf_counter()
    seed_server(plain, formset, residents(records, 10**6))
    print(f"(platform seeded with {records:,} residents in {time.perf_counter() - t:.1f} s)")
    shutil.copyfile(plain, with_task)
    return issue_task(with_task)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=1000, help="pull chunk (records/request)")
    parser.add_argument("--dir", help="keep (and reuse) the two platforms here")
    args = parser.parse_args()
    formset = load_formset()
    with workdir(args.dir) as root:
        items = platforms(root, args.records)
        plain, with_task = root / "plain.db", root / "task.db"
        servers = {"without": ServerProcess(plain), "with": ServerProcess(with_task)}
        times: dict[str, list[float]] = {"without": [], "with": []}
        raw: dict[str, list[float]] = {"without": [], "with": []}
        try:
            for run in range(args.runs):
                for name, served in servers.items():
                    raw[name].append(raw_pull(served.url, args.chunk))
                    store_path = root / f"{name}{run}.sqlite"
                    store_path.unlink(missing_ok=True)
                    summary = pull_run(served.url, store_path, formset, args.chunk)
                    times[name].append(summary.duration_s)
                    print(
                        f"pull {name:<7} task: {summary.duration_s:7.2f} s  records "
                        f"{summary.pulled:,}  tasks+items {summary.tasks:,}  "
                        f"received {summary.bytes_received / 1e6:6.1f} MB  "
                        f"(bare HTTP loop {raw[name][-1]:6.2f} s)"
                    )
        finally:
            for served in servers.values():
                served.stop()
        before, after = median(times["without"]), median(times["with"])
        bare = median(raw["without"]), median(raw["with"])
        print(
            f"bare HTTP loop: {bare[0]:.2f} s without, {bare[1]:.2f} s with: x{bare[1] / bare[0]:.2f};"
            f" the device's own work: {before - bare[0]:.2f} s without, {after - bare[1]:.2f} s with"
        )
        print(
            f"device pull of {args.records:,} records: {before:.2f} s without the task, "
            f"{after:.2f} s with its {items:,} items: x{after / before:.2f} (aim <= 1.2)"
        )


if __name__ == "__main__":
    main()
