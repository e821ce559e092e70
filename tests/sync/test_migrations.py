"""Platform schema migrations (Alembic), on SQLite and PostgreSQL.

The old platform is ``fixtures/platform_v0``: SQL dumps written by the code of the last release
without migrations (commit 128c2dd, ``fixtures/make_platform_v0.py``), with users, records,
versions, an open conflict, reviews, an alias and two devices that still had ops to push.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Boolean, Engine, MetaData, create_engine, inspect, select, text
from sqlalchemy.engine import Connection

from app.core.forms import FormSet
from app.core.store import Store
from sync.client import Client
from sync.server import db, migrate, oplog, termfill, terms
from sync.server.app import create_app
from sync.server.cli import main as server_cli
from sync.session import SyncSession
from tests.sync.conftest import PASSWORD, start_server
from tests.sync.conftest import Client as HttpClient
from tests.sync.devicekit import no_wait
from tests.sync.test_city_night import analyzed

FIXTURE = Path(__file__).with_name("fixtures") / "platform_v0"
FACTS: dict[str, Any] = json.loads((FIXTURE / "facts.json").read_text(encoding="utf-8"))
ROOT = Path(__file__).resolve().parents[2]


def _sqlite_from_dump(dump: Path, path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(dump.read_text(encoding="utf-8"))
    conn.close()
    return path


def _copy_rows(source: Engine, target: Engine) -> None:
    """Every row of the old SQLite platform into a PostgreSQL database at the baseline."""
    old, new = MetaData(), MetaData()
    old.reflect(source)
    new.reflect(target)
    with source.connect() as src, target.begin() as dst:
        for table in old.sorted_tables:
            if table.name not in new.tables:
                continue
            dest = new.tables[table.name]
            flags = [c.name for c in dest.columns if isinstance(c.type, Boolean)]
            rows = [dict(r._mapping) for r in src.execute(table.select())]
            for row in rows:
                row.update({f: bool(row[f]) for f in flags if row.get(f) is not None})
            if rows:
                dst.execute(dest.insert(), rows)
            if "id" in dest.columns and dest.c.id.autoincrement in (True, "auto") and rows:
                dst.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT max(id) FROM {table.name}))"
                    )
                )


@pytest.fixture
def old_platform(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A database holding the old platform, as the last release without migrations left it."""
    old_file = _sqlite_from_dump(FIXTURE / "platform.sql", tmp_path / "old.db")
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{old_file}"
        return
    _drop_everything(db_url)
    engine = db.make_engine(db_url)
    migrate.upgrade(engine, migrate.BASELINE)
    with engine.begin() as conn:  # a pre-migrations database has no alembic_version
        for sql in ("DROP TABLE alembic_version", "DELETE FROM counters", "DELETE FROM meta"):
            conn.execute(text(sql))
    _copy_rows(create_engine(f"sqlite:///{old_file}"), engine)
    engine.dispose()
    yield db_url
    _drop_everything(db_url)


def _drop_everything(url: str) -> None:
    engine = create_engine(db.normalize_url(url))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _snapshot(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        records = {
            r.id: (json.loads(r.data), r.version, bool(r.deleted), r.conflict)
            for r in conn.execute(db.records.select())
        }
        counts = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("record_versions", "reviews", "aliases", "ops", "users", "record_keys")
        }
    return {"records": records, "counts": counts}


def test_a_database_made_before_migrations_is_the_baseline(old_platform: str) -> None:
    engine = db.make_engine(old_platform)
    try:
        now = migrate.state(engine)
        assert (now.current, now.known) == (migrate.BASELINE, True)
        assert now.pending == (migrate.head() != migrate.BASELINE)
        before = _snapshot(engine)
        with pytest.raises(migrate.SchemaMismatch) as err:  # the server refuses to start on it
            create_app(old_platform, secret="s")
        assert "server-admin upgrade" in err.value.message("zh")
        assert _snapshot(engine) == before
    finally:
        engine.dispose()


