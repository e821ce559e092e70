"""Versioned migrations of the local store.

Each migration is a list of SQL statements applied in one transaction and recorded in
``PRAGMA user_version``; a store opened by an older app is upgraded in place, and a store from
a newer app is refused rather than damaged.
"""

from __future__ import annotations

import sqlite3

from app.core.store.order import MIGRATION as SORT_KEY
from app.core.store.order import SURNAMES_MIGRATION as SURNAME_ORDER
from app.core.store.places import MIGRATION as ADDRESS_INDEX
from app.core.store.rekeys import MIGRATION as ID15_KEYS

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        """CREATE TABLE records (
            rid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            form TEXT NOT NULL,
            form_version INTEGER NOT NULL,
            grid TEXT,
            title TEXT NOT NULL DEFAULT '',
            data TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'complete')),
            deleted INTEGER NOT NULL DEFAULT 0,
            server_version INTEGER,
            dirty INTEGER NOT NULL DEFAULT 1,
            base TEXT,
            conflict TEXT,
            dup_state TEXT,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX records_form_grid ON records (form, grid, title)",
        "CREATE INDEX records_form_title ON records (form, title)",
        "CREATE INDEX records_dirty ON records (dirty) WHERE dirty = 1",
        """CREATE TABLE history (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            record_id TEXT NOT NULL,
            at TEXT NOT NULL,
            author TEXT NOT NULL,
            kind TEXT NOT NULL,
            changes TEXT NOT NULL
        )""",
        "CREATE INDEX history_record ON history (record_id, seq)",
        """CREATE TRIGGER history_no_update BEFORE UPDATE ON history
           BEGIN SELECT RAISE(ABORT, 'history is append-only'); END""",
        """CREATE TRIGGER history_no_delete BEFORE DELETE ON history
           BEGIN SELECT RAISE(ABORT, 'history is append-only'); END""",
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            op_id TEXT NOT NULL UNIQUE,
            record_id TEXT NOT NULL,
            form TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('create', 'update', 'delete', 'resolve')),
            base_version INTEGER,
            fields TEXT NOT NULL,
            edited_at TEXT NOT NULL,
            author TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            result TEXT
        )""",
        "CREATE INDEX outbox_pending ON outbox (state, seq)",
        """CREATE TABLE record_keys (
            form TEXT NOT NULL, key TEXT NOT NULL, record_id TEXT NOT NULL,
            PRIMARY KEY (form, key, record_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX record_keys_record ON record_keys (record_id)",
        """CREATE TABLE refs (
            src TEXT NOT NULL, field TEXT NOT NULL, dst TEXT NOT NULL,
            PRIMARY KEY (dst, src, field)
        ) WITHOUT ROWID""",
        "CREATE INDEX refs_src ON refs (src)",
        """CREATE TABLE people (
            rid INTEGER PRIMARY KEY,
            form TEXT NOT NULL,
            name TEXT NOT NULL,
            pinyin TEXT NOT NULL,
            birth TEXT,
            house TEXT
        )""",
        "CREATE INDEX people_birth ON people (form, birth)",
        "CREATE INDEX people_house ON people (form, house)",
        "CREATE INDEX people_pinyin ON people (form, pinyin)",
        """CREATE VIRTUAL TABLE search USING fts5 (
            terms, tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3'
        )""",
        """CREATE TABLE autosave (
            slot TEXT PRIMARY KEY, form TEXT NOT NULL, record_id TEXT,
            data TEXT NOT NULL, saved_at TEXT NOT NULL
        )""",
        """CREATE TABLE grids (
            code TEXT PRIMARY KEY, name TEXT NOT NULL, community_code TEXT NOT NULL,
            community_name TEXT NOT NULL, level TEXT NOT NULL DEFAULT '1',
            polygon TEXT, worker TEXT
        )""",
        """CREATE TABLE dedup_decisions (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            record_id TEXT NOT NULL, other_id TEXT NOT NULL,
            decision TEXT NOT NULL CHECK (decision IN ('same', 'different', 'open_existing')),
            author TEXT NOT NULL, at TEXT NOT NULL
        )""",
    ],
]

# Partial indexes that keep list pages, rare filters and counts fast on a 1.6 M-record store
# (measured on the demo: conflict/duplicate filters 0.9-1.6 s -> 0.2 ms, counts 2.1 -> 0.15 s).
LIST_INDEXES = {
    "records_live_title": "CREATE INDEX records_live_title ON records (form, title) WHERE deleted = 0",
    "records_conflicted": "CREATE INDEX records_conflicted ON records (form, title) "
    "WHERE conflict IS NOT NULL AND deleted = 0",
    "records_suspected": "CREATE INDEX records_suspected ON records (form, title) "
    "WHERE dup_state = 'suspected' AND deleted = 0",
}
MIGRATIONS.append(list(LIST_INDEXES.values()))
# sync: a record's pending ops in order (rewriting ops after a rejection or a merge)
MIGRATIONS.append(["CREATE INDEX outbox_record ON outbox (record_id, seq)"])

# sync: a clean synced record stores no base (it is its own state, ``records.stored_base``);
# a change that makes such a record dirty keeps its old state as the base. The title index
# goes: every list reads live records, through ``records_live_title``, and a pull of 100 000
# spent a fifth of its record inserts on the duplicate.
MIGRATIONS.append(
    [
        """CREATE TRIGGER records_keep_base AFTER UPDATE OF data, status, deleted, dirty ON records
           WHEN OLD.base IS NULL AND NEW.base IS NULL AND OLD.server_version IS NOT NULL
                AND OLD.dirty = 0 AND NEW.dirty = 1
           BEGIN
             UPDATE records SET base = CASE WHEN OLD.deleted
               THEN json_set(OLD.data, '$._status', OLD.status, '$._deleted', json('true'))
               ELSE json_set(OLD.data, '$._status', OLD.status) END
             WHERE rid = NEW.rid;
           END""",
        "DROP INDEX IF EXISTS records_form_title",
    ]
)

# sync: ops that an older platform set aside only because their coordinates carried the
# Gauss-Krüger projection the device stores next to lon/lat (422 bad_value, PROTOCOL.md §5.2
# now accepts that shape) go back to pending, so they are sent again. So do the deletes the
# device settled locally because those records' creates had been set aside: the creates will
# now reach the platform, and the deletes must follow them. An op whose value really is bad
# is simply set aside again by the next push.
_GK3_SET_ASIDE = """state = 'rejected'
    AND json_extract(result, '$.request_error') = 1
    AND json_extract(result, '$.reason.code') = 'bad_value'
    AND EXISTS (SELECT 1 FROM json_each(outbox.fields) AS f
                WHERE f.type = 'object' AND json_extract(f.value, '$.gk3') IS NOT NULL)"""
REQUEUE_GK3_OPS = [
    f"""UPDATE outbox SET state = 'pending', result = NULL
        WHERE state = 'rejected' AND json_extract(result, '$.local') = 1
          AND record_id IN (SELECT record_id FROM outbox WHERE {_GK3_SET_ASIDE})""",
    f"UPDATE outbox SET state = 'pending', result = NULL WHERE {_GK3_SET_ASIDE}",
    """UPDATE records SET dirty = 1 WHERE dirty = 0
        AND id IN (SELECT record_id FROM outbox WHERE state = 'pending')""",
]
MIGRATIONS.append(REQUEUE_GK3_OPS)

# tasks (PROTOCOL.md "Tasks"): what the platform issued, the items of this device's scope, and
# the outbox of this device's results (a row goes only when the platform has answered it).
# ``task_items.state`` is what the device shows: the platform's state with this device's
# pending results merged in (done wins over unable), so progress moves offline at once.
MIGRATIONS.append(
    [
        """CREATE TABLE tasks (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, title TEXT NOT NULL,
            instruction TEXT NOT NULL DEFAULT '', form TEXT NOT NULL, fields TEXT NOT NULL,
            due TEXT, priority INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,
            grids TEXT NOT NULL, issued_at TEXT NOT NULL, issued_by TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL, target INTEGER
        )""",
        """CREATE TABLE task_items (
            id TEXT PRIMARY KEY, task_id TEXT NOT NULL, record_id TEXT NOT NULL, grid TEXT,
            state TEXT NOT NULL CHECK (state IN ('open', 'done', 'unable')),
            reason TEXT, updated_at TEXT NOT NULL, updated_by TEXT
        )""",
        "CREATE INDEX task_items_task ON task_items (task_id, state)",
        "CREATE INDEX task_items_record ON task_items (record_id)",
        """CREATE TABLE task_results (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, op_id TEXT NOT NULL UNIQUE,
            item_id TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('done', 'unable')),
            reason TEXT, edited_at TEXT NOT NULL, author TEXT NOT NULL DEFAULT '',
            set_aside TEXT
        )""",
        "CREATE INDEX task_results_item ON task_results (item_id)",
    ]
)
# search: any run of an address's characters and its pinyin initials (FTS5 trigram); the
# store fills it for existing records on open (``places.backfill``: it needs the forms' roles).
MIGRATIONS.append(ADDRESS_INDEX)
# lists: names in pinyin order, addresses in room order (``records.sort_key``); the store keys
# existing records and moves the list indexes onto the key on open (``order.backfill``).
MIGRATIONS.append(SORT_KEY)

# write path (issue 17): ``people_pinyin`` goes. The duplicate guard reads people by birth date
# or by house and compares pinyin in Python; EXPLAIN QUERY PLAN of every statement the store's
# tests run (store, browse, dedup, search, transfer, replica, editor, lists) never names it,
# yet every insert of a person paid for it (1 % of an import's pages, 0.56 MB per 20 000).
UNUSED_INDEXES = ["DROP INDEX IF EXISTS people_pinyin"]
MIGRATIONS.append(UNUSED_INDEXES)

# lists: people's names by their surname's reading (曾 "zeng", not "ceng"); the store re-keys
# the affected names on open (``order.rekey_surnames``: it needs the forms' roles).
MIGRATIONS.append(SURNAME_ORDER)

# sync (issue 17): natural keys name their record by ``records.rid``, which a rename keeps
# (``UPDATE records SET id = ? WHERE rid = ?``): a push of 10 000 residents the platform
# already knows renamed each one's keys, a delete and an insert in two b-trees (9 % of the
# device's samples). Keys of records that are gone are dropped (deleted records hold none).
RECORD_KEYS_BY_RID = [
    """CREATE TABLE record_keys_new (
        form TEXT NOT NULL, key TEXT NOT NULL, rid INTEGER NOT NULL,
        PRIMARY KEY (form, key, rid)
    ) WITHOUT ROWID""",
    # both sides in id order (their covering indexes): 4.1 s for the 1.62 M keys of the city
    # demo, against 16.7 s read in key order and sorted
    """INSERT INTO record_keys_new (form, key, rid)
       SELECT k.form, k.key, r.rid FROM records r CROSS JOIN record_keys k ON k.record_id = r.id""",
    "DROP TABLE record_keys",
    "ALTER TABLE record_keys_new RENAME TO record_keys",
    "CREATE INDEX record_keys_rid ON record_keys (rid)",
]
MIGRATIONS.append(RECORD_KEYS_BY_RID)

# tasks: the platform's own state of an item this device has unanswered results for
# (``task_items.state`` shows it merged with them), so a result the platform refuses and that
# is set aside leaves the item as the platform has it. A row exists only while results wait;
# an item without one shows the platform's state as it is. ``IF NOT EXISTS``: steps after it
# may run again over a store that has it.
TASK_PLATFORM_STATES = [
    """CREATE TABLE IF NOT EXISTS task_platform_states (
        item_id TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT
    )"""
]
MIGRATIONS.append(TASK_PLATFORM_STATES)

# duplicate guard: a first-generation 15-digit ID number is keyed as its 18-digit form
# (``app.core.naturalkeys``); the store re-keys the records that hold 15 digits on open
# (``rekeys.rekey_fifteen``: the rule needs the forms' field types).
MIGRATIONS.append(ID15_KEYS)

# sync: an op whose record the platform merged into another (a review "same", a transfer)
# after the op was made is renamed with it on the device, but its ``base_version`` stays a
# version of the merged-away record: the op goes out naming that record (PROTOCOL.md §5.4
# merges it from that record's own snapshot). One row per such op (seq -> that record's id),
# so every path that rewrites an op's state or answer leaves it alone; completing an update
# after a rejection (its base becomes its record's own, ``Outbox.forget_base_record``) drops it.
OUTBOX_BASES = [
    """CREATE TABLE IF NOT EXISTS outbox_bases (
        seq INTEGER PRIMARY KEY, record_id TEXT NOT NULL
    )"""
]
MIGRATIONS.append(OUTBOX_BASES)

# sync: a worker's "different" answers wait here (the ``dedup_decisions`` row's seq) until the
# platform has answered them (PROTOCOL.md §9.2: they close its open duplicate review item).
# The answers given before this step go too: sending one twice changes nothing on the platform.
DEDUP_OUTBOX = [
    "CREATE TABLE IF NOT EXISTS dedup_outbox (seq INTEGER PRIMARY KEY)",
    "INSERT OR IGNORE INTO dedup_outbox (seq) "
    "SELECT seq FROM dedup_decisions WHERE decision = 'different'",
]
MIGRATIONS.append(DEDUP_OUTBOX)

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNewError(RuntimeError):
    """The store was written by a newer GridCollect."""


def _version(conn: sqlite3.Connection) -> int:
    """The store's schema version; SchemaTooNewError when a newer app wrote it."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"数据文件由更新版本的网格采集创建（结构版本 {current}），请升级程序。"
            f" / The data file was written by a newer GridCollect (schema {current}); upgrade."
        )
    return current


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the store up to SCHEMA_VERSION; returns the number of migrations applied.

    The connection must be in autocommit mode (``isolation_level=None``) so that each
    migration, DDL included, is one explicit transaction. The version is read again under
    the write lock: another opener of the file (the app and a scheduled sync) may have
    applied the step while this one waited for the lock, and a step run twice fails
    (``RECORD_KEYS_BY_RID`` reads a column its first run dropped).
    """
    current = _version(conn)
    applied = 0
    for version in range(current, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = _version(conn) > version
            if not done:
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        applied += not done
    return applied
