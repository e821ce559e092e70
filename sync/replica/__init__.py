"""The device side of sync state, kept in the device's Store (no HTTP here).

Why its own module: every step of a sync must survive a crash at any instant, so each one is
a single local transaction — a pushed batch's results, a pulled chunk together with its cursor,
an id rewrite with every reference to it. ``session`` only sequences these steps. It runs no
SQL itself: the store's ``outbox`` and ``replica`` parts (``app.core.store.outbox`` and
``replica_io``) hold the statements, and this package decides what they mean.

State it keeps (all in the store's tables):

- ``outbox.state``: ``pending`` -> ``applied`` | ``conflict`` | ``merged`` | ``rejected``, and
  ``outbox.result`` the server's answer as JSON. A retryable rejection stays ``pending``.
- ``records.server_version`` (the newest server version known), ``records.base`` (the last
  pulled server state: the fields plus ``_status``, and ``_deleted`` when true; NULL for a
  clean pulled record, whose base is its own state: ``app.core.records.stored_base``), ``dirty`` (the
  record has unacknowledged ops, or an op was rejected and no later op carrying every value
  was accepted: its values are not all on the server) and ``conflict``: a list of ``{field, base, mine, theirs, ...}`` entries,
  ``mine`` being this device's value and ``theirs`` the other one, both kept until a person
  chooses (``resolve``).
- ``task_items.state``: the platform's item state with this device's unanswered results
  merged in; ``task_results``: those results, deleted only with the platform's answer.
- ``meta``: the pull cursor (``sync_cursor``) for one server and user (``sync_scope``).

Local unsynced edits are never overwritten: a pulled record that is dirty here is rebased with
the same three-way rules as the server (``sync.merge.classify``): base = ``records.base``,
local = ``records.data``, server = the pulled state; where both changed a field differently the
local value stays and both values go into ``conflict``.
"""

from __future__ import annotations

from app.core.store import PendingResult
from sync.replica.outgoing import MAX_AUTHOR, OutOp, next_batch, pending_count, read_ahead
from sync.replica.pull import (
    CURSOR_KEY,
    SCOPE_KEY,
    Delivered,
    PullTally,
    apply_pull,
    bulk_writes,
    read_cursor,
    rebase,
    scope_of,
)
from sync.replica.push import (
    ACKED,
    PushTally,
    leaves_later_ops,
    names_of,
    record_results,
    requeue_entered,
    set_aside,
)
from sync.replica.refusals import Refusals, Refused, open_refusals, refused_records, rejected_ops
from sync.replica.rekey import open_conflicts, resolve, rewrite_id
from sync.replica.tasks import (
    apply_tasks,
    next_results,
    pending_result_count,
    record_task_answers,
    set_aside_result,
)

LAST_SYNC_KEY = "last_sync"

__all__ = [
    "ACKED",
    "CURSOR_KEY",
    "LAST_SYNC_KEY",
    "MAX_AUTHOR",
    "SCOPE_KEY",
    "OutOp",
    "PendingResult",
    "Delivered",
    "PullTally",
    "PushTally",
    "Refusals",
    "Refused",
    "apply_pull",
    "apply_tasks",
    "bulk_writes",
    "leaves_later_ops",
    "names_of",
    "next_batch",
    "next_results",
    "open_conflicts",
    "open_refusals",
    "pending_count",
    "pending_result_count",
    "read_ahead",
    "read_cursor",
    "rebase",
    "record_results",
    "record_task_answers",
    "refused_records",
    "rejected_ops",
    "requeue_entered",
    "resolve",
    "rewrite_id",
    "scope_of",
    "set_aside",
    "set_aside_result",
]
