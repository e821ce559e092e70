"""An ID number Excel stored as a number says so, and what to change.

Typed into a cell of the "General" format, an 18-digit ID number becomes a number: Excel
keeps 15 significant digits, shows 3.30106E+17 and writes 3.30106198506151E+17 into the
file. The digits are gone; the only fix is to format the column as text and type them again.
The message said "must have 18 characters, it has 20": true of the text the file holds, and
no help to the person looking at 3.30106E+17. The real command on a real XLSX and CSV.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import HEADERS, citizen, gridcollect, output, write_csv
from tests.e2e.test_cli_bad_input import cells, small_xlsx


def _as_excel_number(id_number: str) -> float:
    return float(f"{int(id_number):.14e}")  # 15 significant digits, as Excel keeps them


@pytest.mark.parametrize("suffix", ["xlsx", "csv"])
def test_an_id_number_excel_made_a_number_is_named_as_such(tmp_path: Path, suffix: str) -> None:
    good = citizen(40)
    bad = next(c for n in range(41, 60) if (c := citizen(n))["公民身份号码"].isdigit())
    if suffix == "xlsx":
        row = cells(bad)
        row[HEADERS.index("公民身份号码")] = _as_excel_number(bad["公民身份号码"])
        path = small_xlsx(tmp_path / "p.xlsx", [HEADERS, cells(good), row])
    else:  # Excel's "save as CSV" writes the number as it shows it
        path = write_csv(tmp_path / "p.csv", [good, {**bad, "公民身份号码": "3.30106E+17"}])

    result = gridcollect(tmp_path / "data", "validate", "--form", "resident", path)

    assert result.returncode == 1, output(result)
    lines = [line for line in result.stdout.splitlines() if "第3行" in line]
    assert len(lines) == 1, output(result)
    assert "[公民身份号码]" in lines[0] and "文本" in lines[0], output(result)
    assert "第2行" not in result.stdout, output(result)
