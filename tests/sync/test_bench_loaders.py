"""The benches' bulk loader reads the cached demo store as ``gridcollect demo`` leaves it:
encrypted, with its passphrase file in the data dir. (It read it as a plain SQLite file, and
every bench of 100 k records and more stopped with "file is not a database".)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.core.store import driver
from sync.server import db, migrate
from tests.bench import bench_upgrade


def test_the_bulk_loader_reads_an_encrypted_demo_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as on a bench machine: no passphrase file given, the demo writes its own
    monkeypatch.delenv("GRIDCOLLECT_PASSPHRASE_FILE")
    data = tmp_path / "demo"
    cli = [sys.executable, "-m", "app.cli", "--data-dir", str(data), "demo", "--size", "300"]
    subprocess.run(cli, check=True, capture_output=True)
    store = data / "gridcollect.sqlite"
    assert not driver.is_plaintext(store)  # what the bench meets: an encrypted store
    with bench_upgrade.open_demo(store) as conn:
        (held,) = conn.execute("SELECT count(*) FROM records").fetchone()
    engine = db.make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    try:
        assert bench_upgrade.load(engine, store) == held > 0
        migrate.upgrade(engine)
        with db.read(engine) as conn:
            loaded = conn.execute(select(func.count()).select_from(db.records)).scalar_one()
        assert loaded == held
    finally:
        engine.dispose()


def test_the_push_floor_replays_every_row_the_platform_wrote(tmp_path: Path) -> None:
    """``bench_push_floor`` divides the server's CPU by a replay of the statements it captured:
    a statement the capture missed would make the floor look cheap. The replay of a push
    through the platform's op pipeline leaves every table as the push did."""
    from app.core.forms import load_formset
    from sync.server import auth
    from sync.server.app import create_app
    from tests.bench import bench_push_floor, bench_sync, sqlcapture

    formset = load_formset()
    base = bench_sync.platform_db(tmp_path / "base.db", formset)
    pushed = bench_push_floor.copy_db(base, tmp_path / "pushed.db")
    replayed = bench_push_floor.copy_db(base, tmp_path / "replayed.db")
    app = create_app(f"sqlite:///{pushed}", forms=formset, secret="test-secret")
    capture = sqlcapture.Capture(app.state.engine)
    _token, _expires, user = auth.login(
        app.state.engine, app.state.key, "root", "bench-password", "t"
    )
    bench_sync.seed_residents(app.state.service, user, bench_sync.residents(30, 0))
    app.state.engine.dispose()
    capture.dump(str(tmp_path / "steps.pickle"))
    steps = sqlcapture.load(tmp_path / "steps.pickle")
    assert sqlcapture.replay(steps, replayed) > 0
    after = bench_push_floor.counts(pushed)
    assert after["records"] == bench_push_floor.counts(base)["records"] + 30
    assert bench_push_floor.counts(replayed) == after
