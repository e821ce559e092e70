"""Tables and engine of the platform server: SQLAlchemy Core, one code path for SQLite and PG.

JSON is stored as text (``dumps`` below) so both databases hold and compare it the same way.
SQLite gets WAL and ``BEGIN IMMEDIATE`` for write transactions (so two writers queue instead of
failing on a lock upgrade); PostgreSQL uses psycopg 3 with READ COMMITTED and row locks.
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.base import Executable

from app.core.checkpoint import Checkpointer
from app.core.records import canonical_json, parse_json
from sync.server import liveness

SCHEMA_VERSION = "1"
SEQ = "seq"  # the one change-sequence counter row

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# One row per counter; the change sequence lives in row "seq" (see numbering.py: on SQLite it
# is taken inside the writing transaction, on PostgreSQL in a short transaction of its own
# that also writes the numbers' ``inflight_numbers`` row).
counters = Table(
    "counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# Change numbers taken by PostgreSQL writing transactions that have not committed yet: a pull
# never reads past the lowest of them (PROTOCOL.md §8). The writer deletes its rows in its own
# transaction, so they vanish exactly when its changes appear. ``at``: epoch milliseconds.
inflight_numbers = Table(
    "inflight_numbers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("floor", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
)

communities = Table(
    "communities",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
)

grids = Table(
    "grids",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("community", String(64), nullable=False, index=True),
    Column("level", String(8), nullable=False, default="1"),
    Column("polygon", Text),
    # Change number of the grid's last create/rename/boundary (same counter as records): pulls
    # send a grid to the devices in its scope once per change (PROTOCOL.md §8).
    Column("seq", BigInteger, nullable=False, default=0, server_default="0", index=True),
)

users = Table(
    "users",
    metadata,
    Column("username", String(100), primary_key=True),
    Column("password_hash", String(300), nullable=False),
    Column("role", String(16), nullable=False),
    Column("community", String(64)),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", String(32), nullable=False),
    Column("department", String(64)),  # a department account's department (``departments``)
)

user_grids = Table(
    "user_grids",
    metadata,
    Column("username", String(100), primary_key=True),
    Column("grid", String(64), primary_key=True),
)

# A grid entered a user's scope (a worker given a grid, a supervisor's new community) or a
# community (a grid created in it or moved there): numbered from the change counter, so the pull
# whose range holds the number tells the device to fetch the grid's older records
# (``scopes.py``, PROTOCOL.md §8 ``entered``). Exactly one of ``username``/``community`` is set.
scope_grants = Table(
    "scope_grants",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("grid", String(64), nullable=False),
    Column("username", String(100)),
    Column("community", String(64)),
    Column("at", String(32), nullable=False),
)

# A grid leaving a user's scope (``server-admin set-grids``, ``add-user`` again, the console; a
# grid moved to another community: one row per supervisor of the old one; a worker made a
# supervisor): numbered from the change counter, so the pull whose range holds the number
# names the grid in ``grids_left`` and the device takes the grid's tasks off its list
# (``scopes.py``, PROTOCOL.md §8 and §13.2). Its records stay on the device, as before.
scope_leaves = Table(
    "scope_leaves",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("grid", String(64), nullable=False),
    Column("username", String(100), nullable=False),
    Column("at", String(32), nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("username", String(100), nullable=False, index=True),
    Column("device_id", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("revoked_at", String(32)),
    # "access": a bearer token for requests; "refresh": a device's long-lived sync credential,
    # exchanged at POST /v1/token for an access token without the password (PROTOCOL.md §4.3).
    Column("kind", String(16), nullable=False, server_default="access"),
)

# Failed logins per account, known device or client address (``throttle``): shared by every
# server process. ``blocked_until`` answers 429 until then; a row whose last failure is older
# than the policy's window starts again from nothing.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(200), primary_key=True),  # account:<user> | device:<id> | address:<ip>
    Column("failures", Integer, nullable=False),
    Column("last_at", String(32), nullable=False, index=True),  # old rows are pruned
    Column("blocked_until", String(32)),
)

records = Table(
    "records",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("form", String(64), nullable=False),
    Column("form_version", Integer, nullable=False),
    Column("grid", String(64)),
    Column("title", Text, nullable=False, default=""),
    Column("data", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("version", Integer, nullable=False),
    Column("conflict", Text),
    Column("stamps", Text, nullable=False, default="{}"),
    Column("seq", BigInteger, nullable=False, index=True),
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Column("updated_by", String(100), nullable=False),
    # A worker's pull reads its grids' changes in change order: one range per grid.
    Index("ix_records_grid_seq", "grid", "seq"),
    # The console's conflicts list: only records with an open conflict are in this index.
    Index(
        "ix_records_open_conflict",
        "grid",
        "updated_at",
        sqlite_where=text("conflict IS NOT NULL"),
        postgresql_where=text("conflict IS NOT NULL"),
    ),
)

# Append-only: every version of every record, never updated or deleted.
record_versions = Table(
    "record_versions",
    metadata,
    Column("record_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("form", String(64), nullable=False),
    Column("grid", String(64)),
    Column("data", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("conflict", Text),
    Column("kind", String(16), nullable=False),
    Column("op_id", String(128)),
    Column("device_id", String(64)),
    Column("username", String(100), nullable=False),
    Column("author", String(100), nullable=False, default=""),
    Column("edited_at", String(64)),
    Column("at", String(32), nullable=False),
)

# Natural keys of live records; the primary key makes "one live record per key" a database fact.
record_keys = Table(
    "record_keys",
    metadata,
    Column("form", String(64), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("record_id", String(64), nullable=False, index=True),
)

# Natural keys a live record has in its values but does not hold, because a record of another
# grid holds them: transfer claims (PROTOCOL.md §9.1). Another record in the claimant's scope
# with the same key is a duplicate of the claimant, exactly as if it held the key.
record_claims = Table(
    "record_claims",
    metadata,
    Column("form", String(64), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Index("ix_record_claims_record", "record_id"),
)

# Name/pinyin/birth index of live people for the fuzzy duplicate review.
people = Table(
    "people",
    metadata,
    Column("record_id", String(64), primary_key=True),
    Column("form", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("pinyin", String(300), nullable=False),
    Column("birth", String(32), nullable=False),
    # the duplicate guard reads name and pinyin by birth date from the index alone (rev. 0017)
    Index("ix_people_birth", "form", "birth", postgresql_include=["name", "pinyin", "record_id"]),
)

# The console's record search (``sync.server.terms``): each record's name and address words and
# ID/phone tails, rewritten with the record; each distinct word's terms, kept once per grid that
# has it (a search reads only its scope's words; a word no record uses any more only costs a
# look-up). Byte order on both databases (PostgreSQL "C" collation), so a prefix is one range;
# no rowid on SQLite (one b-tree per table).
TERM = String(64).with_variant(String(64, collation="C"), "postgresql")
WORD = String(300).with_variant(String(300, collation="C"), "postgresql")
GRID = String(64).with_variant(String(64, collation="C"), "postgresql")  # pages go by grid
record_terms = Table(
    "record_terms",
    metadata,
    Column("term", WORD, primary_key=True),
    Column("grid", String(64), primary_key=True),  # "" for records without a grid
    Column("record_id", String(64), primary_key=True),
    sqlite_with_rowid=False,
)
search_words = Table(
    "search_words",
    metadata,
    Column("grid", GRID, primary_key=True),  # "" for records without a grid
    Column("term", TERM, primary_key=True),
    Column("word", WORD, primary_key=True),
    sqlite_with_rowid=False,
)
# Words a write gave a grid that no search has given their terms yet: a push only notes them
# here (one small row, no pinyin), and the first search of a scope holding the grid expands
# them into ``search_words`` (``sync.server.termrows``), off the push path.
new_words = Table(
    "new_words",
    metadata,
    Column("grid", GRID, primary_key=True),
    Column("word", WORD, primary_key=True),
    sqlite_with_rowid=False,
)

# Records a write created whose search terms are not in ``record_terms`` yet: a push only notes
# them here (one small row each, in the order of their time-ordered ids), and the next search
# of a scope holding the grid, or ``load-base`` at its end, gives them their terms
# (``termrows.index_pending``), off the push path: the terms were a push's largest write.
pending_terms = Table(
    "pending_terms",
    metadata,
    Column("grid", GRID, primary_key=True),  # the record's grid when created ("" for none)
    Column("record_id", String(64), primary_key=True),
    sqlite_with_rowid=False,
)

aliases = Table(
    "aliases",
    metadata,
    Column("old_id", String(64), primary_key=True),
    Column("canonical_id", String(64), nullable=False, index=True),
    Column("reason", String(32), nullable=False),
    Column("at", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False, index=True),
)

# A record left a grid (its grid field changed): workers of that grid are told in pulls.
scope_exits = Table(
    "scope_exits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("record_id", String(64), nullable=False),
    Column("grid", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False, index=True),
)

# The op log: every op applied (or rejected for good), with its result, for idempotent replay.
# Op ids are unique per device; ``op_hash`` (SHA-256 of the op's canonical JSON, see
# ``oplog.op_hash``) tells a replay from another op that reuses the id (a copied or restored
# data dir). Rows logged before the hash existed have NULL: they match any content.
ops = Table(
    "ops",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("op_id", String(128), primary_key=True),
    Column("op_hash", String(64)),
    Column("username", String(100), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("version", Integer),
    Column("result", Text, nullable=False),
    Column("at", String(32), nullable=False),
    # Only the indexes a query reads (every push writes each): what a device last wrote on a
    # record (``Tx.prefetch_device_versions``) and the console's last push per device. The
    # replay look-up (``oplog.lookup``: op ids of one device family) probes the primary key.
    Index("ix_ops_device_record", "device_id", "record_id"),
    Index("ix_ops_device_user_at", "device_id", "username", "at"),  # console: last push
)

# Installations of the app that logged in with a device id. ``installation`` is a hash of a
# random nonce each data dir keeps; a second installation presenting a known device id is a
# copy of that data dir (or a restored backup) and gets a new device id, whose ``parent`` is
# the id it presented and whose ``root`` is the first id of the family.
devices = Table(
    "devices",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("installation", String(64), nullable=False),
    Column("username", String(100), nullable=False),
    Column("root", String(64), nullable=False, index=True),
    Column("parent", String(64), index=True),
    Column("created_at", String(32), nullable=False),
    Column("last_pull_at", String(32)),  # the end of the device's last complete pull
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("op_id", String(128), nullable=False),
    Column("device_id", String(64), nullable=False),
    Column("username", String(100), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("form", String(64), nullable=False),
    Column("op", Text, nullable=False),
    Column("code", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", String(32), nullable=False),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("form", String(64), nullable=False),
    Column("record_id", String(64), nullable=False, index=True),
    Column("other_id", String(64), nullable=False, index=True),
    Column("reason", String(32), nullable=False),
    # "duplicate": two records that may be one person (both in one scope); "transfer": a record
    # (record_id) claims a natural key held by a record of another grid (other_id): 迁入/迁出.
    Column("kind", String(16), nullable=False, default="duplicate", server_default="duplicate"),
    Column("state", String(16), nullable=False, default="open"),
    Column("created_at", String(32), nullable=False),
    Column("decided_by", String(100)),
    Column("decided_at", String(32)),
    # the decider's role then: a duplicate a worker closed "different" (from a device's answer,
    # PROTOCOL.md §9.2) may still be decided "same" by a supervisor or an admin; NULL when open
    Column("decided_role", String(16), nullable=True),
    # a duplicate decided "different" takes a change number, so pulls carry the pair to the
    # devices holding both records (``not_duplicates``, PROTOCOL.md §9.2); NULL otherwise
    Column("seq", BigInteger, nullable=True),
    UniqueConstraint("record_id", "other_id", name="uq_review_pair"),
    Index("ix_reviews_seq", "seq"),
)

review_audit = Table(
    "review_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("review_id", Integer, nullable=False, index=True),
    Column("decision", String(16), nullable=False),
    Column("username", String(100), nullable=False),
    Column("at", String(32), nullable=False),
    Column("detail", Text, nullable=False, default="{}"),
)


# The console's audit log (who, when, from where, what): append-only, nothing updates or deletes
# it. It names record ids, user names, device ids, grid codes and field names, never values.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(32), nullable=False, index=True),
    Column("username", String(100), nullable=False),
    Column("ip", String(100), nullable=False, default=""),
    Column("action", String(32), nullable=False),
    Column("target", String(200), nullable=False, default=""),
    Column("fields", Text, nullable=False, default="[]"),
)


# The console overview's per-grid summary (counts per form/status/worker/day), refreshed from the
# change sequence: a grid is recounted only when it has records with a higher ``seq`` than the
# summary's (or a record left it), so the push path does no extra work. A cache: deleting rows
# only makes the next overview recount.
grid_stats = Table(
    "grid_stats",
    metadata,
    Column("grid", String(64), primary_key=True),  # "" for records without a grid
    Column("seq", BigInteger, nullable=False),
    Column("stats", Text, nullable=False),
)


# Tasks (PROTOCOL.md §13): issued by a supervisor/admin, carried out by the workers of their grids.
# ``seq`` numbers the task's last change from the one change counter (pulls send it once per
# change); ``spec`` keeps how its items were chosen (scope, filter, list) as JSON, for the record.
tasks = Table(
    "tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("title", String(200), nullable=False),
    Column("instruction", Text, nullable=False, default=""),
    Column("form", String(64), nullable=False),
    Column("fields", Text, nullable=False, default="[]"),
    Column("spec", Text, nullable=False, default="{}"),
    Column("due", String(10)),
    Column("priority", Integer, nullable=False, default=0),
    Column("state", String(16), nullable=False, default="open"),
    Column("target", Integer),
    Column("community", String(64)),  # the issuing supervisor's community (None: an admin's)
    Column("issued_at", String(32), nullable=False),
    Column("issued_by", String(100), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Column("updated_by", String(100), nullable=False),
    Column("seq", BigInteger, nullable=False, index=True),
)

# The grids a task covers, and the users it names: pulls find a caller's tasks through these.
task_grids = Table(
    "task_grids",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("grid", String(64), primary_key=True, index=True),
)
task_assignees = Table(
    "task_assignees",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("username", String(100), primary_key=True, index=True),
)

# One row per record a verify task asks about; ``grid`` is the record's grid when the task was
# issued (pulls scope items by it). Each creation and state change takes a change number.
task_items = Table(
    "task_items",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("task_id", String(64), nullable=False),
    Column("record_id", String(64), nullable=False, index=True),
    Column("grid", String(64), nullable=False),
    Column("state", String(16), nullable=False, default="open"),
    Column("reason", Text),
    Column("updated_at", String(32), nullable=False),
    Column("updated_by", String(100)),
    Column("seq", BigInteger, nullable=False),
    Index("ix_task_items_grid_seq", "grid", "seq"),
    # a task's counts per grid and state, and its items listed by grid: one index range
    Index("ix_task_items_task_grid", "task_id", "grid", "state", "id"),
    Index("ix_task_items_task_state", "task_id", "state"),  # "is an item still open?"
    Index("ix_task_items_seq", "seq"),
)

# Every result an item got, append-only: pushed by devices (``device_id``/``op_id``, idempotent
# with ``op_hash``) or made by a qualifying save (``source`` "save", ``record_version``).
task_results = Table(
    "task_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", String(64), nullable=False, index=True),
    Column("source", String(16), nullable=False),  # "push" | "save"
    Column("state", String(16), nullable=False),
    Column("reason", Text),
    Column("edited_at", String(64), nullable=False),
    Column("device_id", String(64)),
    Column("op_id", String(128)),
    Column("op_hash", String(64)),
    Column("username", String(100), nullable=False),
    Column("author", String(100), nullable=False, default=""),
    Column("record_version", Integer),
    Column("at", String(32), nullable=False),
    UniqueConstraint("device_id", "op_id", name="uq_task_result_op"),
)

# -- departments taking data (sync/server/dept/, PROTOCOL.md §14) -----------------------------

# A department (民政, 卫健, 公安…) whose accounts (role "department") take data under grants.
departments = Table(
    "departments",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
)

# What a department may take: forms, fields (each sensitive one "full" or "masked"; a field not
# listed is left out), records (grids/communities, [] = all, plus a filter text), a period and
# the approving admin. ``revision`` grows when the grant is narrowed, so feed cursors of the old
# grant are refused (the department takes a fresh export).
dept_grants = Table(
    "dept_grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("department", String(64), nullable=False, index=True),
    Column("purpose", Text, nullable=False),
    Column("legal_basis", Text, nullable=False),
    Column("fields", Text, nullable=False),  # {form: {field: "full" | "masked"}}
    Column("communities", Text, nullable=False, default="[]"),
    Column("grids", Text, nullable=False, default="[]"),
    Column("filter", Text, nullable=False, default=""),
    Column("valid_from", String(32), nullable=False),
    Column("valid_to", String(32), nullable=False),
    Column("approved_by", String(100), nullable=False),
    Column("approved_at", String(32), nullable=False),
    Column("revoked_at", String(32)),
    Column("revision", Integer, nullable=False, default=1),
    Column("request_id", Integer),
)

# A department's ask (部门提出需求): open, then granted, refused or turned into a collection task.
dept_requests = Table(
    "dept_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("department", String(64), nullable=False, index=True),
    Column("username", String(100), nullable=False),
    Column("fields", Text, nullable=False),  # {form: [field, ...]}
    Column("communities", Text, nullable=False, default="[]"),
    Column("grids", Text, nullable=False, default="[]"),
    Column("filter", Text, nullable=False, default=""),
    Column("purpose", Text, nullable=False),
    Column("until", String(32), nullable=False),
    Column("state", String(16), nullable=False, default="open"),
    Column("reason", Text, nullable=False, default=""),
    Column("grant_id", Integer),
    Column("task_id", String(64)),  # the collection task made of it (tasks issue), if any
    Column("created_at", String(32), nullable=False),
    Column("decided_by", String(100)),
    Column("decided_at", String(32)),
)

# Department API keys: shown once, kept as an HMAC under the server secret (like tokens).
dept_keys = Table(
    "dept_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("department", String(64), nullable=False, index=True),
    Column("label", String(200), nullable=False, default=""),
    Column("created_by", String(100), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("revoked_at", String(32)),
)

# Every taking: a download, an export page, a feed page or a statistics query. The audit log
# has a row for each too; this table is the structured copy the console's pages read.
dept_exports = Table(
    "dept_exports",
    metadata,
    Column("export_id", String(40), primary_key=True),
    Column("grant_id", Integer, nullable=False, index=True),
    Column("department", String(64), nullable=False, index=True),
    Column("actor", String(120), nullable=False),  # a user name, or "key:<key_id>"
    Column("kind", String(16), nullable=False),  # download | export | feed | stats
    Column("format", String(16), nullable=False, default=""),
    Column("records", Integer, nullable=False, default=0),
    Column("fields", Text, nullable=False, default="[]"),
    Column("ip", String(100), nullable=False, default=""),
    Column("at", String(32), nullable=False, index=True),
)

# Which department received which record (for 授权使用 questions on the record page).
dept_received = Table(
    "dept_received",
    metadata,
    Column("record_id", String(64), primary_key=True),
    Column("grant_id", Integer, primary_key=True),
    Column("department", String(64), nullable=False),
    Column("first_at", String(32), nullable=False),
    Column("last_at", String(32), nullable=False),
    Column("export_id", String(40), nullable=False),
)

# Per grant and grid, the statistics of the grant's records (a cache like ``grid_stats``).
dept_stats = Table(
    "dept_stats",
    metadata,
    Column("grant_id", Integer, primary_key=True),
    Column("grid", String(64), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("stats", Text, nullable=False),
)


def dumps(value: Any) -> str:
    """Deterministic compact JSON with Chinese kept readable (op hashes depend on it)."""
    return canonical_json(value)


def loads(text: str | None) -> Any:
    return parse_json(text) if text else None


def normalize_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 (the driver the project installs)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class PoolSettings:
    """Database connections one server process may hold (PostgreSQL).

    Why small: PostgreSQL's default ``max_connections`` is 100 and each connection costs a
    backend process; four server processes at ``size + overflow`` = 10 use 40, leaving room
    for administration. The admission limit in front of the app (``admission.Admission``)
    is the same number, so requests never queue inside the pool (README, city section)."""

    size: int = 8
    overflow: int = 2
    timeout: float = 30.0
    # the statements marked ``prepared`` are prepared on the server; off for a PgBouncer in
    # transaction mode that does not keep them (older than 1.21, or max_prepared_statements 0)
    prepare: bool = True

    @property
    def connections(self) -> int:
        return self.size + self.overflow


def make_engine(url: str, pool: PoolSettings | None = None) -> Engine:
    """An engine for a SQLite file (or ``sqlite://`` in memory) or a PostgreSQL database."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if memory else None,
        )
        _sqlite_events(engine, None if memory else _checkpoints(engine))
        return engine
    pool = pool or PoolSettings()
    engine = create_engine(
        url,
        pool_size=pool.size,
        max_overflow=pool.overflow,
        pool_timeout=pool.timeout,
        # Not prepared by psycopg on its own: it prepared a query at its fifth run and PostgreSQL
        # then kept a generic plan made on a fresh database's statistics, so a push's
        # prefetches (keys, op ids, device versions: IN lists of up to 500 values) scanned
        # their tables; a 10 k push into a fresh platform took 12-14 s instead of 6-8, a
        # known-resident push 21-31 s instead of 5-7. Unprepared, each is planned with its
        # values. Only the statements marked ``prepared`` (plans that no value changes) are.
        connect_args=PG_CONNECT_ARGS if pool.prepare else _NEVER_PREPARE,
    )
    prepare_marked(engine)
    if not pool.prepare:
        _UNPREPARED.add(engine)
    liveness.watch(engine)  # instead of pool_pre_ping: no round trip per checkout
    return engine