def test_the_old_platform_upgrades_and_its_devices_sync_with_nothing_lost(
    old_platform: str, tmp_path: Path, formset: FormSet
) -> None:
    engine = db.make_engine(old_platform)
    before = _snapshot(engine)
    assert before["records"][FACTS["conflicted"]][3]  # the fixture holds an open conflict
    assert before["counts"]["reviews"] and before["counts"]["aliases"]
    assert migrate.upgrade(engine) == (migrate.BASELINE, migrate.head())
    assert _snapshot(engine) == before  # the upgrade itself changes no row
    with engine.connect() as conn:  # every old review was a fuzzy duplicate review
        kinds = conn.execute(text("SELECT DISTINCT kind FROM reviews")).scalars().all()
        assert kinds == ["duplicate"]
        assert _stored_terms(conn) == _expected_terms(conn, formset)  # 0007's backfill
        assert _stored_words(conn) == _expected_words(conn)  # 0010's, per grid
    engine.dispose()

    app = create_app(old_platform, forms=formset, secret="after-upgrade")
    server, thread, url = start_server(app)
    devices = [_old_device(name, tmp_path, formset, url) for name in ("a", "b")]
    try:
        for _round in range(2):
            for store, client in devices:
                SyncSession(store, client).run()
        after = _snapshot(app.state.engine)
        _assert_nothing_lost(before, after)
        for store, _client in devices:
            assert store.conn.execute(
                "SELECT count(*) FROM outbox WHERE state = 'pending'"
            ).fetchone() == (0,)
        assert _live(devices[0][0]) == _live(devices[1][0])
    finally:
        for store, client in devices:
            client.close()
            store.close()
        server.should_exit = True
        thread.join(30)
        app.state.engine.dispose()


def test_an_upgrade_leaves_fresh_statistics(old_platform: str) -> None:
    """Issue 19 item 4: revisions rebuild tables and indexes; the planner then needs
    statistics (SQLite: ``sqlite_stat1``, PostgreSQL: ANALYZE)."""
    engine = db.make_engine(old_platform)
    try:
        if engine.dialect.name == "postgresql":  # the fixture's own upgrade to the baseline
            with engine.begin() as conn:
                conn.execute(text("SELECT pg_stat_reset()"))
        assert not analyzed(engine, "records")
        migrate.upgrade(engine)
        assert analyzed(engine, "records")
    finally:
        engine.dispose()


def test_a_platform_at_0007_gets_its_search_words_per_grid(
    old_platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revision 0010 rebuilds the words of an index 0007 built (one set for the whole office)
    as words per grid, from the records' search keys; nothing is left noted."""
    monkeypatch.setattr(termfill, "PAGE", 3)  # the records and words are read in many pages
    engine = db.make_engine(old_platform)
    try:
        migrate.upgrade(engine, "0007")
        with engine.begin() as conn:  # 0007's words had no grid; one stale word among them
            conn.execute(text("INSERT INTO search_words (term, word) VALUES ('n:旧', 'n:旧名')"))
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert _stored_words(conn) == _expected_words(conn)
            assert conn.execute(select(db.new_words)).all() == []
    finally:
        engine.dispose()


def test_an_upgraded_platform_sends_its_existing_grids_to_devices_once(
    old_platform: str, formset: FormSet
) -> None:
    """Revision 0006 numbers the grids a platform already had above its counter, so every
    device, whatever its cursor, receives its grids (and boundaries) on its next pull."""
    engine = db.make_engine(old_platform)
    ring = [[120.1, 30.27], [120.11, 30.27], [120.11, 30.28]]
    grid_a = "330106001001-01"
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE grids SET polygon = :p WHERE code = :c"),
            {"p": json.dumps(ring), "c": grid_a},
        )
        top = conn.execute(text("SELECT value FROM counters WHERE name = 'seq'")).scalar_one()
    migrate.upgrade(engine)
    with engine.connect() as conn:
        numbers = conn.execute(text("SELECT seq FROM grids ORDER BY code")).scalars().all()
        now = conn.execute(text("SELECT value FROM counters WHERE name = 'seq'")).scalar_one()
    assert numbers == [top + 1, top + 2, top + 3] and now == top + 3
    engine.dispose()
    app = create_app(old_platform, forms=formset, secret="after-upgrade")
    server, thread, url = start_server(app)
    try:
        wang = HttpClient(url, "dev-after-upgrade")
        assert wang.login("wang", PASSWORD).status_code == 200
        page = wang.pull(since=top)  # a device that had pulled everything before the upgrade
        assert [(g["code"], g["polygon"]) for g in page["grids"]] == [(grid_a, ring)]
        assert wang.pull(since=page["cursor"])["grids"] == []
        wang.http.close()
    finally:
        server.should_exit = True
        thread.join(30)
        app.state.engine.dispose()


