"""What a task request may say, checked before anything is read or written.

One model for the console's JSON API, its form page and the CLI's ``--json FILE``, so the
three cannot disagree on what a task is.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.forms import Form, FormSet, UnknownFormError
from app.core.recordfilter import FilterError, RecordFilter, parse_filter
from sync.server.errors import ApiError

MAX_LIST = 100_000  # record ids / ID numbers in one task (a CSV upload)
MAX_SCOPE = 2_000  # grids, buildings or houses named in one task
Short = Annotated[str, Field(min_length=1, max_length=200)]
Key = Annotated[str, Field(min_length=1, max_length=64)]
_DUE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class TaskSpec(BaseModel):
    """A new task: what to do, where, which records and by when (PROTOCOL.md §13.1)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["verify", "collect"] = "verify"
    title: str = Field(min_length=1, max_length=200)
    instruction: str = Field(default="", max_length=2000)
    form: Key
    fields: list[Key] = Field(default_factory=list, max_length=200)
    due: str | None = Field(default=None, max_length=10, description="YYYY-MM-DD")
    priority: int = Field(default=0, ge=0, le=2)
    target: int | None = Field(default=None, ge=1, le=1_000_000)
    grids: list[Key] = Field(default_factory=list, max_length=MAX_SCOPE)
    buildings: list[Short] = Field(default_factory=list, max_length=MAX_SCOPE)
    houses: list[Key] = Field(default_factory=list, max_length=MAX_SCOPE)
    filter: str | None = Field(default=None, max_length=2000)
    record_ids: list[Key] = Field(default_factory=list, max_length=MAX_LIST)
    id_numbers: list[Key] = Field(default_factory=list, max_length=MAX_LIST)
    assignees: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=200
    )


class TaskEdit(BaseModel):
    """What may change after a task is issued (its items stay as chosen)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    instruction: str | None = Field(default=None, max_length=2000)
    due: str | None = Field(default=None, max_length=10, description="YYYY-MM-DD or empty")
    priority: int | None = Field(default=None, ge=0, le=2)
    fields: list[Key] | None = Field(default=None, max_length=200)
    assignees: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=200
    )


def form_of(formset: FormSet, form_id: str) -> Form:
    try:
        return formset.form(form_id)
    except UnknownFormError:
        raise ApiError(422, "unknown_form", field="form") from None


def check_fields(form: Form, fields: list[str]) -> list[str]:
    """The task's fields, each a field of its form (in the order given, once)."""
    for name in fields:
        if name not in form.fields:
            raise ApiError(
                422,
                "bad_task",
                field="fields",
                detail_zh=f"表单 {form.id} 没有字段 {name}",
                detail_en=f"form {form.id} has no field {name}",
            )
    return list(dict.fromkeys(fields))


def check_due(due: str | None) -> str | None:
    if due is None or not due.strip():
        return None
    text = due.strip()
    try:
        if not _DUE.match(text):
            raise ValueError(text)
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ApiError(422, "bad_due", field="due") from None


def parse(formset: FormSet, form: Form, text: str | None) -> RecordFilter | None:
    """The task's filter, or None; a filter that cannot be read is 422 ``bad_filter``."""
    if text is None or not text.strip():
        return None
    try:
        return parse_filter(text, form, formset)
    except FilterError as exc:
        raise ApiError(
            422,
            "bad_filter",
            field="filter",
            detail_zh=f"{exc.message_zh}（第 {exc.position + 1} 个字符）",
            detail_en=f"{exc.message_en} (at character {exc.position + 1})",
        ) from None
