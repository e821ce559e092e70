"""The device's record store: one SQLite file per data dir. SQL stays inside this package.

``store`` is the face (``Store``), composed of its parts: ``db`` (connection, transactions,
meta, clocks), ``reads`` (the queries), ``writes`` (saves with history and outbox),
``autosave``, ``grids``, ``tasks`` (issued tasks, items, results) and ``outbox`` (its states and queries) with ``replica_io``: the
narrow interface ``sync.replica`` uses. ``schema`` holds the tables and their migrations, ``derive`` the
values kept beside each record (natural keys, references, search terms), ``browse`` the lists
and the building/household views.
"""

from app.core.store.autosave import Autosave
from app.core.store.grids import Grid
from app.core.store.outbox import SETTLED, STATUS_FIELD, OutboxState
from app.core.store.replica_io import PulledRow, ReplicaRow
from app.core.store.store import Store
from app.core.store.tasks import (
    UNABLE_REASONS,
    ItemView,
    PendingResult,
    Task,
    TaskError,
    TaskItem,
    TaskView,
)

__all__ = [
    "STATUS_FIELD",
    "UNABLE_REASONS",
    "ItemView",
    "PendingResult",
    "Task",
    "TaskError",
    "TaskItem",
    "TaskView",
    "Autosave",
    "Grid",
    "OutboxState",
    "SETTLED",
    "PulledRow",
    "ReplicaRow",
    "Store",
]