# -- prepared statements (PostgreSQL) --------------------------------------------------------

PREPARE = "gc_prepare"  # execution option: psycopg prepares the statement on its connection
# psycopg never prepares on its own (a threshold no count reaches); ``None`` would also
# refuse the statements marked ``prepared``.
PG_CONNECT_ARGS: dict[str, Any] = {"prepare_threshold": sys.maxsize}
_NEVER_PREPARE: dict[str, Any] = {"prepare_threshold": None}  # psycopg refuses even the marked
_UNPREPARED: weakref.WeakSet[Engine] = weakref.WeakSet()  # engines made with ``prepare`` off
E = TypeVar("E", bound=Executable)


def prepared(stmt: E) -> E:
    """``stmt``, prepared on each PostgreSQL connection at its first run (ignored by SQLite).

    Why: nothing else is prepared, so PostgreSQL parsed and planned every statement at every
    call; a nightly sync runs the caller look-up three times and the numbering and pull
    look-ups once each, ~2 ms of the backends' CPU per sync in planning alone
    (``pg_stat_statements``, bench_city). Only for statements whose plan is an index probe
    whatever the values and the statistics (a key, a range of change numbers): after five
    runs PostgreSQL keeps one generic plan (tests/sync/test_prepared.py checks each one's on
    a city's spread, test_server_known_push.py on a fresh platform's empty tables, where a
    look-up of a run-time array, ``sqlin``, got a scan that stayed while the table grew)."""
    return stmt.execution_options(**{PREPARE: True})


