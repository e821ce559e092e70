"""Helpers shared by the benchmark scripts (they print figures; they never assert)."""

from __future__ import annotations

import csv
import datetime as dt
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from app.core import idnumber

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉梅建国红文辉鹏飞宇浩然子涵欣怡"
HEADERS = [
    "证件类型",
    "公民身份号码",
    "姓名",
    "性别",
    "出生日期",
    "民族",
    "人口类型",
    "户籍地",
    "户籍详址",
    "现住地",
    "现住详址",
    "人户一致标识",
    "所属网格",
    "联系方式",
]


def resident_rows(count: int, seed: int = 1) -> list[list[str]]:
    """``count`` valid, distinct 户籍 residents as CSV cells (zh headers above)."""
    rng = random.Random(seed)
    rows, seen = [], set()
    for i in range(count):
        while True:
            birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 80 * 365))
            seq = rng.randrange(1000)
            if (birth, seq) not in seen:
                seen.add((birth, seq))
                break
        area = "330106"
        first17 = f"{area}{birth:%Y%m%d}{seq:03d}"
        number = first17 + idnumber.check_char(first17)
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        phone = f"1{rng.choice('3589')}{rng.choice('0125678')}{rng.randrange(10**8):08d}"
        rows.append(
            resident_cells(i, number, name, seq, birth, f"330106001{(i % 9) + 1:03d}-01", phone)
        )
    return rows


def resident_cells(
    i: int, number: str, name: str, seq: int, birth: dt.date, grid: str, phone: str
) -> list[str]:
    """One resident's CSV cells under ``HEADERS`` (row ``i``'s addresses follow from ``i``)."""
    return [
        "111",
        number,
        name,
        "1" if seq % 2 else "2",
        birth.isoformat(),
        "01",
        "1",
        "330106",
        f"文三路{i % 500}号",
        "330106",
        f"幸福路{i % 300}号{i % 20}栋{i % 6 + 1}01室",
        "01",
        grid,
        phone,
    ]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADERS)
        writer.writerows(rows)
    return path


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (a fraction: 0.99 for p99) of ``values``, nearest rank.

    A percent (99) is refused: it used to be read as a fraction above 1, which is the
    maximum, so the city, console, tasks and department benches printed their slowest value
    as their p99 or p95."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"percentile takes a fraction (0.99 for p99), not {q}")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values)
