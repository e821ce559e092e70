"""The wire shapes of sync protocol version 1 (see PROTOCOL.md), shared by server and client.

Plain pydantic models and constants: no Qt, no HTTP library, no database. The server uses them
to validate requests and to publish its OpenAPI schema; a client may use them to build requests
and to parse answers (``PushResponse.model_validate(resp.json())``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core import textcheck
from app.core.records import RecordStatus

PROTOCOL_VERSION = 1
SUPPORTED_PROTOCOLS: tuple[int, ...] = (1,)
SERVER_VERSION = "0.1.0"

MAX_REQUEST_BYTES = 10 * 1024 * 1024
MAX_OPS = 1000
MAX_VALUE_CHARS = textcheck.MAX_VALUE_CHARS  # the same limit for files read by the app
MAX_LIST_ITEMS = 200
MAX_PULL_LIMIT = 5000
DEFAULT_PULL_LIMIT = 500
MAX_VERSION = 2**31 - 1
MAX_CURSOR = 2**62

STATUS_FIELD = "_status"  # pseudo-field: "draft" | "complete"
DELETED_FIELD = "_deleted"  # pseudo-field: tombstone flag (sent by resolve; implied by kind)
STATUSES = tuple(s.value for s in RecordStatus)  # ("draft", "complete")

OpKind = Literal["create", "update", "delete", "resolve"]
ResultStatus = Literal["applied", "conflict", "merged_into", "duplicate_op", "rejected"]
Role = Literal["worker", "supervisor", "admin", "department"]

_STRICT = ConfigDict(strict=True, extra="ignore")
DeviceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Installation = Annotated[str, Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")]
DeviceStatus = Literal["new", "known", "copied", "unchecked"]


class Op(BaseModel):
    """One local change from a device's outbox (PROTOCOL.md §5.1)."""

    model_config = _STRICT

    op_id: str = Field(min_length=1, max_length=128)
    record_id: str = Field(min_length=1, max_length=64)
    form: str = Field(min_length=1, max_length=64)
    kind: OpKind
    base_version: int | None = Field(default=None, ge=0, le=MAX_VERSION)
    fields: dict[str, Any] = Field(default_factory=dict)
    edited_at: str = Field(min_length=1, max_length=64)
    author: str = Field(default="", max_length=100)


TaskItemState = Literal["open", "done", "unable"]
TaskState = Literal["open", "closed", "cancelled"]
TaskKind = Literal["verify", "collect"]
UNABLE_REASONS = ("查无此人", "拒绝配合", "已迁出", "房屋拆除")  # or free text, at most 200 chars
MAX_REASON_CHARS = 200
FEATURE_TASKS = "tasks"  # in Info.features: the server takes task_results in a push


class TaskResult(BaseModel):
    """A worker's result for one task item (PROTOCOL.md §13.3), idempotent like an op."""

    model_config = _STRICT

    op_id: str = Field(min_length=1, max_length=128)
    item_id: str = Field(min_length=1, max_length=64)
    state: Literal["done", "unable"]
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)
    edited_at: str = Field(min_length=1, max_length=64)
    author: str = Field(default="", max_length=100)


FEATURE_DEDUP = "dedup_decisions"  # in Info.features: push takes them, pull names pairs


class DedupDecision(BaseModel):
    """A worker's "not the same person" about two records (PROTOCOL.md §9.2). Only
    ``different``: "same" is a supervisor's merge, never a device's."""

    model_config = _STRICT

    record_id: str = Field(min_length=1, max_length=64)
    other_id: str = Field(min_length=1, max_length=64)
    decision: Literal["different"]
    decided_at: str = Field(min_length=1, max_length=64)


class PushRequest(BaseModel):
    """A batch of ops, applied in order; then the task results and the duplicate decisions
    (both absent from old clients)."""

    model_config = _STRICT

    protocol: int
    device_id: DeviceId
    ops: list[Op]
    task_results: list[TaskResult] = Field(default_factory=list)
    dedup_decisions: list[DedupDecision] = Field(default_factory=list)


class Issue(BaseModel):
    """One validation problem of a rejected op."""

    field: str
    code: str
    message_zh: str
    message_en: str


class Reason(BaseModel):
    """Why an op was rejected; ``retryable``: sending the same op later may succeed."""

    code: str
    message_zh: str
    message_en: str
    retryable: bool = False
    issues: list[Issue] = Field(default_factory=list)
    other_id: str | None = None


class ConflictEntry(BaseModel):
    """Both sides of a concurrent change of one field (PROTOCOL.md §6)."""

    field: str
    kind: Literal["hard", "soft"]
    base: Any = None
    server: Any = None
    incoming: Any = None
    provisional: Any = None
    note: str | None = None  # why the platform flagged it, e.g. "transfer_rejected" (§9.1)


class OpResult(BaseModel):
    """The outcome of one op (PROTOCOL.md §5.3)."""

    op_id: str
    status: ResultStatus
    record_id: str
    version: int | None = None
    conflicts: list[ConflictEntry] = Field(default_factory=list)
    merged_into: str | None = None
    reason: Reason | None = None
    original_status: ResultStatus | None = None


class TaskResultOutcome(BaseModel):
    """What became of one task result: ``state`` is the item's state after it (§13.3)."""

    op_id: str
    status: Literal["applied", "duplicate"]
    item_id: str
    state: TaskItemState


class DedupOutcome(BaseModel):
    """What a duplicate decision did: ``closed`` the open review item, found it
    ``already_decided``, or found ``no_review`` it may name (§9.2). Each is final."""

    record_id: str
    other_id: str
    status: Literal["closed", "already_decided", "no_review"]


