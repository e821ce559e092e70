"""Platform schema versions: Alembic revisions in ``sync/server/migrations``.

Why a module of its own: the server, ``server-admin`` and the tests all ask the same questions
(is this database empty, current, behind or ahead of the code?) and must get the same answers.

- An empty database gets the newest schema at once (``create_all`` and a stamp of head, the
  Alembic recipe for new databases: faster than replaying every revision).
- A database made before migrations existed (tables but no ``alembic_version``) is the baseline
  revision: today's schema when migrations were introduced.
- ``upgrade`` runs every pending revision in ONE transaction: a failed or killed upgrade leaves
  the database at its old revision (SQLite and PostgreSQL both roll DDL back).
- On PostgreSQL a transaction-scoped advisory lock serialises upgrades and first starts, so
  several server processes starting together cannot race to create the tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, insert, inspect, select, text
from sqlalchemy.engine import Connection

from app.core.messages import lang_of
from sync.server import db

BASELINE = "0001"
_LOCK_KEY = 0x6763_5F73_6368  # "gc_sch": any constant shared by every server process
_MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaMismatch(Exception):
    """The database's schema is not the one this code was written for."""

    def __init__(self, current: str | None, head: str, ahead: bool) -> None:
        self.current, self.head, self.ahead = current, head, ahead
        super().__init__(self.message("en"))

    def message(self, lang: str = "zh") -> str:
        if self.ahead:
            return (
                f"数据库结构（版本 {self.current}）比本程序新（{self.head}）：请升级 GridCollect 后再启动。"
                if lang_of(lang) != "en"
                else f"the database schema ({self.current}) is newer than this program "
                f"({self.head}): install the newer GridCollect before starting."
            )
        return (
            f"数据库结构（版本 {self.current}）需要升级到 {self.head}：先备份，再运行 "
            "gridcollect server-admin upgrade。"
            if lang_of(lang) != "en"
            else f"the database schema ({self.current}) is behind this program ({self.head}): "
            "back it up, then run: gridcollect server-admin upgrade"
        )


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands; ``current`` is None for an empty database."""

    current: str | None
    head: str
    known: bool  # the current revision is one this code knows (False: the database is newer)

    @property
    def empty(self) -> bool:
        return self.current is None

    @property
    def pending(self) -> bool:
        return self.current != self.head


def config() -> Config:
    """An Alembic config without an ini file: the scripts ship inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    heads = scripts().get_heads()
    if len(heads) != 1:  # two revisions with the same parent: a merge was forgotten
        raise RuntimeError(f"the migrations have {len(heads)} heads: {', '.join(heads)}")
    return heads[0]


def current_revision(conn: Connection) -> str | None:
    """The database's revision; the baseline for tables made before migrations; None if empty."""
    names = set(inspect(conn).get_table_names())
    if db.records.name not in names:  # also after drop_all, which leaves alembic_version
        return None
    if "alembic_version" in names:
        rev = MigrationContext.configure(conn).get_current_revision()
        if rev is not None:
            return rev
    return BASELINE


def state_of(conn: Connection) -> SchemaState:
    current, top = current_revision(conn), head()
    known = current is None or _is_known(current)
    return SchemaState(current, top, known)


def _is_known(revision: str) -> bool:
    try:
        return scripts().get_revision(revision) is not None
    except Exception:  # alembic raises ResolutionError/CommandError for unknown ids
        return False


def state(engine: Engine) -> SchemaState:
    with engine.connect() as conn:
        return state_of(conn)


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})


def _seed_rows(conn: Connection) -> None:
    """The change counter and the schema marker every database needs."""
    if (
        conn.execute(select(db.counters.c.value).where(db.counters.c.name == db.SEQ)).first()
        is None
    ):
        conn.execute(insert(db.counters).values(name=db.SEQ, value=0))
    if conn.execute(select(db.meta.c.value).where(db.meta.c.key == "schema")).first() is None:
        conn.execute(insert(db.meta).values(key="schema", value=db.SCHEMA_VERSION))


def _run(conn: Connection, action: str, revision: str) -> None:
    cfg = config()
    cfg.attributes["connection"] = conn
    getattr(command, action)(cfg, revision)


def ensure_current(engine: Engine) -> SchemaState:
    """Create the newest schema in an empty database; otherwise require it to be at head.

    Raises ``SchemaMismatch`` for a database behind or ahead of the code (nothing is changed).
    A pre-migrations database at the baseline is stamped so later upgrades know where it is.
    """
    with db.write(engine) as conn:
        _lock(conn)
        now = state_of(conn)
        if now.empty:
            db.metadata.create_all(conn)
            _run(conn, "stamp", now.head)
        elif now.pending:
            raise SchemaMismatch(now.current, now.head, ahead=not now.known)
        elif MigrationContext.configure(conn).get_current_revision() is None:
            _run(conn, "stamp", now.current or BASELINE)
        _seed_rows(conn)
    return SchemaState(now.head, now.head, True)


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str]:
    """Run every pending revision in one transaction; returns (from, to).

    An empty database is built by replaying the revisions (what the tests use to prove the
    revisions add up to the models). A database ahead of the code raises ``SchemaMismatch``.
    """
    with db.write(engine) as conn:
        _lock(conn)
        before = state_of(conn)
        if not before.known:
            raise SchemaMismatch(before.current, before.head, ahead=True)
        if (
            before.current is not None
            and MigrationContext.configure(conn).get_current_revision() is None
        ):
            _run(conn, "stamp", BASELINE)
        _run(conn, "upgrade", target)
        _seed_rows(conn)
        after = current_revision(conn)
    if before.current != after:
        db.analyze(engine)  # revisions may have rebuilt tables and indexes
    return before.current, after or ""
