"""Valid test values made with the project's own check-digit functions (never hard-coded)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.core import creditcode, idnumber


def id_number(birth: dt.date = dt.date(1985, 6, 15), seq: int = 123, area: str = "330106") -> str:
    """A valid 18-digit ID number; odd ``seq`` = male."""
    first17 = f"{area}{birth:%Y%m%d}{seq:03d}"
    return first17 + idnumber.check_char(first17)


def id_number_15(
    birth: dt.date = dt.date(1985, 6, 15), seq: int = 123, area: str = "330106"
) -> str:
    """A first-generation 15-digit ID number (YYMMDD, no check character): the same person
    as ``id_number`` with the same arguments (birth years 1900-1999 only)."""
    return f"{area}{birth:%y%m%d}{seq:03d}"


def credit_code(
    dept: str = "9", category: str = "1", area: str = "330106", body: str = "MA2B3C4D5"
) -> str:
    """A valid 18-character unified social credit code."""
    first17 = f"{dept}{category}{area}{body}"
    return first17 + creditcode.check_char(first17)


def resident(**overrides: Any) -> dict[str, Any]:
    """A complete 户籍 resident."""
    birth = overrides.pop("birth", dt.date(1985, 6, 15))
    seq = overrides.pop("seq", 123)
    data = {
        "id_type": "111",
        "id_number": id_number(birth, seq),
        "name": "张三",
        "gender": "1" if seq % 2 else "2",
        "birth_date": birth.isoformat(),
        "ethnicity": "01",
        "population_type": "1",
        "hukou_region": "330106",
        "hukou_address": "浙江省杭州市西湖区文三路1号",
        "residence_region": "330106",
        "residence_address": "浙江省杭州市西湖区幸福路12号3栋2单元501室",
        "hukou_consistency": "01",
        "grid": "330106001001-01",
        "phone": "13800138000",
    }
    data.update(overrides)
    return data


def task(**overrides: Any) -> Any:
    """A device-side verify task (``app.core.store.Task``) on the resident's phone."""
    from app.core.store import Task

    values: dict[str, Any] = {
        "id": "task-1",
        "kind": "verify",
        "title": "核实流动人口电话",
        "form": "resident",
        "fields": ("phone",),
        "state": "open",
        "issued_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "instruction": "逐户核实电话",
        "due": "2099-12-31",
        "grids": ("330106001001-01",),
        "issued_by": "sup1",
    }
    values.update(overrides)
    return Task(**values)


def task_item(record_id: str, **overrides: Any) -> Any:
    """An open item of ``task()`` on a record."""
    from app.core.store import TaskItem

    values: dict[str, Any] = {
        "id": f"item-{record_id}",
        "task_id": "task-1",
        "record_id": record_id,
        "state": "open",
        "updated_at": "2026-01-01T00:00:00Z",
        "grid": "330106001001-01",
    }
    values.update(overrides)
    return TaskItem(**values)


def undo_sort_key_step(conn: Any) -> None:
    """Take a store back to before the sort-key step (``app.core.store.order``): its indexes,
    the old title indexes back, no column. Tests that replay older steps run this first."""
    from app.core.store import order
    from app.core.store.schema import LIST_INDEXES, MIGRATIONS

    for name in order.INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    conn.execute(MIGRATIONS[0][2])  # records_form_grid (form, grid, title)
    for statement in LIST_INDEXES.values():
        conn.execute(statement)
    conn.execute("ALTER TABLE records DROP COLUMN sort_key")


def undo_record_keys_step(conn: Any) -> None:
    """Take a store back to before the keys-by-rid step (``schema.RECORD_KEYS_BY_RID``): keys
    name their record by its text id again, in the first step's table and index. Tests that
    replay older steps run this first."""
    from app.core.store.schema import MIGRATIONS

    old = [s for s in MIGRATIONS[0] if "record_keys" in s]  # the table and its index
    conn.execute("ALTER TABLE record_keys RENAME TO record_keys_by_rid")
    for statement in old:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO record_keys (form, key, record_id) SELECT k.form, k.key, r.id "
        "FROM record_keys_by_rid k JOIN records r ON r.rid = k.rid"
    )
    conn.execute("DROP TABLE record_keys_by_rid")
