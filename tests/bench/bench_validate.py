"""Validation throughput of the resident form (records/s), against a baseline in the same run.

The baseline is the cheapest check a record can get: the GB 11643 check digit of its ID
number alone. Usage: python tests/bench/bench_validate.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core import idnumber, rules  # noqa: E402
from app.core.forms import load_formset  # noqa: E402
from app.core.transfer import map_headers, prepare_row  # noqa: E402
from tests.bench.common import HEADERS, resident_rows, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    formset = load_formset()
    form = formset.form("resident")
    mapping, _ = map_headers(form, HEADERS)
    raw = [dict(zip(HEADERS, row, strict=True)) for row in resident_rows(args.rows)]
    prepared = [prepare_row(form, formset, r, mapping) for r in raw]
    base_s = timed(lambda: [idnumber.check_char(d["id_number"][:17]) for d in prepared])
    prep_s = timed(lambda: [prepare_row(form, formset, r, mapping) for r in raw])
    val_s = timed(lambda: [rules.validate(form, d, formset) for d in prepared])
    n = args.rows
    print(f"records                         {n}")
    print(f"check digit only (baseline)     {n / base_s:12,.0f} records/s")
    print(f"coerce + defaults + derive      {n / prep_s:12,.0f} records/s")
    print(f"validate (47-field form)        {n / val_s:12,.0f} records/s")
    print(f"ratio validate/baseline         {base_s / val_s:.3f}")


if __name__ == "__main__":
    main()