class PushResponse(BaseModel):
    results: list[OpResult]
    task_results: list[TaskResultOutcome] = Field(default_factory=list)
    dedup_decisions: list[DedupOutcome] = Field(default_factory=list)


class PulledRecord(BaseModel):
    """A record's current state as pulls deliver it."""

    id: str
    form: str
    form_version: int
    version: int
    data: dict[str, Any]
    status: str
    deleted: bool
    conflict: list[ConflictEntry] | None = None
    updated_at: str
    updated_by: str


class Alias(BaseModel):
    old: str
    canonical: str


class PulledGrid(BaseModel):
    """A grid created, renamed or given a boundary (PROTOCOL.md §8)."""

    code: str
    name: str
    community: str
    community_name: str = ""
    level: str = "1"
    polygon: list[tuple[float, float]] | None = None


class PulledTask(BaseModel):
    """A task as pulls deliver it (PROTOCOL.md §13.2); ``grids`` only those in the caller's scope."""

    id: str
    kind: TaskKind
    title: str
    instruction: str = ""
    form: str
    fields: list[str] = Field(default_factory=list)
    due: str | None = None
    priority: int = 0
    state: TaskState
    grids: list[str] = Field(default_factory=list)
    assignees: list[str] = Field(default_factory=list)
    issued_at: str
    issued_by: str
    updated_at: str
    target: int | None = None


class PulledTaskItem(BaseModel):
    """One record to work on for a verify task (PROTOCOL.md §13.2)."""

    id: str
    task_id: str
    record_id: str
    grid: str
    state: TaskItemState
    reason: str | None = None
    updated_at: str
    updated_by: str | None = None


class EnteredGrid(BaseModel):
    """A grid that entered the caller's scope (PROTOCOL.md §8 ``entered``): fetch its records
    numbered ``<= upto`` with ``GET /v1/pull?grid=&upto=``; later ones come with the cursor."""

    grid: str
    upto: int = Field(ge=0)


class NotDuplicate(BaseModel):
    """Two records a supervisor (or a worker) decided are two people (PROTOCOL.md §9.2)."""

    record_id: str
    other_id: str
    decided_by: str | None = None
    decided_at: str | None = None


class PullResponse(BaseModel):
    records: list[PulledRecord]
    aliases: list[Alias]
    removed: list[str]
    grids: list[PulledGrid] = Field(default_factory=list)  # absent before platform schema 0006
    tasks: list[PulledTask] = Field(default_factory=list)  # absent before platform schema 0008
    task_items: list[PulledTaskItem] = Field(default_factory=list)
    entered: list[EnteredGrid] = Field(default_factory=list)  # absent before platform schema 0016
    # grids taken from the worker, tasks naming other workers (PROTOCOL.md §13.2): absent
    # before platform schema 0020 and on pages with none
    grids_left: list[str] = Field(default_factory=list)
    tasks_withdrawn: list[str] = Field(default_factory=list)
    # pairs decided "different" (§9.2): absent before platform schema 0021 and on pages with none
    not_duplicates: list[NotDuplicate] = Field(default_factory=list)
    cursor: int
    more: bool


class LoginRequest(BaseModel):
    model_config = _STRICT

    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1024)
    device_id: DeviceId
    installation: Installation | None = None


class UserInfo(BaseModel):
    username: str
    role: Role
    community: str | None = None
    grids: list[str]


class LoginResponse(BaseModel):
    token: str
    expires_at: str
    user: UserInfo
    # The device id the token is bound to: the one sent, or a new one when another installation
    # already holds it (a copied or restored data dir). Absent from servers before this field.
    device_id: str | None = None
    device_status: DeviceStatus | None = None
    # The device's sync credential (PROTOCOL.md §4.3): sent by a password login, and by
    # POST /v1/token unchanged. Absent from servers before it.
    refresh_token: str | None = None
    refresh_expires_at: str | None = None


class RefreshRequest(BaseModel):
    model_config = _STRICT

    refresh_token: str = Field(min_length=1, max_length=200)
    device_id: DeviceId
    installation: Installation | None = None


class Limits(BaseModel):
    max_request_bytes: int = MAX_REQUEST_BYTES
    max_ops: int = MAX_OPS
    max_pull_limit: int = MAX_PULL_LIMIT
    max_value_chars: int = MAX_VALUE_CHARS


class Info(BaseModel):
    protocol_versions: list[int]
    server_version: str
    forms: dict[str, int]
    limits: Limits = Field(default_factory=Limits)
    features: list[str] = Field(default_factory=list)  # e.g. "tasks" (PROTOCOL.md §13)


class ErrorBody(BaseModel):
    code: str
    message_zh: str
    message_en: str
    op_id: str | None = None
    index: int | None = None
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class Review(BaseModel):
    """A possible duplicate or a transfer claim waiting for (or decided by) a person."""

    id: int
    kind: Literal["duplicate", "transfer"] = "duplicate"
    form: str
    record_id: str
    other_id: str
    reason: str
    state: Literal["open", "same", "different"]
    created_at: str
    decided_by: str | None = None
    decided_at: str | None = None
    # the decider's role then: a worker's "different" may still be decided by a supervisor (§9)
    decided_role: str | None = None
    record_title: str = ""
    other_title: str = ""
    grid: str | None = None
    other_grid: str | None = None


class ReviewList(BaseModel):
    reviews: list[Review]


class ReviewDecision(BaseModel):
    model_config = _STRICT

    decision: Literal["same", "different"]


class ReviewOutcome(BaseModel):
    review: Review
    merged_into: str | None = None
    version: int | None = None


class RevokeRequest(BaseModel):
    model_config = _STRICT

    username: str = Field(min_length=1, max_length=100)
    device_id: DeviceId | None = None


class Revoked(BaseModel):
    revoked: int
