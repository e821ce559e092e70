"""An XLSX export keeps no copy of the residents' values in the system temp dir (openpyxl's
write-only sheets spool their XML through a temp file there by default), even mid-export."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from app.core.tabular import write_table


def test_xlsx_export_spools_beside_the_target_not_in_the_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    seen: list[list[str]] = []

    def rows() -> Iterator[list[str]]:
        for n in range(200):
            if n == 199:  # mid-export: what a kill now would leave behind
                seen.append(sorted(p.name for p in system_tmp.iterdir()))
            yield [f"居民{n}", f"139{n:08d}"]

    assert write_table(out_dir / "people.xlsx", ["姓名", "联系电话"], rows()) == 200
    assert seen == [[]], seen
    assert sorted(p.name for p in out_dir.iterdir()) == ["people.xlsx"]
    sheet = load_workbook(out_dir / "people.xlsx", read_only=True).active
    assert [c.value for c in next(sheet.iter_rows(min_row=200, max_row=200))] == [
        "居民198",
        "13900000198",
    ]
