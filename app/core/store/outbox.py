"""The outbox's vocabulary: the states an op goes through (stored as these strings).

``pending`` -> ``applied`` | ``conflict`` | ``merged`` | ``rejected`` (PROTOCOL.md §5.3); a
retryable rejection stays ``pending``.
"""

from __future__ import annotations

from enum import StrEnum


class OutboxState(StrEnum):
    """An outbox op's state (``outbox.state``)."""

    PENDING = "pending"
    APPLIED = "applied"
    CONFLICT = "conflict"
    MERGED = "merged"
    REJECTED = "rejected"


STATUS_FIELD = "_status"  # outbox pseudo-field: a status change travels with the field changes
