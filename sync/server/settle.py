"""What a merged record must pass before it is stored (PROTOCOL.md §5.4, steps 5-6): the
caller's scope, validation when complete, natural keys another record stands for; and when
the merge stores nothing at all.

Apart from ``service`` so the per-op path (``Service._commit``) and the chunk's echoes of held
records (``echoes``) ask the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core import rules
from app.core.forms import Form, FormSet
from app.core.records import RecordStatus
from sync.merge import DELETED, STATUS, Merged
from sync.server import claims, records
from sync.server.pushop import Ctx, Reject
from sync.server.tx import Tx


@dataclass(frozen=True)
class Settled:
    """A merged state that may be stored: its full state, data, deletion and the natural
    keys of its values that another record outside the scope holds (``claims``)."""

    state: dict[str, Any]
    data: dict[str, Any]
    deleted: bool
    held: dict[str, str]


def settle(
    tx: Tx,
    ctx: Ctx,
    formset: FormSet,
    form: Form,
    before: records.Row | None,
    rid: str,
    merged: Merged,
) -> Settled:
    """Scope, validation and natural keys of the merged state; raises ``Reject``."""
    state = dict(merged.values)
    state[STATUS] = state.get(STATUS) or (before.status if before else "draft")
    data = {k: v for k, v in state.items() if k not in (STATUS, DELETED)}
    deleted = bool(state.get(DELETED))
    if not ctx.user.in_scope(records.grid_of(form, data)):
        raise Reject("out_of_scope", record_id=rid)
    if state[STATUS] == RecordStatus.COMPLETE and not deleted:
        issues = [i for i in rules.validate(form, data, formset) if i.severity == "error"]
        if issues:
            raise Reject("invalid", issues=[_issue(form, i) for i in issues], record_id=rid)
    held = {} if deleted else claims.claimed_keys(tx, ctx, form, rid, data)
    return Settled(state, data, deleted, held)


def unwritten(
    merged: Merged, before_open: list[dict[str, Any]], after_open: list[dict[str, Any]]
) -> bool:
    """The merge leaves the held record as it is (no value and no open conflict changed):
    no version is written, and the answer names the held version."""
    return not merged.changed and after_open == before_open


def _issue(form: Form, issue: rules.Issue) -> dict[str, str]:
    return {
        "field": issue.field,
        "code": issue.code,
        "message_zh": issue.message(form, "zh"),
        "message_en": issue.message(form, "en"),
    }
