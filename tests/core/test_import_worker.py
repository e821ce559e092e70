"""An import whose file is read and checked in a second process (``import_worker``) does
exactly what the in-process import does: the same stored rows, reports, row numbers, progress
and rollbacks (Hypothesis, on random files with bad and repeated rows)."""

from __future__ import annotations

import datetime as dt
import gc
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core import import_worker, transfer
from app.core.forms import FormSet
from app.core.store import Store
from app.core.tabular import TableError
from app.core.transfer import Cancelled, import_file
from tests.core.test_transfer import TODAY, person, write_csv

BAD_CELLS = {
    "民族": "99",  # not in the code table
    "公民身份号码": "110101199003070012",  # a wrong check digit
    "联系电话": "12345",
    "姓名": "",  # required
}


def _rows(spec: list[tuple[int, str | None, str]]) -> list[dict[str, str]]:
    """(person, bad column or None, name suffix) -> rows: repeats of a person update them."""
    rows = []
    for seq, bad, suffix in spec:
        row = person(seq, 姓名=f"测试{seq}{suffix}")
        if bad is not None:
            row[bad] = BAD_CELLS[bad]
        rows.append(row)
    return rows


def _state(store: Store) -> dict[str, Any]:
    """What the store holds, without the ids and clocks that differ between two runs."""
    conn = store.conn

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return sorted(tuple(r) for r in conn.execute(sql))

    return {
        "records": rows("SELECT data, status, deleted, title, sort_key FROM records"),
        "history": rows("SELECT kind, changes FROM history"),
        "outbox": rows("SELECT kind, fields FROM outbox"),
        "keys": rows("SELECT key FROM record_keys"),
        "people": rows("SELECT name, pinyin, birth, house FROM people"),
        "search": rows("SELECT terms FROM search"),
    }