def test_an_upgraded_platform_numbers_grids_entering_a_scope_from_then_on(
    old_platform: str,
) -> None:
    """Revision 0016 adds ``scope_grants`` empty (grants made before it are not known); from
    then on a grid given to a worker is numbered from the change counter (PROTOCOL.md §8)."""
    from sync.server import admin

    engine = db.make_engine(old_platform)
    try:
        migrate.upgrade(engine, "0015")
        with engine.connect() as conn:
            assert not conn.dialect.has_table(conn, "scope_grants")
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(select(db.scope_grants)).all() == []
            top = conn.execute(text("SELECT value FROM counters WHERE name = 'seq'")).scalar_one()
        grids = admin.list_users(engine)
        wang = next(g for u, _r, _c, g in grids if u == "wang")
        other = next(code for code in _all_grids(engine) if code not in wang)
        assert admin.set_user_grids(engine, "wang", [*wang, other]) == ([other], [])
        with engine.connect() as conn:
            rows = conn.execute(select(db.scope_grants.c.seq, db.scope_grants.c.grid)).all()
        assert [tuple(r) for r in rows] == [(top + 1, other)]
    finally:
        engine.dispose()


def _all_grids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(db.grids.c.code)).scalars().all())


def _stored_terms(conn: Connection) -> set[tuple[str, str, str]]:
    return {tuple(r) for r in conn.execute(select(db.record_terms))}  # type: ignore[misc]


def _expected_terms(conn: Connection, formset: FormSet) -> set[tuple[str, str, str]]:
    """The search keys the write path would have given every stored record."""
    out: set[tuple[str, str, str]] = set()
    for r in conn.execute(select(db.records)):
        found = terms.record_keys(formset.form(r.form), json.loads(r.data), r.title)
        out.update((t, r.grid or "", r.id) for t in found)
    assert out, "the old platform holds records with search terms"
    return out


def _stored_words(conn: Connection) -> set[tuple[str, str, str]]:
    return {tuple(r) for r in conn.execute(select(db.search_words))}  # type: ignore[misc]


def _expected_words(conn: Connection) -> set[tuple[str, str, str]]:
    """Every word the records hold, with its terms, in each grid that holds it."""
    held = {(g, w) for w, g, _rid in _stored_terms(conn) if terms.is_word(w)}
    assert {g for g, _w in held} >= {"330106001001-01"}, "the old platform has words in grids"
    return {(g, t, w) for g, w in held for t in terms.word_terms(w)}


def _old_device(name: str, tmp_path: Path, formset: FormSet, url: str) -> tuple[Store, Client]:
    path = tmp_path / f"device_{name}.sqlite"
    shutil.copyfile(FIXTURE / path.name, path)
    store = Store(path, formset)
    client = Client(url, store.device_id, retry=no_wait())
    client.login("wang", PASSWORD)
    return store, client


def _assert_nothing_lost(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Every old record is still there, the pending ops applied exactly once, no duplicate."""
    old, new = before["records"], after["records"]
    assert set(old) <= set(new)
    edited, created = FACTS["edited_offline"], FACTS["created_offline"]
    for rid, (data, version, deleted, _conflict) in old.items():
        if rid != edited:
            assert new[rid][:3] == (data, version, deleted), rid
    assert new[edited][0]["former_name"] == "待同步" and new[edited][1] == old[edited][1] + 1
    assert set(new) - set(old) == {created}
    # one new version for the edit, one for the create; each pending op in the log once
    assert after["counts"]["record_versions"] == before["counts"]["record_versions"] + 2
    assert after["counts"]["ops"] == before["counts"]["ops"] + 2
    live_ids = [d.get("id_number") for d, _v, gone, _c in new.values() if not gone]
    numbers = [n for n in live_ids if n]
    assert len(numbers) == len(set(numbers))


def _live(store: Store) -> dict[str, Any]:
    rows = store.conn.execute("SELECT id, data FROM records WHERE deleted = 0").fetchall()
    return {i: json.loads(d) for i, d in rows}


def test_replaying_every_revision_gives_exactly_the_models(db_url: str) -> None:
    """Fails when a model change has no revision: autogenerate finds nothing to do at head."""
    if not db_url.startswith("sqlite"):
        _drop_everything(db_url)
    engine = db.make_engine(db_url)
    try:
        assert migrate.upgrade(engine) == (None, migrate.head())
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_a_new_database_is_created_at_head_and_a_newer_one_is_refused(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        _drop_everything(db_url)
    engine = db.make_engine(db_url)
    try:
        db.init_db(engine)
        assert migrate.state(engine).pending is False
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(migrate.SchemaMismatch) as err:
            db.init_db(engine)
        assert err.value.ahead and "9999" in err.value.message("en")
        with pytest.raises(migrate.SchemaMismatch):
            migrate.upgrade(engine)
    finally:
        engine.dispose()


def test_the_commands_check_upgrade_and_refuse(
    old_platform: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if migrate.head() == migrate.BASELINE:
        pytest.skip("no revision after the baseline yet")
    base = ["--lang", "en"]
    assert server_cli([*base, "server-admin", "--db", old_platform, "upgrade", "--check"]) == 1
    assert "upgrade pending: 0001 -> " in capsys.readouterr().out
    assert server_cli([*base, "server", "--db", old_platform, "--port", "1"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "server-admin upgrade" in line
    assert server_cli([*base, "server-admin", "--db", old_platform, "list-users"]) == 2
    capsys.readouterr()
    assert server_cli([*base, "server-admin", "--db", old_platform, "upgrade"]) == 0
    assert f"schema upgraded from 0001 to {migrate.head()}" in capsys.readouterr().out
    assert server_cli([*base, "server-admin", "--db", old_platform, "upgrade", "--check"]) == 0
    assert server_cli([*base, "server-admin", "--db", old_platform, "upgrade"]) == 0
    assert "schema is current" in capsys.readouterr().out


_KILLABLE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sync.server.cli import main

    marker = Path(sys.argv[1])

    @event.listens_for(Engine, "before_cursor_execute")
    def pause(conn, cursor, statement, params, context, executemany):
        # every revision has run; only the version row and the commit are left
        if statement.lstrip().upper().startswith("UPDATE ALEMBIC_VERSION"):
            marker.write_text("paused")
            time.sleep(600)

    sys.exit(main(["server-admin", "--db", sys.argv[2], "upgrade"]))
    """
)


def test_an_upgrade_killed_halfway_leaves_the_old_database(
    old_platform: str, tmp_path: Path
) -> None:
    if migrate.head() == migrate.BASELINE:
        pytest.skip("no revision after the baseline yet")
    engine = db.make_engine(old_platform)
    before = _snapshot(engine)
    engine.dispose()
    marker = tmp_path / "paused"
    script = tmp_path / "killable.py"
    script.write_text(_KILLABLE, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(marker), old_platform], env=env)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the upgrade ended before the pause"
            assert time.monotonic() < deadline, "the upgrade never reached the pause"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    engine = db.make_engine(old_platform)
    try:
        _wait_for_pg_backend_gone(engine)
        assert migrate.state(engine).current == migrate.BASELINE
        assert _snapshot(engine) == before
        assert migrate.upgrade(engine) == (migrate.BASELINE, migrate.head())
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), db.metadata) == []
        assert _snapshot(engine) == before
    finally:
        engine.dispose()


def _wait_for_pg_backend_gone(engine: Engine) -> None:
    """PostgreSQL notices the killed client's dropped socket and rolls its transaction back."""
    if engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + 30
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            busy = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
            conn.commit()
            if not busy:
                return
            time.sleep(0.05)


def test_an_upgraded_platform_reads_people_by_birth_from_the_index_alone(
    old_platform: str,
) -> None:
    """Revision 0017: on PostgreSQL ``ix_people_birth`` carries name, pinyin and record id, as
    a new platform's does; SQLite keeps (form, birth)."""
    engine = db.make_engine(old_platform)
    try:
        migrate.upgrade(engine)
        (index,) = [
            i for i in inspect(engine).get_indexes("people") if i["name"] == "ix_people_birth"
        ]
        assert index["column_names"][:2] == ["form", "birth"]
        included = index.get("include_columns") or index.get("dialect_options", {}).get(
            "postgresql_include", []
        )
        pg = engine.dialect.name == "postgresql"
        assert list(included) == (["name", "pinyin", "record_id"] if pg else []), index
    finally:
        engine.dispose()


