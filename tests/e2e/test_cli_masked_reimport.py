"""A masked export imported again never writes its masks over the real values.

A masked export is what a worker hands on (an office, a colleague); it comes back edited and
someone imports it. Masked ID numbers of Chinese citizens fail the GB 11643 check, but an ID
number of another document type (a passport), a permit number or any other sensitive text
has no check that a mask fails: the row was taken and "E12345678" became "*********". The
real command, real files, the store on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.core.store import Store
from tests.e2e.test_cli import gridcollect, output, write_csv
from tests.factories import credit_code

UNIT_HEADERS = [
    "统一社会信用代码",
    "单位名称",
    "单位类型",
    "单位地址",
    "所属网格",
    "法定代表人证件类型",
    "法定代表人证件号码",
    "法定代表人姓名",
]
PASSPORT = "E12345678"


def _units(data_dir: Path) -> list[dict[str, Any]]:
    store = Store.open(data_dir)
    try:
        return [r.data for r in store.iter_records("unit")]
    finally:
        store.close()


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_reimporting_a_masked_export_keeps_the_real_values(tmp_path: Path, suffix: str) -> None:
    data = tmp_path / "data"
    unit = {
        "统一社会信用代码": credit_code(),
        "单位名称": "西湖贸易有限公司",
        "单位类型": "1",
        "单位地址": "文三路1号",
        "所属网格": "G01",
        "法定代表人证件类型": "414",  # a passport: no GB 11643 check
        "法定代表人证件号码": PASSPORT,
        "法定代表人姓名": "JOHN SMITH",
    }
    source = write_csv(tmp_path / "in.csv", [unit], UNIT_HEADERS)
    result = gridcollect(data, "import", "--form", "unit", source)
    assert result.returncode == 0, output(result)
    out = tmp_path / f"masked.{suffix}"
    result = gridcollect(data, "export", "--form", "unit", "--out", out)
    assert result.returncode == 0, output(result)

    result = gridcollect(data, "import", "--form", "unit", out)

    (stored,) = _units(data)
    assert stored["legal_rep_id_number"] == PASSPORT  # was "*********"
    assert stored["legal_rep_name"] == "JOHN SMITH"
    assert result.returncode != 0, output(result)  # the row is refused, and says why
    assert "法定代表人证件号码" in result.stdout and "第2行" in result.stdout, output(result)
    assert "脱敏" in result.stdout, output(result)