def connect_args(engine: Engine) -> dict[str, Any]:
    """The psycopg arguments ``engine`` connects with: a second engine on the same database
    (change numbering's side pool) prepares exactly when the first does."""
    return dict(PG_CONNECT_ARGS if engine not in _UNPREPARED else _NEVER_PREPARE)


def prepare_marked(engine: Engine) -> None:
    """Run the statements marked ``prepared`` through psycopg's ``prepare=True``."""

    @event.listens_for(engine, "do_execute")
    def _execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        if context.execution_options.get(PREPARE):
            cursor.execute(statement, parameters, prepare=True)
            return True
        return False


_WROTE = "gc_wrote"  # conn.info: a write committed since the connection was checked out
_CHECKPOINTERS: weakref.WeakKeyDictionary[Engine, Checkpointer] = weakref.WeakKeyDictionary()


def checkpointer(engine: Engine) -> Checkpointer | None:
    """The thread that checkpoints a SQLite file engine's WAL (``app.core.checkpoint``)."""
    return _CHECKPOINTERS.get(engine)


def _checkpoints(engine: Engine) -> Checkpointer:
    """Checkpoints of ``engine``'s file on a thread of their own, looked for after each
    write's commit (and before each write, ``Checkpointer.before_write``); the engine's
    disposal (a server's or ``server-admin``'s end) copies the rest."""
    assert engine.url.database
    found = _CHECKPOINTERS[engine] = Checkpointer(os.path.abspath(engine.url.database))

    @event.listens_for(engine, "commit")
    def _committing(conn: Connection) -> None:
        if not conn.get_execution_options().get("readonly"):
            conn.info[_WROTE] = True

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        if record is not None and record.info.pop(_WROTE, False):  # committed by now
            found.committed()

    event.listen(engine, "engine_disposed", lambda _engine: found.stop())
    return found


