"""Cold start to a usable main window on the demo data dir (prints; asserts nothing).

Usage: python tests/bench/bench_startup.py [--size 1630000] [--seed 7] [--data-dir DIR]
                                           [--runs 5] [--drop-caches]

Each run is a fresh ``python`` process (offscreen Qt) that does what ``gridcollect gui``
does (``app.ui.main.build`` then ``show``) and reports, on the system-wide monotonic clock,
when the window was shown with the first page of the resident list filled and painted.
The parent measures from just before it spawned the process. Baseline, same run: a process
that imports PySide6 and shows an empty QMainWindow. ``--drop-caches`` (root) empties the OS
page cache before each run for a truly cold disk. The demo store is the one
``bench_search.py`` builds and caches. An encrypted data dir (a ``gridcollect.key`` beside the
store) opens with the passphrase in ``$GRIDCOLLECT_PASSPHRASE_FILE``: the time then includes
deriving the key (scrypt), as the app's start does once the passphrase is typed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_search import DEFAULT_SIZE, ensure_demo  # noqa: E402
from tests.bench.common import median  # noqa: E402

APP_CHILD = r"""
import json, sys, time
marks = {"start": time.monotonic()}
from PySide6.QtCore import QTimer
from app.ui.main import build
marks["imported"] = time.monotonic()
app, window = build(sys.argv[1], "zh")
marks["built"] = time.monotonic()
window.show()
model = window.current_model()

def painted():
    marks["usable"] = time.monotonic()
    marks["rows"] = model.rowCount()
    deadline = time.monotonic() + 120
    while not window.counts_settled and time.monotonic() < deadline:  # background counts
        app.processEvents()
        time.sleep(0.005)
    marks["counts"] = time.monotonic()
    print(json.dumps(marks))
    window.close()
    app.quit()

def first_page():
    if model.rowCount() == 0 and not model.exhausted:
        QTimer.singleShot(1, first_page)  # rows still on their way (a worker)
        return
    window.repaint()  # the first page is on screen
    painted()

QTimer.singleShot(0, first_page)
app.exec()
"""

BASE_CHILD = r"""
import json, time
marks = {"start": time.monotonic()}
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
marks["imported"] = time.monotonic()
app = QApplication([])
window = QMainWindow()
window.resize(1400, 860)
window.show()
def done():
    window.repaint()
    marks["usable"] = time.monotonic()
    print(json.dumps(marks))
    app.quit()
QTimer.singleShot(0, done)
app.exec()
"""


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def spawn(code: str, *args: str) -> dict[str, float]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    marks = json.loads(out.strip().splitlines()[-1])
    return {k: (v - t0) * 1000 if k != "rows" else v for k, v in marks.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--drop-caches", action="store_true")
    args = parser.parse_args()
    data = ensure_demo(args.size, args.seed, args.data_dir)
    db = data / "gridcollect.sqlite"
    print(f"data dir: {data} ({db.stat().st_size / 2**20:,.0f} MiB)")
    cold = args.drop_caches and drop_caches()
    if args.drop_caches and not cold:
        print("(could not drop the page cache: runs are warm)")
    app_runs, base_runs = [], []
    for _ in range(args.runs):
        if cold:
            drop_caches()
        app_runs.append(spawn(APP_CHILD, str(data)))
        if cold:
            drop_caches()
        base_runs.append(spawn(BASE_CHILD))
    rows = int(app_runs[-1]["rows"])
    print(
        f"{'':<34}{'median':>9}{'max':>9}   (ms from spawn, {args.runs} runs, "
        f"{'cold' if cold else 'warm'} page cache)"
    )
    for label, key, runs in (
        ("python + imports (app)", "imported", app_runs),
        ("store opened, window built", "built", app_runs),
        (f"usable: shown, first page ({rows} rows)", "usable", app_runs),
        ("tab and status-bar counts (background)", "counts", app_runs),
        ("baseline: empty QMainWindow shown", "usable", base_runs),
    ):
        values = [r[key] for r in runs]
        print(f"{label:<34}{median(values):>9.0f}{max(values):>9.0f}")
    ratio = median([r["usable"] for r in app_runs]) / median([r["usable"] for r in base_runs])
    print(f"usable / baseline: {ratio:.2f}x   (aim: usable <= 2000 ms)")


if __name__ == "__main__":
    main()