def _import(
    path: Path, store: Store, formset: FormSet, worker: bool, **kwargs: Any
) -> tuple[Any, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []
    try:
        report = import_file(
            path,
            formset.form("resident"),
            store,
            today=TODAY,
            worker=worker,
            progress=lambda done, total: calls.append((done, total)),
            **kwargs,
        )
    except (Cancelled, TableError) as exc:
        return type(exc).__name__, calls
    return report, calls


row_specs = st.lists(
    st.tuples(
        st.integers(1, 12),
        st.one_of(st.none(), st.none(), st.sampled_from(sorted(BAD_CELLS))),
        st.sampled_from(["", "", "乙"]),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    known=row_specs,
    spec=row_specs,
    strict=st.booleans(),
    batch=st.integers(1, 5),
    stop_after=st.one_of(st.none(), st.integers(1, 3)),
)
def test_an_import_checked_in_a_second_process_does_what_the_plain_import_does(
    tmp_path_factory: pytest.TempPathFactory,
    formset: FormSet,
    monkeypatch: pytest.MonkeyPatch,
    known: list[tuple[int, str | None, str]],
    spec: list[tuple[int, str | None, str]],
    strict: bool,
    batch: int,
    stop_after: int | None,
) -> None:
    monkeypatch.setattr(transfer, "BATCH", batch)
    tmp = tmp_path_factory.mktemp("worker")
    first = write_csv(tmp / "known.csv", _rows(known))
    path = write_csv(tmp / "p.csv", _rows(spec))
    results = []
    for worker in (False, True):
        store = Store(tmp / f"{worker}.sqlite", formset)
        import_file(first, formset.form("resident"), store, today=TODAY)
        checks = iter(range(1, 100))
        cancel = None if stop_after is None else (lambda: next(checks) == stop_after)  # noqa: B023
        report, calls = _import(path, store, formset, worker, strict=strict, cancel=cancel)
        results.append((report, calls, _state(store)))
        store.close()
    assert results[0] == results[1]


def test_a_broken_file_raises_the_same_error_and_changes_nothing(
    tmp_path: Path, store: Store, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "BATCH", 2)
    path = write_csv(tmp_path / "p.csv", [person(i) for i in range(1, 8)])
    text = path.read_text(encoding="utf-8").splitlines()
    text[6] += ',"unclosed'  # row 7 of the file: a quote that never ends
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    before = _state(store)
    errors = []
    for worker in (False, True):
        with pytest.raises(TableError) as raised:
            import_file(path, formset.form("resident"), store, today=TODAY, worker=worker)
        errors.append(vars(raised.value))
    assert errors[0] == errors[1] and errors[0]["row"] == 7
    assert _state(store) == before


def test_the_rows_are_checked_in_the_second_process(
    tmp_path: Path, store: Store, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker really does the checking: breaking it in this process does not reach it."""

    def broken(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("checked in the importing process")

    monkeypatch.setattr(transfer, "_checked_batches", broken)
    path = write_csv(tmp_path / "p.csv", [person(1), person(2, 民族="99"), person(3)])
    report = import_file(path, formset.form("resident"), store, today=TODAY, worker=True)
    assert (report.created, report.rejected_rows) == (2, [3])
    assert report.errors[0].row == 3 and report.errors[0].field == "ethnicity"
    with pytest.raises(AssertionError):
        import_file(path, formset.form("resident"), store, today=TODAY, worker=False)


def test_only_a_big_file_is_checked_in_a_second_process(
    tmp_path: Path, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    form = formset.form("resident")
    path = write_csv(tmp_path / "p.csv", [person(1)])
    size = path.stat().st_size
    monkeypatch.setattr(import_worker, "MIN_BYTES", size + 1)
    monkeypatch.setattr(import_worker, "spare_core", lambda: True)
    assert not import_worker.pays(path, formset, form)
    monkeypatch.setattr(import_worker, "MIN_BYTES", size)
    assert import_worker.pays(path, formset, form)
    assert not import_worker.pays(tmp_path / "missing.csv", formset, form)
    monkeypatch.setattr(import_worker, "spare_core", lambda: False)
    assert not import_worker.pays(path, formset, form)
    monkeypatch.setattr(import_worker, "spare_core", lambda: True)
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # a packaged app: no interpreter
    assert not import_worker.pays(path, formset, form)


@pytest.mark.parametrize(
    ("cores", "load", "spare"), [(1, 0.0, False), (2, 0.5, True), (2, 1.5, False), (4, 2.9, True)]
)
def test_a_second_process_needs_a_core_to_spare(
    monkeypatch: pytest.MonkeyPatch, cores: int, load: float, spare: bool
) -> None:
    monkeypatch.setattr(import_worker.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(import_worker.os, "getloadavg", lambda: (load, load, load))
    assert import_worker.spare_core() is spare


def test_a_big_import_uses_the_second_process_by_default(
    tmp_path: Path, store: Store, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "p.csv", [person(i) for i in range(1, 4)])
    monkeypatch.setattr(import_worker, "MIN_BYTES", 1)
    monkeypatch.setattr(import_worker, "spare_core", lambda: True)
    monkeypatch.setattr(transfer, "_checked_batches", None)  # in-process checking would fail
    report = import_file(path, formset.form("resident"), store, today=dt.date(2024, 6, 1))
    assert report.created == 3 and report.imported


def test_an_import_pauses_automatic_garbage_collection_and_resumes_it(
    tmp_path: Path, store: Store, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Full collections walked every object of the process, a fifth of the writer's Python:
    none runs during an import, and collection is back on afterwards, cancelled or not."""
    monkeypatch.setattr(transfer, "BATCH", 2)
    path = write_csv(tmp_path / "p.csv", [person(i) for i in range(1, 6)])
    seen: list[bool] = []
    for worker in (False, True):
        report = import_file(
            path,
            formset.form("resident"),
            store,
            today=TODAY,
            worker=worker,
            progress=lambda _done, _total: seen.append(gc.isenabled()),
        )
        assert report.imported and gc.isenabled()
        with pytest.raises(Cancelled):
            import_file(path, formset.form("resident"), store, today=TODAY, cancel=lambda: True)
        assert gc.isenabled()
    assert seen == [False] * 6
    gc.disable()  # a caller that keeps collection off keeps it off
    try:
        import_file(path, formset.form("resident"), store, today=TODAY)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_checking_process_runs_this_checkout_whatever_the_working_directory(
    tmp_path: Path, store: Store, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ``app`` package in the working directory (or another installed copy) is not the
    code the importing process runs: the child must not pick it up."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "app").mkdir(parents=True)
    (elsewhere / "app" / "__init__.py").write_text("raise ImportError('not this app')\n")
    path = write_csv(tmp_path / "p.csv", [person(1), person(2)])
    monkeypatch.chdir(elsewhere)
    report = import_file(
        Path("..") / "p.csv", formset.form("resident"), store, today=TODAY, worker=True
    )
    assert report.created == 2 and report.file == path.name
