"""Every CSV the project writes is safe to open in Excel/WPS, and its import gives the values back.

Issue 15: ``=cmd|' /C calc'!A0``, ``+…``, ``-…``, ``@…`` were written verbatim. Here the real
export (``write_table`` through ``transfer.export_file``) writes them with the OWASP quote and
the real import (``read_table`` through ``transfer.import_file``) reads them back unchanged.
"""

from __future__ import annotations

import csv
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.forms import FormSet
from app.core.store import Store
from app.core.tabular import read_table, write_table
from app.core.tabular.formula import DANGEROUS_FIRST
from app.core.transfer import export_file, import_file
from tests.core.test_transfer import TODAY, person, write_csv

_START = st.text(alphabet=["'", "=", "+", "-", "@"], min_size=1, max_size=3)
_TEXT = st.text(alphabet=st.sampled_from("abc1 |!(),calc张三"), max_size=12)
# A value that starts like a formula (or with quotes before one) and goes on with plain text.
_DANGEROUS = st.builds(lambda a, b: a + b.strip(), _START, _TEXT)
# What one raw cell may hold in a table (tabs and carriage returns included); it ends in a
# letter, so no cell is blank (blank cells and lines are not values).
_CELL = st.builds(
    lambda a, b: a + b + "x", st.text(alphabet=["'", *DANGEROUS_FIRST], max_size=3), _TEXT
)


def raw_cells(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(_CELL, min_size=2, max_size=2), min_size=1, max_size=4))
def test_a_table_written_and_read_back_is_unchanged(
    tmp_path_factory, rows: list[list[str]]
) -> None:
    path = tmp_path_factory.mktemp("t") / "out.csv"
    write_table(path, ["a", "b"], iter(rows))
    assert not any(cell.startswith(DANGEROUS_FIRST) for cell in raw_cells(path))
    table = read_table(path)
    assert [[v["a"], v["b"]] for _, v in table.rows] == rows


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(_DANGEROUS, min_size=3, max_size=3))
def test_export_then_import_round_trips_formula_like_values(
    tmp_path_factory, formset: FormSet, values: list[str]
) -> None:
    work = tmp_path_factory.mktemp("rt")
    form = formset.form("resident")
    workplace, address, occupation = values
    source = person(1, 服务处所=workplace, 现住详址=address, 职业=occupation)
    first = Store(work / "a.sqlite", formset)
    try:
        source_file = work / "in.csv"  # as the project writes it: the values are what it means
        write_table(source_file, list(source), iter([list(source.values())]))
        report = import_file(source_file, form, first, today=TODAY)
        assert report.created == 1, report.errors
        out = work / "out.csv"
        export_file(out, form, first, unmasked=True)
        before = [r.data for r in first.iter_records("resident")]
    finally:
        first.close()
    cells = raw_cells(out)
    assert not any(cell.startswith(DANGEROUS_FIRST) for cell in cells)
    second = Store(work / "b.sqlite", formset)
    try:
        report = import_file(out, form, second, today=TODAY)
        assert report.created == 1, report.errors
        after = [r.data for r in second.iter_records("resident")]
    finally:
        second.close()
    keys = ("workplace", "residence_address", "occupation")
    assert [before[0].get(k) for k in keys] == [v.strip() for v in values]
    assert [after[0].get(k) for k in keys] == [before[0].get(k) for k in keys]


def test_the_issue_payloads_are_quoted_masked_or_not(
    tmp_path: Path, store: Store, formset: FormSet
) -> None:
    form = formset.form("resident")
    payloads = ["=cmd|' /C calc'!A0", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+9)*cmd"]
    rows = [person(i, 服务处所=p, 现住详址=p) for i, p in enumerate(payloads, 1)]
    assert import_file(write_csv(tmp_path / "in.csv", rows), form, store, today=TODAY).created == 4
    for unmasked in (False, True):
        out = tmp_path / f"out-{unmasked}.csv"
        export_file(out, form, store, unmasked=unmasked)
        cells = raw_cells(out)
        assert not any(cell.startswith(DANGEROUS_FIRST) for cell in cells)
        assert sum(cell in {"'" + p for p in payloads} for cell in cells) == 8