def _sqlite_events(engine: Engine, checkpoints: Checkpointer | None) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event below opens transactions
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before the push is answered. With NORMAL a power cut could
        # roll back ops already acknowledged, which the device then never sends again.
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA busy_timeout = 30000")
        if checkpoints is not None:  # not in the commits: on the checkpointer's thread
            cur.execute("PRAGMA wal_autocheckpoint = 0")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("readonly")
        if checkpoints is not None and not readonly:
            raw = conn.connection.driver_connection
            if raw is not None:
                checkpoints.before_write(raw)
        conn.exec_driver_sql(f"BEGIN {'DEFERRED' if readonly else 'IMMEDIATE'}")


def init_db(engine: Engine) -> None:
    """Create the newest schema in an empty database, or check that it is current.

    Raises ``sync.server.migrate.SchemaMismatch`` when the database is behind the code (run
    ``gridcollect server-admin upgrade``) or ahead of it; nothing is changed then.
    """
    from sync.server import migrate  # migrate imports this module's tables

    migrate.ensure_current(engine)


BEFORE_COMMIT = "gc_before_commit"  # conn.info: callbacks a transaction asks to run last
AFTER_ROLLBACK = "gc_after_rollback"  # conn.info: clean-ups for a transaction rolled back


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """One write transaction (SQLite: BEGIN IMMEDIATE).

    Code inside may leave callbacks in ``conn.info``: BEFORE_COMMIT ones run as the last
    statements of the transaction, AFTER_ROLLBACK ones once it is rolled back (numbering.py
    uses them to withdraw the numbers it took)."""
    with engine.connect() as conn:
        conn.info[BEFORE_COMMIT], conn.info[AFTER_ROLLBACK] = [], []
        try:
            with conn.begin():
                yield conn
                for callback in conn.info[BEFORE_COMMIT]:
                    callback(conn)
        except BaseException:
            for callback in conn.info[AFTER_ROLLBACK]:
                callback(conn)
            raise
        finally:
            conn.info.pop(BEFORE_COMMIT, None)
            conn.info.pop(AFTER_ROLLBACK, None)


