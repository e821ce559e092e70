"""Hypothesis stateful test: three devices, the real server over HTTP, random offline work.

Devices: two laptops of worker wang (grid A) and one of supervisor chen (grids A and B). Rules
create residents and houses (ID numbers and house codes from small pools, so the same person or
house is created on two devices), create, move and delete houses, units and addresses with a
location (stored as the editor stores it: lon/lat with its Gauss-Krüger projection), type
values the server refuses, edit, delete, resolve conflicts and sync one device at a time (also
with a person typing while the sync runs) or two at once (their requests
interleave on the server). Checked after every sync: no request answered 500 (the client
would retry and hide it), unsent edits survive the pull, idempotent replay of the last batch,
no record outside the user's scope received, server versions contiguous and never lower on a
device, at most one live person per ID number and one live house/unit/address per natural key,
no location refused for its shape, an op refused by a 4xx never sent again and each op carried
at most twice on average by a device's pushes. At quiescence (every device synced twice):
convergence with the server for every record in scope, no lost update, a pull from 0 equal
to what the increments delivered (the cursor never skipped), and a department that followed
the feed of a grant (grid A, a name filter) between the syncs holds exactly a fresh export.
Tasks (``stateful_tasks``): issue, cancel, item done by a save, item unable; an item is done
iff a qualifying save happened, and the console's counts equal the items' states on the
platform and on every device. Runs on SQLite and PostgreSQL
(a copy of a seeded template database per example).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule
from sqlalchemy import create_engine, func, select, text

from app.core.forms import FormSet, load_formset
from app.core.records import clean
from app.core.store import driver
from app.core.textnorm import normalize_key
from sync import replica
from sync.client import ProtocolError
from sync.merge import same
from sync.server import db
from tests.factories import id_number, resident
from tests.sync.deptkit import Follower
from tests.sync.devicekit import (
    GRID_A,
    GRID_B,
    Device,
    Served,
    make_device,
    seed_platform,
    serve_url,
)
from tests.sync.located import LOCATED_FORMS, located, location
from tests.sync.stateful_tasks import TaskRules

USERS = ("wang", "wang", "chen")
SCOPES = {"wang": {GRID_A}, "chen": {GRID_A, GRID_B}}
ID_SEQS = (301, 303, 305)  # three people; odd = male, so every value pair stays consistent
NAMES = ("张三", "李四", "王五")
PHONES = ("13800000001", "13800000002", "13800000003")
FORMER = ("甲", "乙", None)
HOUSE_CODES = ("H-1", "H-2")
EDITS = {
    "phone": PHONES,
    "name": NAMES,
    "former_name": FORMER,
    "id_number": tuple(id_number(seq=s) for s in ID_SEQS),
}
ACKED = ("applied", "conflict", "merged")

LOCATED_KEYS = (1, 2)  # so the same house/unit/address is created on two devices
PLACES = (1, 2, 3)  # locations, so two devices move a record to different places

DEV = st.integers(0, len(USERS) - 1)
PICKS = 8  # _pick draws from a fixed range
QUIESCE_ROUNDS = 4  # a deferred op needs a second round; more than 3 means ops never settle


class Template(Protocol):
    """A seeded platform database that each example copies (seeding hashes passwords)."""

    def fresh(self, root: Path) -> str:
        """A new database like the template; returns its URL."""
        ...

    def drop(self, url: str) -> None:
        """Remove a database ``fresh`` made."""
        ...


@dataclass
class SqliteTemplate:
    path: Path

    def fresh(self, root: Path) -> str:
        shutil.copy(self.path, root / "platform.db")
        return f"sqlite:///{root / 'platform.db'}"

    def drop(self, url: str) -> None:
        pass  # the file goes with the example's temporary directory


@dataclass
class PgTemplate:
    """``CREATE DATABASE ... TEMPLATE``: a copy of the seeded database per example."""

    server: str  # cluster URL without a database name
    name: str

    def __post_init__(self) -> None:
        self._numbers = itertools.count(1)
        self._maint = create_engine(f"{self.server}/postgres", isolation_level="AUTOCOMMIT")

    def create(self, name: str, template: str | None = None) -> str:
        with self._maint.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            clause = f' TEMPLATE "{template}"' if template else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        return f"{self.server}/{name}"

    def fresh(self, root: Path) -> str:
        return self.create(f"{self.name}_{next(self._numbers)}", template=self.name)

    def drop(self, url: str) -> None:
        with self._maint.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))

    def close(self) -> None:
        self.drop(f"{self.server}/{self.name}")
        self._maint.dispose()


class SyncMachine(TaskRules, RuleBasedStateMachine):
    template: Template
    formset: FormSet

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="gc-stateful-"))
        self.db_url = self.template.fresh(self.root)
        self.served: Served = serve_url(self.db_url, self.formset)
        self.devs: list[Device] = []
        self.received: list[dict[str, int]] = []
        self.versions_seen: list[dict[str, int]] = []
        for i, user in enumerate(USERS):
            dev = make_device(self.served.url, self.root, self.formset, user, name=f"d{i}")
            self.devs.append(dev)
            self.received.append({})
            self.versions_seen.append({})
            self._watch_pulls(i)
            self._watch_pushes(i)
        self.synced = False
        self.backups: dict[int, tuple[Path, dict[str, int], dict[str, int]]] = {}
        self.retired: list[tuple[str, list[tuple[Any, ...]]]] = []  # outboxes of replaced dirs
        # a department system follows the feed of a grant over grid A while the devices sync
        self.follower = Follower(self.served.url, self.served.app, self.formset, (GRID_A,))
        self._start_tasks()  # tasks: issue, cancel, done by a save, unable (stateful_tasks)

    def teardown(self) -> None:
        self._stop_tasks()
        for dev in self.devs:
            dev.close()
        self.served.stop()
        self.template.drop(self.db_url)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------

    def _watch_pulls(self, i: int) -> None:
        """Record what pulls deliver and check scope and cursor order on the way."""
        dev, log = self.devs[i], self.received[i]
        scope = SCOPES[dev.user]
        real = dev.client.pull

        def pull(since: int, limit: int) -> Any:
            page = real(since, limit)
            assert page.cursor >= since
            for r in page.records:
                assert r.data.get("grid") in scope, "a record outside the user's scope"
                log[r.id] = max(log.get(r.id, 0), r.version)
            return page

        dev.client.pull = pull  # type: ignore[method-assign]

    def _watch_pushes(self, i: int) -> None:
        """Count the ops every push request carries (and note each request's answer, to say
        why when a sync carried too many), and check that an op the server named in a
        whole-request 4xx (set aside: answered once) is never sent again."""
        dev = self.devs[i]
        if not hasattr(self, "carried"):
            self.carried: list[int] = []
            self.named: list[set[str]] = []
            self.requests: list[list[str]] = []
        self.carried.append(0)
        self.requests.append([])
        self.named.append(set())
        real = dev.client.push

        def push(ops: Any, *task_results: Any) -> Any:
            ids = {op["op_id"] for op in ops}
            assert not ids & self.named[i], "an op answered by a 4xx was sent again"
            self.carried[i] += len(ops)
            try:
                answer = real(ops, *task_results)
            except ProtocolError as exc:
                self.requests[i].append(f"{len(ops)} ops: {exc.code} names {exc.op_id}")
                if exc.op_id:
                    self.named[i].add(exc.op_id)
                raise
            self.requests[i].append(f"{len(ops)} ops: {[r.status for r in answer.results]}")
            return answer

        dev.client.push = push  # type: ignore[method-assign]

    def _live(self, dev: Device, form: str) -> list[str]:
        rows = dev.store.conn.execute(
            "SELECT id FROM records WHERE form = ? AND deleted = 0 ORDER BY id", (form,)
        )
        return [r[0] for r in rows]

    def _pick(self, data: st.DataObject, ids: list[str]) -> str | None:
        """One of ``ids``. The draw never depends on local state: two devices syncing at once
        leave states that differ from run to run, and Hypothesis needs the same draws."""
        index = data.draw(st.integers(0, PICKS - 1))
        return ids[index % len(ids)] if ids else None

    def _grid(self, dev: Device, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(SCOPES[dev.user])))

    # -- rules ---------------------------------------------------------------------------------

    @rule(d=DEV, person=st.integers(0, 2), name=st.sampled_from(NAMES), data=st.data())
    def create_resident(self, d: int, person: int, name: str, data: st.DataObject) -> None:
        dev = self.devs[d]
        fields = resident(seq=ID_SEQS[person], name=name, grid=self._grid(dev, data))
        house = self._pick(data, self._live(dev, "house"))
        if data.draw(st.booleans()) and house:
            fields["house_ref"] = house
        dev.save("resident", fields)

    @rule(d=DEV, code=st.sampled_from(HOUSE_CODES), data=st.data())
    def create_house(self, d: int, code: str, data: st.DataObject) -> None:
        dev = self.devs[d]
        dev.save(
            "house",
            {"house_code": code, "address_text": f"幸福路{code}", "grid": self._grid(dev, data)},
        )

    @rule(
        d=DEV,
        form=st.sampled_from(LOCATED_FORMS),
        key=st.sampled_from(LOCATED_KEYS),
        place=st.sampled_from(PLACES),
        complete=st.booleans(),
        data=st.data(),
    )
    def create_located(
        self, d: int, form: str, key: int, place: int, complete: bool, data: st.DataObject
    ) -> None:
        """A house, unit or address with a location, as the editor or an import stores it."""
        dev = self.devs[d]
        fields = located(self.formset, form, key, grid=self._grid(dev, data), place=place)
        dev.save(form, fields, status="complete" if complete else "draft")

    @rule(d=DEV, form=st.sampled_from(LOCATED_FORMS), place=st.sampled_from(PLACES), data=st.data())
    def move_location(self, d: int, form: str, place: int, data: st.DataObject) -> None:
        dev = self.devs[d]
        record_id = self._pick(data, self._live(dev, form))
        if record_id is not None:
            dev.edit(record_id, location=location(self.formset, place))

    @rule(d=DEV, form=st.sampled_from(LOCATED_FORMS), data=st.data())
    def delete_located(self, d: int, form: str, data: st.DataObject) -> None:
        dev = self.devs[d]
        record_id = self._pick(data, self._live(dev, form))
        if record_id is not None:
            dev.store.delete(record_id, author=dev.user)

    @rule(d=DEV, n=st.integers(1, 3), data=st.data())
    def type_values_the_server_refuses(self, d: int, n: int, data: st.DataObject) -> None:
        """Values of a shape no field holds (an object in a text field): the server refuses a
        whole batch for the first (422 bad_value); each is set aside, the rest goes on."""
        dev = self.devs[d]
        for i in range(n):
            fields = {"house_code": f"H-9{i}", "address_text": {"楼": i}}
            dev.save("house", {**fields, "grid": self._grid(dev, data)})

    @rule(d=st.integers(0, 1), person=st.integers(0, 2))
    def worker_types_a_record_of_another_grid(self, d: int, person: int) -> None:
        self.devs[d].save("resident", resident(seq=ID_SEQS[person], grid=GRID_B))

    @rule(d=st.integers(0, 1), person=st.integers(0, 2), phone=st.sampled_from(PHONES))
    def a_person_moves_from_grid_b(self, d: int, person: int, phone: str) -> None:
        """Chen registers a person in grid B (outside wang's scope) and syncs; the person
        moves and wang registers them in grid A: answered like any create, it becomes a
        transfer claim (迁入/迁出) when wang syncs."""
        self.devs[2].save("resident", resident(seq=ID_SEQS[person], grid=GRID_B))
        self._sync(2)
        self.devs[d].save("resident", resident(seq=ID_SEQS[person], grid=GRID_A, phone=phone))

    @rule(data=st.data(), decision=st.sampled_from(["same", "different"]))
    def supervisor_decides_a_transfer(self, data: st.DataObject, decision: str) -> None:
        """Chen accepts (the holder moves to the claim's grid and absorbs it) or rejects (the
        claim's key fields are flagged for its worker); devices learn it when they sync."""
        client = self.devs[2].client
        open_ids = sorted(r.id for r in client.reviews().reviews if r.kind == "transfer")
        picked = self._pick(data, [str(i) for i in open_ids])
        if picked is None:
            return
        before = self._fingerprint()
        try:
            client.decide_review(int(picked), decision)
        except ProtocolError as exc:
            # the claim's number was changed since to one a third record holds: merging would
            # give two live records one number; refused, nothing changed
            assert (exc.status, exc.code) == (409, "duplicate_key"), exc.code
            assert self._fingerprint() == before
            return
        event(f"transfer claim decided: {decision}")

    @rule(d=DEV, field=st.sampled_from(sorted(EDITS)), data=st.data())
    def edit(self, d: int, field: str, data: st.DataObject) -> None:
        dev = self.devs[d]
        record_id = self._pick(data, self._live(dev, "resident"))
        value = data.draw(st.sampled_from(EDITS[field]))
        if record_id is not None:
            dev.edit(record_id, **{field: value})

    @rule(d=DEV, data=st.data())
    def delete(self, d: int, data: st.DataObject) -> None:
        dev = self.devs[d]
        record_id = self._pick(data, self._live(dev, "resident") + self._live(dev, "house"))
        if record_id is not None:
            dev.store.delete(record_id, author=dev.user)

    @rule(d=DEV, data=st.data())
    def resolve(self, d: int, data: st.DataObject) -> None:
        dev = self.devs[d]
        ids = [
            r[0]
            for r in dev.store.conn.execute(
                "SELECT id FROM records WHERE conflict IS NOT NULL ORDER BY id"
            )
        ]
        record_id = self._pick(data, ids)
        sides = data.draw(st.lists(st.sampled_from(["mine", "theirs"]), min_size=4, max_size=4))
        if record_id is None:
            return
        conflict = dev.get(record_id).conflict or []
        chosen = {c["field"]: c[sides[i % len(sides)]] for i, c in enumerate(conflict)}
        replica.resolve(dev.store, record_id, chosen, author=dev.user)

    @rule(d=DEV)
    def sync(self, d: int) -> None:
        self._sync(d)
        self._replay_last_batch(d)

    @rule(pair=st.sampled_from([(0, 1), (0, 2), (1, 2)]))
    def sync_two_at_once(self, pair: tuple[int, int]) -> None:
        """Two devices sync at the same time: their pushes and pulls interleave on the server
        (PostgreSQL runs them in parallel transactions; SQLite queues the writers)."""
        failures: list[BaseException] = []

        def run(d: int) -> None:
            try:
                self._run_sync(d)
            except BaseException as exc:  # raised again in the test's thread
                failures.append(exc)

        threads = [threading.Thread(target=run, args=(d,)) for d in pair]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        for d in pair:
            self._check_after_sync(d)

    @rule(d=DEV, field=st.sampled_from(sorted(EDITS)), data=st.data())
    def sync_while_typing(self, d: int, field: str, data: st.DataObject) -> None:
        """A person edits a record while the sync runs (after its push, before its pull):
        the pull must rebase that unsent edit, never overwrite it."""
        dev = self.devs[d]
        value = data.draw(st.sampled_from(EDITS[field]))
        typed: list[str] = []
        asked: list[bool] = []  # draw once per sync, however many empty pull chunks follow

        def progress(phase: str, done: int, _total: int) -> None:
            if phase == "pull" and done == 0 and not asked:
                asked.append(True)
                record_id = self._pick(data, self._live(dev, "resident"))
                if record_id is not None and not same(dev.get(record_id).data.get(field), value):
                    dev.edit(record_id, **{field: value})
                    typed.append(record_id)

        self._sync(d, progress=progress)
        with self.served.engine.connect() as conn:
            aliases = dict(
                conn.execute(select(db.aliases.c.old_id, db.aliases.c.canonical_id)).all()
            )
        for typed_id in typed:
            # a review merge published in this pull renamed the record to its canonical id
            record_id = typed_id if dev.store.get(typed_id) else aliases.get(typed_id, typed_id)
            got = dev.store.get(record_id)
            assert got is not None and got.dirty, "the unsent edit lost its pending state"
            assert same(got.data.get(field), value), "a pull overwrote an unsent local edit"

    # -- copied and restored data dirs (issue 10 items 3 and 4) ------------------------------

    def _reopen(self, d: int, snapshot: tuple[dict[str, int], dict[str, int]] | None) -> None:
        """Device ``d`` opens its (replaced) data dir again and logs in; what it has seen is
        what the data dir it now holds had seen."""
        self.devs[d] = make_device(self.served.url, self.root, self.formset, USERS[d], name=f"d{d}")
        if snapshot is not None:
            self.received[d], self.versions_seen[d] = dict(snapshot[0]), dict(snapshot[1])
        self._watch_pulls(d)

    def _close_and_clear(self, d: int) -> Path:
        """Close device ``d`` to replace its data dir. What it had sent stays a writer for the
        lost-update check: its edits are on the platform even though its outbox is gone."""
        dev = self.devs[d]
        self.retired.append((f"replaced-{len(self.retired)}", _outbox(dev)))
        self._forget_unsent_results(dev)  # the person replaced what was not sent yet
        dev.close()
        for suffix in ("-wal", "-shm"):
            Path(str(dev.store.path) + suffix).unlink(missing_ok=True)
        return dev.store.path

    @rule(src=st.integers(0, 1), people=st.tuples(st.integers(0, 2), st.integers(0, 2)))
    def copy_data_dir_to_other_laptop(self, src: int, people: tuple[int, int]) -> None:
        """wang sets his other laptop up again from a copy of this one's data dir (what was
        unsent on the other laptop is gone: the person replaced it) and types a person on each
        laptop. The copy must become a device of its own and lose nothing typed on either
        laptop from then on (both now number their next ops alike)."""
        target = 1 - src
        path = self._close_and_clear(target)
        path.unlink()
        with contextlib.closing(driver.connect(path, None)) as copy:  # the store's driver
            self.devs[src].store.conn.backup(copy)
        self._reopen(target, (self.received[src], self.versions_seen[src]))
        for d, person in zip((src, target), people, strict=True):
            self.devs[d].save("resident", resident(seq=ID_SEQS[person], name=NAMES[d]))

    @rule(d=DEV)
    def back_up_data_dir(self, d: int) -> None:
        path = self.root / f"backup{d}.sqlite"
        path.unlink(missing_ok=True)
        with contextlib.closing(driver.connect(path, None)) as copy:  # the store's driver
            self.devs[d].store.conn.backup(copy)
        self.backups[d] = (path, dict(self.received[d]), dict(self.versions_seen[d]))

    @rule(d=DEV)
    def restore_data_dir_from_backup(self, d: int) -> None:
        """The backup is copied back over the data dir's file (the file keeps its identity,
        so only the server can tell it is an old copy)."""
        if d not in self.backups:
            return
        backup, received, seen = self.backups[d]
        path = self._close_and_clear(d)
        shutil.copyfile(backup, path)
        self._reopen(d, (received, seen))

    @rule(limit=st.integers(1, 4))
    def department_follows_feed(self, limit: int) -> None:
        self.follower.step(limit)

    @rule()
    def quiesce(self) -> None:
        """Sync every device in turn until a whole round pushes nothing: an op the server
        deferred (retryable, e.g. waiting for another device's create) may be applied only in
        the second round, and devices that synced before it must pull once more."""
        for _round in range(QUIESCE_ROUNDS):
            pushed = sum(self._sync(d) for d in range(len(self.devs)))
            if pushed == 0 and _round > 0:
                break
        else:
            raise AssertionError(f"devices still pushing after {QUIESCE_ROUNDS} rounds")
        self.synced = True
        for d in range(len(self.devs)):
            self._check_converged(d)
            self._check_cursor_never_skipped(d)
        self._check_no_lost_update()
        self._check_tasks()
        self.follower.check()  # the department's copy equals a fresh full export

    # -- checks after a sync -------------------------------------------------------------------

    def _sync(self, d: int, progress: Any = None) -> int:
        """One sync and the checks after it; returns the number of ops pushed."""
        carried = self.carried[d]
        self.requests[d].clear()
        pushed = self._run_sync(d, progress)
        self._check_after_sync(d)
        # alone (no other device changing scopes between its requests), a push carries each
        # op at most twice on average, however many of them the server refuses: bad ops do
        # not make the rest of a batch go again and again
        sent = self.carried[d] - carried
        assert sent <= 2 * pushed, (sent, pushed, self.requests[d])  # each request's answer
        return pushed

    def _run_sync(self, d: int, progress: Any = None) -> int:
        summary = self.devs[d].sync(batch=4, chunk=3, progress=progress)
        assert not summary.cancelled
        return summary.pushed

    def _check_after_sync(self, d: int) -> None:
        dev = self.devs[d]
        assert not self.served.crashes, self.served.crashes[0]
        assert dev.client.stats.retries == 0, "a request was retried: the server answered 5xx"
        seen = self.versions_seen[d]
        for rid, version in dev.store.conn.execute(
            "SELECT id, server_version FROM records WHERE server_version IS NOT NULL"
        ):
            assert version >= seen.get(rid, 0), "a device's server_version went down"
            seen[rid] = version
        self._check_server_versions()
        self._check_one_live_person_per_id()
        self._check_located_sync()

    def _fingerprint(self) -> tuple[Any, ...]:
        with self.served.engine.connect() as conn:
            counters = sorted(tuple(r) for r in conn.execute(select(db.counters)))
            counts = tuple(
                conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (db.record_versions, db.ops, db.aliases, db.quarantine)
            )
            records = sorted(
                tuple(r)
                for r in conn.execute(
                    select(db.records.c.id, db.records.c.version, db.records.c.data)
                )
            )
        return counters, counts, records

    def _replay_last_batch(self, d: int) -> None:
        """Sending a device's last answered batch again changes nothing on the server."""
        dev = self.devs[d]
        rows = dev.store.conn.execute(
            "SELECT op_id, record_id, form, kind, base_version, fields, edited_at, author, state, "
            "result FROM outbox WHERE state != 'pending' ORDER BY seq DESC LIMIT 4"
        ).fetchall()
        never_sent = ("request_error", "local")  # refused before applying / settled on the device
        rows = [
            r
            for r in reversed(rows)
            if not any(k in json.loads(r[9] or "{}") for k in never_sent) and _as_sent(r)
        ]
        if not rows:
            return
        ops = [
            {
                "op_id": o,
                "record_id": rid,
                "form": f,
                "kind": k,
                "base_version": bv,
                "fields": json.loads(fields),
                "edited_at": at,
                "author": au,
            }
            for o, rid, f, k, bv, fields, at, au, _s, _r in rows
        ]
        before = self._fingerprint()
        try:
            results = dev.client.push(ops).results
        except ProtocolError as exc:
            # the whole-request scope check runs before idempotency: a record that has since
            # left the user's grids (a supervisor's merge moved it) refuses the replay - also
            # without changing anything
            assert exc.code == "out_of_scope", exc.code
            assert self._fingerprint() == before
            return
        assert [r.status for r in results] == ["duplicate_op"] * len(ops)
        expected = {
            "applied": "applied",
            "conflict": "conflict",
            "merged": "merged_into",
            "rejected": "rejected",
        }
        assert [r.original_status for r in results] == [expected[row[8]] for row in rows]
        assert self._fingerprint() == before

    def _check_server_versions(self) -> None:
        with self.served.engine.connect() as conn:
            versions: dict[str, list[int]] = defaultdict(list)
            for rid, version in conn.execute(
                select(db.record_versions.c.record_id, db.record_versions.c.version).order_by(
                    db.record_versions.c.record_id, db.record_versions.c.version
                )
            ):
                versions[rid].append(version)
            current = dict(conn.execute(select(db.records.c.id, db.records.c.version)).all())
        for rid, seq in versions.items():
            assert seq == list(range(1, len(seq) + 1)), "versions must go 1, 2, 3, ..."
            assert current[rid] == seq[-1]

    def _check_one_live_person_per_id(self) -> None:
        with self.served.engine.connect() as conn:
            rows = conn.execute(
                select(db.records.c.id, db.records.c.data).where(
                    db.records.c.form == "resident", db.records.c.deleted.is_(False)
                )
            ).all()
            claimed = {
                r.record_id
                for r in conn.execute(
                    select(db.reviews.c.record_id).where(db.reviews.c.kind == "transfer")
                )
            }
            claimed &= set(
                conn.execute(
                    select(db.record_claims.c.record_id).where(
                        db.record_claims.c.form == "resident"
                    )
                ).scalars()
            )
            holders = dict(
                conn.execute(
                    select(db.record_keys.c.key, db.record_keys.c.record_id).where(
                        db.record_keys.c.form == "resident"
                    )
                ).all()
            )
        by_number: dict[tuple[Any, str], list[str]] = defaultdict(list)
        for rid, data in rows:
            k = json.loads(data)
            if k.get("id_number"):
                by_number[(k.get("id_type"), normalize_key(k["id_number"]))].append(rid)
        for (id_type, number), ids in by_number.items():
            if len(ids) == 1:
                continue
            # All but the key's holder (if any) are transfer claims: recorded as claiming the
            # key, with a review for a supervisor (the holder's grid is one the claimant's
            # worker may not see).
            holder = holders.get(f"{normalize_key(str(id_type))}|{number}")
            for rid in ids:
                assert rid == holder or rid in claimed, "two live people share an ID number"

    def _check_located_sync(self) -> None:
        """Nothing was refused for its location's shape (the device stores what the wire
        carries), and at most one live house/unit/address per natural key."""
        for dev in self.devs:
            for form, fields, result in dev.store.conn.execute(
                "SELECT form, fields, result FROM outbox WHERE state = 'rejected'"
            ):
                code = json.loads(result).get("reason", {}).get("code")
                if form in LOCATED_FORMS and code == "bad_value":
                    others = {k for k, v in json.loads(fields).items() if k != "location"}
                    assert any(isinstance(json.loads(fields)[k], dict) for k in others), result
        with self.served.engine.connect() as conn:
            rows = conn.execute(
                select(db.records.c.id, db.records.c.form, db.records.c.data).where(
                    db.records.c.form.in_(LOCATED_FORMS), db.records.c.deleted.is_(False)
                )
            ).all()
            # A house/unit code another grid holds is a transfer claim (PROTOCOL.md §9.1): it
            # stands beside the holder without holding the key until a supervisor decides.
            claimed = set(conn.execute(select(db.record_claims.c.record_id)).scalars())
        keys = [
            (form, tuple(normalize_key(str(json.loads(data).get(f) or "")) for f in natural))
            for rid, form, data in rows
            if rid not in claimed
            for natural in self.formset.form(form).natural_keys
        ]
        keys = [k for k in keys if any(k[1])]
        assert len(keys) == len(set(keys)), "two live records share a natural key"

    # -- checks at quiescence ------------------------------------------------------------------

    def _pull_from_zero(self, dev: Device) -> dict[str, Any]:
        out: dict[str, Any] = {}
        since = 0
        while True:
            page = type(dev.client).pull(dev.client, since, 5000)  # unwrapped: not logged
            out.update({r.id: r for r in page.records})
            since = page.cursor
            if not page.more:
                return out

    def _check_converged(self, d: int) -> None:
        dev = self.devs[d]
        server = self._pull_from_zero(dev)
        local = {
            rid: (
                json.loads(data),
                status,
                bool(deleted),
                version,
                bool(dirty),
                json.loads(c or "null"),
            )
            for rid, data, status, deleted, version, dirty, c in dev.store.conn.execute(
                "SELECT id, data, status, deleted, server_version, dirty, conflict FROM records"
            )
        }
        assert replica.pending_count(dev.store) == 0
        with self.served.engine.connect() as conn:
            merged_away = set(conn.execute(select(db.aliases.c.old_id)).scalars())
        for rid, rec in server.items():
            if rid not in local and rec.deleted and rid in merged_away:
                continue  # a review merge's tombstone: the device renamed it to the canonical id
            assert rid in local, "a record in scope is missing on the device"
            data, status, deleted, version, dirty, conflict = local[rid]
            if dirty:
                self._assert_dirty_explained(dev, rid)
                continue
            assert data == clean(rec.data)
            assert (status, deleted, version) == (rec.status, rec.deleted, rec.version)
            theirs = sorted(c.field for c in rec.conflict or [])
            assert sorted(c["field"] for c in conflict or []) == theirs
        for rid, row in local.items():
            if rid not in server:
                assert row[4], "a clean local record the server does not have"
                self._assert_dirty_explained(dev, rid)

    def _assert_dirty_explained(self, dev: Device, record_id: str) -> None:
        """Dirty at quiescence only because the server refused an op (values kept, not lost)."""
        states = [
            s
            for (s,) in dev.store.conn.execute(
                "SELECT state FROM outbox WHERE record_id = ? ORDER BY seq", (record_id,)
            )
        ]
        assert "rejected" in states and "pending" not in states, states

    def _check_cursor_never_skipped(self, d: int) -> None:
        full = self._pull_from_zero(self.devs[d])
        got = self.received[d]
        for rid, rec in full.items():
            assert got.get(rid) == rec.version, "the increments missed a change"

    def _check_no_lost_update(self) -> None:
        """Every acknowledged value is current, kept in a conflict, or in the server's history;
        a field only one device ever wrote holds that device's last value."""
        with self.served.engine.connect() as conn:
            current = {
                r.id: (json.loads(r.data), json.loads(r.conflict or "null"))
                for r in conn.execute(
                    select(db.records.c.id, db.records.c.data, db.records.c.conflict)
                )
            }
            history: dict[str, list[dict[str, Any]]] = defaultdict(list)
            versions = select(
                db.record_versions.c.record_id,
                db.record_versions.c.data,
                db.record_versions.c.conflict,
            )
            for r in conn.execute(versions):
                # every version's values, and the values its conflict entries held (a person
                # may since have resolved the conflict the other way)
                history[r.record_id].append(json.loads(r.data))
                for c in json.loads(r.conflict or "null") or []:
                    for k in ("base", "server", "incoming", "provisional"):
                        history[r.record_id].append({c["field"]: c.get(k)})
            aliases = dict(
                conn.execute(select(db.aliases.c.old_id, db.aliases.c.canonical_id)).all()
            )
        merged_from: dict[str, list[str]] = defaultdict(list)
        for old, canonical in aliases.items():
            merged_from[canonical].append(old)
        writers: dict[tuple[str, str], list[tuple[Any, int, Any]]] = defaultdict(list)
        outboxes = [(d, _outbox(dev)) for d, dev in enumerate(self.devs)] + self.retired
        for d, rows in outboxes:
            for seq, rid, kind, fields, state, result in rows:
                if state not in ACKED or kind == "delete":
                    continue
                canonical = json.loads(result).get("record_id") or rid
                canonical = aliases.get(canonical, canonical)
                for name, value in json.loads(fields).items():
                    if name.startswith("_"):
                        continue
                    writers[(canonical, name)].append((d, seq, value))
                    data, conflict = current[canonical]
                    kept = same(data.get(name), value)
                    kept = kept or any(
                        same(c.get(k), value)
                        for c in conflict or []
                        for k in ("base", "server", "incoming", "provisional")
                    )
                    # a review merge keeps the merged-away record's history under its old id
                    kept = kept or any(
                        same(v.get(name), value)
                        for old in (canonical, *merged_from[canonical])
                        for v in history[old]
                    )
                    assert kept, f"an acknowledged value of {name} vanished"
        for (rid, name), writes in writers.items():
            if len({w[0] for w in writes}) == 1:
                last = max(writes, key=lambda w: w[1])[2]
                assert same(current[rid][0].get(name), last), (
                    f"{name}: the only writer's value lost"
                )


def _outbox(dev: Device) -> list[tuple[Any, ...]]:
    """A device's outbox rows as the lost-update check reads them."""
    return dev.store.conn.execute(
        "SELECT seq, record_id, kind, fields, state, result FROM outbox ORDER BY seq"
    ).fetchall()


def _as_sent(row: tuple[Any, ...]) -> bool:
    """The outbox row still names the record it was sent for. A merge renames the record
    on the device after the answer (the op's row too), so its row is no longer the op that
    was sent: replaying it is another op under a known id (409 ``op_id_reused``)."""
    result = json.loads(row[9] or "{}")
    return not result.get("merged_into") and result.get("record_id", row[1]) == row[1]


EXAMPLES = {"sqlite": 12, "postgresql": 3}  # CI cost: about 30 s and 10 s


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Template]:
    """The seeded platform database on either backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("tpl") / "platform.db"
        seed_platform(f"sqlite:///{path}", load_formset())
        yield SqliteTemplate(path)
        return
    cluster = request.getfixturevalue("pg_cluster")
    pg = PgTemplate(cluster.url, f"gc_stateful_{os.getpid()}")
    seed_platform(pg.create(pg.name), load_formset())
    try:
        yield pg
    finally:
        pg.close()


def test_three_devices_converge(request: pytest.FixtureRequest, template: Template) -> None:
    """12 runs of 25 steps on SQLite (about 30 s on 2 cores), 3 on PostgreSQL.
    ``GC_STATEFUL_EXAMPLES=200`` hunts longer (on both; ``-k sqlite`` / ``-k postgresql`` picks
    one), ``GC_STATEFUL_STEPS=60`` makes longer sequences; ``GC_STATEFUL_SHRINK=1`` shrinks a
    failure (each shrink step replays real HTTP syncs, so it is off by default: a failure is
    reported with its full step list instead)."""
    backend = request.node.callspec.params["template"]
    SyncMachine.template = template
    SyncMachine.formset = load_formset()
    runner = SyncMachine.TestCase
    runner.settings = settings(
        max_examples=int(os.environ.get("GC_STATEFUL_EXAMPLES", EXAMPLES[backend])),
        phases=[Phase.explicit, Phase.reuse, Phase.generate]
        + ([Phase.shrink] if os.environ.get("GC_STATEFUL_SHRINK") else []),
        stateful_step_count=int(os.environ.get("GC_STATEFUL_STEPS", "25")),
        deadline=None,
        # CI replays one fixed sequence (no example database there): a run that hunts finds
        # rare interleavings locally (see the open issue note), CI stays reproducible.
        derandomize=bool(os.environ.get("CI")),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    runner("runTest").runTest()