def test_an_upgraded_platform_answers_replays_without_the_op_id_index(old_platform: str) -> None:
    """Revision 0018 drops ``ix_ops_op_id``: the upgraded platform's op log keeps its rows and
    a replay of an op it logged before the upgrade is still answered from the log, by a probe
    of the primary key (device_id, op_id). It adds ``pending_terms`` empty: every record the
    platform held has its search terms already."""
    engine = db.make_engine(old_platform)
    try:
        migrate.upgrade(engine)
        names = {i["name"] for i in inspect(engine).get_indexes("ops")}
        assert "ix_ops_op_id" not in names and "ix_ops_device_record" in names, names
        with engine.connect() as conn:
            assert conn.execute(select(db.pending_terms)).all() == []
            logged = conn.execute(select(db.ops.c.device_id, db.ops.c.op_id).limit(5)).all()
            assert logged
            for device, op_id in logged:
                found = oplog.lookup(conn, device, "", [], hashes={op_id: None})
                match = found.get(op_id)
                assert match and match["device_id"] == device, (device, op_id, found)
    finally:
        engine.dispose()


def test_an_upgraded_platform_sends_duplicates_decided_different_to_devices(
    old_platform: str, formset: FormSet
) -> None:
    """Revision 0021 numbers the duplicates already decided "different" above the counter,
    so a device whatever its cursor hears the pair with its next pull (PROTOCOL.md §9.2)."""
    engine = db.make_engine(old_platform)
    pair = FACTS["review_pair"]
    try:
        migrate.upgrade(engine, "0020_scope_leaves")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE reviews SET state = 'different', decided_by = 'chen', "
                    "decided_at = '2026-12-06T05:00:00.000Z' WHERE record_id = :a AND other_id = :b"
                ),
                {"a": pair[1], "b": pair[0]},
            )
            top = conn.execute(text("SELECT value FROM counters WHERE name = 'seq'")).scalar_one()
        migrate.upgrade(engine)
        with engine.connect() as conn:
            numbered = conn.execute(text("SELECT seq FROM reviews WHERE seq IS NOT NULL")).all()
            now = conn.execute(text("SELECT value FROM counters WHERE name = 'seq'")).scalar_one()
        assert [tuple(r) for r in numbered] == [(top + 1,)] and now == top + 1
    finally:
        engine.dispose()
    app = create_app(old_platform, forms=formset, secret="after-upgrade")
    server, thread, url = start_server(app)
    try:
        wang = HttpClient(url, "dev-after-upgrade")
        assert wang.login("wang", PASSWORD).status_code == 200
        page = wang.pull(since=top)  # a device that had pulled everything before the upgrade
        assert [(d["record_id"], d["other_id"]) for d in page["not_duplicates"]] == [
            (pair[1], pair[0])
        ]
        assert "not_duplicates" not in wang.pull(since=page["cursor"])
        wang.http.close()
    finally:
        server.should_exit = True
        thread.join(30)
        app.state.engine.dispose()


def test_an_upgraded_platform_lets_a_supervisor_overrule_a_workers_different(
    old_platform: str, formset: FormSet
) -> None:
    """Revision 0022 gives the items decided before it their decider's role, so a pair a
    worker told apart before the upgrade is still open to a supervisor's "same" (§9)."""
    engine = db.make_engine(old_platform)
    pair = FACTS["review_pair"]
    try:
        migrate.upgrade(engine, "0021_review_numbers")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE reviews SET state = 'different', decided_by = 'wang', "
                    "decided_at = '2026-12-06T05:00:00.000Z' WHERE record_id = :a AND other_id = :b"
                ),
                {"a": pair[1], "b": pair[0]},
            )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            roles = conn.execute(
                text("SELECT decided_by, decided_role FROM reviews WHERE state <> 'open'")
            ).all()
        assert [tuple(r) for r in roles] == [("wang", "worker")]
    finally:
        engine.dispose()
    app = create_app(old_platform, forms=formset, secret="after-upgrade")
    server, thread, url = start_server(app)
    try:
        chen = HttpClient(url, "dev-chen-after-upgrade")
        assert chen.login("chen", PASSWORD).status_code == 200
        listed = chen.http.get(
            f"{url}/v1/reviews", params={"state": "by_worker"}, headers=chen.headers, timeout=30
        ).json()["reviews"]
        [item] = listed
        resp = chen.http.post(
            f"{url}/v1/reviews/{item['id']}",
            json={"decision": "same"},
            headers=chen.headers,
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["merged_into"] == pair[0]
        chen.http.close()
    finally:
        server.should_exit = True
        thread.join(30)
        app.state.engine.dispose()