SQLITE_ANALYSIS_LIMIT = 1000  # index rows sampled per index by ANALYZE (SQLite)


def analyze(engine: Engine, *, vacuum: bool = False) -> None:
    """Give the query planner fresh statistics after a bulk change (load-base, upgrade).

    Why: on a just-loaded PostgreSQL database the planner thinks the tables are empty until
    autovacuum gets to them, and psycopg's prepared prefetch queries keep a plan that scans
    (80-170 ms a call instead of 5 ms). SQLite gets ``ANALYZE`` too, on a sample of each index
    (``analysis_limit``: seconds, not a scan of a 12 GB file), committed in a write
    transaction: the ``PRAGMA optimize`` this replaces ran in the engine's ``BEGIN IMMEDIATE``
    (the begin event fires under AUTOCOMMIT too), was rolled back and left no statistics.

    ``vacuum`` (PostgreSQL, after a bulk load): ``VACUUM (ANALYZE)`` instead. A loaded table's
    pages are not yet all-visible, so the first autovacuum of each scans all of it: after the
    1.63 M-record street office that was 4 minutes of a core on ``search_words`` (6.9 GB),
    during the first syncs. The load pays it once, before it returns.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE)" if vacuum else "ANALYZE")
        return
    with write(engine) as conn:
        conn.exec_driver_sql(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
        conn.exec_driver_sql("ANALYZE")


def never_analyzed(engine: Engine) -> bool:
    """PostgreSQL: the records table holds rows but has never had statistics taken."""
    if engine.dialect.name != "postgresql":
        return False
    sql = (
        "SELECT n_live_tup > 0 AND last_analyze IS NULL AND last_autoanalyze IS NULL "
        "FROM pg_stat_user_tables WHERE relname = 'records'"
    )
    with engine.connect() as conn:
        return bool(conn.exec_driver_sql(sql).scalar())


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """One read transaction (SQLite: a deferred one, so readers never queue behind writers)."""
    with engine.connect().execution_options(readonly=True) as conn, conn.begin():
        yield conn


@contextmanager
def lookup(engine: Engine) -> Iterator[Connection]:
    """A connection for one read-only statement (authenticating a request).

    PostgreSQL: in autocommit, so the statement is the only round trip (no BEGIN, no
    COMMIT); one statement sees one snapshot anyway. SQLite: a read transaction as ``read``."""
    if engine.dialect.name != "postgresql":
        with read(engine) as conn:
            yield conn
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn
