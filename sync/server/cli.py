"""``gridcollect server`` and ``gridcollect server-admin``: run and administer the platform.

``add_server_commands(subparsers)`` adds both to the app's argparse tree; every command's
``func`` takes the parsed args and returns an exit code (0 ok, 1 partly done, 2 unusable).
``python -m sync.server.cli ...`` runs the same commands without the desktop app's CLI.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import ssl
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.core.messages import command_lang, lang_of

DEFAULT_DB = "sqlite:///gridcollect-platform.db"
EXIT_OK, EXIT_PARTIAL, EXIT_UNUSABLE = 0, 1, 2


def _db_arg(parser: argparse.ArgumentParser, *, again: bool = False) -> None:
    """``--db``; ``again``: also accepted after an admin action (``add-user --db ...``)."""
    parser.add_argument(
        "--db",
        default=argparse.SUPPRESS if again else os.environ.get("GRIDCOLLECT_SERVER_DB", DEFAULT_DB),
        help="sqlite:///path.db or postgresql://user:pass@host/dbname "
        f"(default: $GRIDCOLLECT_SERVER_DB or {DEFAULT_DB})",
    )


def _sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names, made absolute against the current directory (as
    SQLite resolves it); None for PostgreSQL, an in-memory database or a ``file:`` URI."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if parsed.query.get("uri"):
        return None
    return Path(database).absolute()


def _missing_dir(args: argparse.Namespace) -> int | None:
    """Exit 2 with a line naming the path if a SQLite file's directory is not there: SQLite
    cannot create a directory, and said only "unable to open database file"."""
    db = getattr(args, "db", None)
    path = _sqlite_file(db) if db else None
    if path is None or path.parent.is_dir():
        return None
    return _fail(
        args,
        f"数据库文件 {path} 所在的目录不存在：请检查 --db 路径。",
        f"the directory of the database file {path} does not exist; check the --db path.",
    )


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A database that cannot be reached or used is a one-line message and exit 2."""

    def run(args: argparse.Namespace) -> int:
        from sqlalchemy.exc import SQLAlchemyError

        from sync.server.migrate import SchemaMismatch

        try:
            missing = _missing_dir(args)  # inside: a --db that is no URL is an ArgumentError
            return func(args) if missing is None else missing
        except SchemaMismatch as exc:
            return _fail(args, exc.message("zh"), exc.message("en"))
        except SQLAlchemyError as exc:
            kind = type(exc).__name__
            return _fail(
                args,
                f"无法使用数据库（{kind}）：请检查 --db 地址、数据库是否运行及账号权限。",
                f"cannot use the database ({kind}): check the --db URL, that the server runs, "
                "and the account's rights.",
            )

    run.__doc__ = func.__doc__
    return run


def add_server_commands(subparsers: Any) -> None:
    """Add ``server`` and ``server-admin`` to an argparse subparsers object."""
    from sync.server.cli_users import add_user_commands

    srv = subparsers.add_parser(
        "server",
        help="平台服务 / run the platform sync server",
        description="Run the platform server (FastAPI on uvicorn). An empty database gets the "
        "newest schema; a database behind or ahead of this program is refused (run "
        "server-admin upgrade).",
    )
    _db_arg(srv)
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    srv.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    srv.add_argument(
        "--secret-file", help="file holding the token-signing secret (default: kept in the db)"
    )
    srv.add_argument(
        "--token-days",
        type=_days,
        default=os.environ.get("GRIDCOLLECT_TOKEN_DAYS", "30"),
        help="days a login stays valid (1-365; default: $GRIDCOLLECT_TOKEN_DAYS or 30)",
    )
    srv.add_argument(
        "--certfile", help="TLS certificate (PEM, with its chain): serve https instead of http"
    )
    srv.add_argument("--keyfile", help="the certificate's private key (PEM)")
    srv.add_argument(
        "--pool-size",
        type=int,
        default=8,
        help="PostgreSQL connections kept open by this process (default 8)",
    )
    srv.add_argument(
        "--pool-overflow",
        type=int,
        default=2,
        help="extra connections at peaks (default 2); pool size + overflow requests run at once",
    )
    srv.add_argument(
        "--no-prepared-statements",
        action="store_true",
        help="prepare no statement on PostgreSQL (behind a PgBouncer in transaction mode older "
        "than 1.21 or with max_prepared_statements = 0)",
    )
    srv.add_argument(
        "--queue-wait",
        type=float,
        default=10.0,
        help="seconds a request waits for a turn before 503 + Retry-After (default 10)",
    )
    srv.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one log line per request (default on; --no-access-log saves its CPU on a busy night)",
    )
    srv.set_defaults(func=_guarded(cmd_server))

    adm = subparsers.add_parser(
        "server-admin",
        help="平台管理 / administer the platform: grids, users, tokens, base data",
    )
    _db_arg(adm)
    sub = adm.add_subparsers(dest="admin_command", required=True)
    init = sub.add_parser("init", help="create the newest schema in an empty database")
    init.set_defaults(func=cmd_init)

    upg = sub.add_parser(
        "upgrade",
        help="升级数据库结构 / upgrade the database schema in place (back it up first)",
        description="Runs every pending schema revision in one transaction: a failed or "
        "interrupted upgrade leaves the database as it was. With several server processes: stop "
        "them all, upgrade once, start them again.",
    )
    upg.add_argument(
        "--check",
        action="store_true",
        help="only say whether an upgrade is pending (exit 1 if so, 0 if current, 2 if no "
        "database is at a sqlite:/// path: a check never creates one)",
    )
    upg.set_defaults(func=cmd_upgrade)

    com = sub.add_parser("add-community", help="create or rename a community (社区)")
    com.add_argument("code")
    com.add_argument("name")
    com.set_defaults(func=cmd_add_community)

    grid = sub.add_parser("add-grid", help="create or update a grid (网格)")
    grid.add_argument("code")
    grid.add_argument("name")
    grid.add_argument("--community", required=True, help="community code (create it first)")
    grid.add_argument("--level", default="1")
    grid.set_defaults(func=cmd_add_grid)

    user_parsers = add_user_commands(sub)

    load = sub.add_parser(
        "load-base",
        help="load base data (a city-mirror CSV/XLSX) so devices pull records the platform knows",
        description="Rows are matched by the form's natural keys: a known person is updated, not "
        "added twice; loading the same file again changes nothing. Rows failing validation "
        "are loaded as drafts and listed. Exit 0: all complete; 1: some drafts or rejected; "
        "2: the file is unusable.",
    )
    load.add_argument("--form", default="resident", help="form id (default resident)")
    load.add_argument("file")
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    load.set_defaults(func=cmd_load_base)

    idx = sub.add_parser(
        "index-search",
        help="检索索引 / give records pushes created their console search terms now",
        description="A push only notes the records it creates; the first console search of a "
        "grid makes their search terms. Run this after the nightly sync window (cron) so that "
        "no search waits for a night's records.",
    )
    idx.set_defaults(func=cmd_index_search)

    aud = sub.add_parser(
        "audit",
        help="操作日志 / the audit log: who revealed, resolved, decided or changed what",
        description="Oldest first. Rows name record ids, users, devices, grids and field names, "
        "never values.",
    )
    aud.add_argument("--since", help="from this date or time on (YYYY-MM-DD or ISO 8601, UTC)")
    aud.add_argument("--json", action="store_true", help="print JSON lines")
    aud.set_defaults(func=cmd_audit)

    dem = sub.add_parser(
        "load-demo",
        help="演示平台 / load the fictional demo community into an empty platform (for the console)",
        description="Users: admin, sup-<community> per community, w-<grid> per grid, all with "
        "one password (--password-file, else $GRIDCOLLECT_PASSWORD, else prompt).",
    )
    dem.add_argument("--size", type=int, default=600, help="about this many records (default 600)")
    dem.add_argument("--password-file")
    dem.set_defaults(func=cmd_load_demo)
    from sync.server.taskcli import add_task_commands

    tasks = add_task_commands(sub)
    for action in (init, upg, com, grid, *user_parsers, load, idx, aud, dem, *tasks):
        _db_arg(action, again=True)
        action.set_defaults(func=_guarded(action.get_default("func")))


def _engine(args: argparse.Namespace) -> Any:
    from sync.server import db

    engine = db.make_engine(args.db)
    db.init_db(engine)
    return engine


def _lang(args: argparse.Namespace) -> str:
    return command_lang(getattr(args, "lang", None))


def _fail(args: argparse.Namespace, zh: str, en: str) -> int:
    print(en if lang_of(_lang(args)) == "en" else zh, file=sys.stderr)
    return EXIT_UNUSABLE


def _days(text: str) -> int:
    """``--token-days``: a whole number of days from 1 to 365."""
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= 365:
        raise argparse.ArgumentTypeError(
            f"须为 1 到 365 之间的整数 / must be a whole number from 1 to 365: {text!r}"
        )
    return days


def log_config() -> dict[str, Any]:
    """Uvicorn's logging, plus the platform's own loggers (``sync.*``) at INFO through the same
    handler: without them a server dropped its INFO lines (a push run again after a race) and
    printed its warnings bare. Their messages carry no personal data (DESIGN: logs)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["sync"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    # its lines: cheaper, and without the query's values (which may name a searched person)
    config["formatters"]["access"]["()"] = "sync.server.accesslog.AccessFormatter"
    return config


def cmd_server(args: argparse.Namespace) -> int:
    import uvicorn

    from sync import heap
    from sync.server import db
    from sync.server.app import create_app

    if bool(args.certfile) != bool(args.keyfile):
        return _fail(
            args,
            "--certfile 和 --keyfile 须同时给出。",
            "give both --certfile and --keyfile (or neither).",
        )
    for path in filter(None, (args.certfile, args.keyfile)):
        if not Path(path).is_file():
            return _fail(args, f"找不到文件：{path}", f"no such file: {path}")
    secret = (
        Path(args.secret_file).read_text(encoding="utf-8").strip() if args.secret_file else None
    )
    pool = db.PoolSettings(
        size=max(1, args.pool_size),
        overflow=max(0, args.pool_overflow),
        prepare=not args.no_prepared_statements,
    )
    app = create_app(
        args.db,
        secret=secret,
        token_days=args.token_days,
        pool=pool,
        queue_wait=args.queue_wait,
    )
    heap.settle()  # the app's long-lived objects out of the collector's way
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level="info",
            log_config=log_config(),
            access_log=args.access_log,
            ssl_certfile=args.certfile,
            ssl_keyfile=args.keyfile,
        )
    except ssl.SSLError as exc:
        return _fail(
            args,
            f"无法使用证书或私钥（{exc.reason}）：请检查它们是否为 PEM 格式且互相匹配。",
            f"cannot use the certificate or key ({exc.reason}): check they are PEM and match.",
        )
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    _engine(args)
    print("数据库已就绪。" if lang_of(_lang(args)) != "en" else "database ready.")
    return EXIT_OK


def cmd_upgrade(args: argparse.Namespace) -> int:
    from sync.server import db, migrate

    if args.check:
        path = _sqlite_file(args.db)
        if path is not None and not path.is_file():  # SQLite would create it, empty
            return _fail(
                args,
                f"找不到数据库文件 {path}（检查不会新建数据库）：请检查 --db 路径。",
                f"no database file at {path} (a check never creates one); check the --db path.",
            )
    engine = db.make_engine(args.db)
    try:
        now = migrate.state(engine)
        if not now.known:
            raise migrate.SchemaMismatch(now.current, now.head, ahead=True)
        if args.check:
            return _check_report(args, now)
        before, after = migrate.upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        print(
            f"数据库结构已是最新（{after}）。"
            if lang_of(_lang(args)) != "en"
            else f"schema is current ({after})."
        )
    else:
        old = before or "空库"
        print(
            f"数据库结构已从 {old} 升级到 {after}。"
            if lang_of(_lang(args)) != "en"
            else f"schema upgraded from {before or 'empty'} to {after}."
        )
    return EXIT_OK


def _check_report(args: argparse.Namespace, now: Any) -> int:
    """``upgrade --check``: one line, exit 1 when an upgrade is pending."""
    en = lang_of(_lang(args)) == "en"
    if not now.pending:
        print(f"schema is current ({now.head})." if en else f"数据库结构已是最新（{now.head}）。")
        return EXIT_OK
    have = now.current or ("empty" if en else "空库")
    print(
        f"upgrade pending: {have} -> {now.head}; run: gridcollect server-admin upgrade"
        if en
        else f"需要升级：{have} → {now.head}；请运行 gridcollect server-admin upgrade"
    )
    return EXIT_PARTIAL


def cmd_add_community(args: argparse.Namespace) -> int:
    from sync.server import admin

    admin.put_community(_engine(args), args.code, args.name)
    return EXIT_OK


def cmd_add_grid(args: argparse.Namespace) -> int:
    from sync.server import admin

    try:
        admin.put_grid(_engine(args), args.code, args.name, args.community, args.level)
    except ValueError:
        return _fail(
            args,
            f"社区 {args.community} 不存在，请先添加社区。",
            f"community {args.community} does not exist; add it first.",
        )
    return EXIT_OK


def _password(args: argparse.Namespace) -> str:
    if args.password_file:
        return Path(args.password_file).read_text(encoding="utf-8").splitlines()[0]
    env = os.environ.get("GRIDCOLLECT_PASSWORD")
    return env if env else getpass.getpass("password: ")


def cmd_load_base(args: argparse.Namespace) -> int:
    from app.core.forms import UnknownFormError, load_formset
    from app.core.tabular import TableError
    from sync.server import admin
    from sync.server.service import Service

    formset = load_formset()
    service = Service(_engine(args), formset)
    problems = _Problems(args.json)
    try:
        report = admin.load_base(
            service, args.form, args.file, lang=_lang(args), on_problem=problems
        )
    except UnknownFormError:
        return _fail(args, f"没有表单 {args.form}。", f"no form {args.form}.")
    except TableError as exc:
        return _fail(args, exc.message("zh"), exc.message("en"))
    except ValueError as exc:
        return _fail(
            args, f"文件的列不符合表单：{exc}", f"the file's columns do not fit the form: {exc}"
        )
    problems.end(
        {
            "rows": report.rows,
            "created": report.created,
            "merged": report.merged,
            "unchanged": report.unchanged,
            "drafts": report.drafts,
            "rejected": report.rejected,
        }
    )
    return EXIT_PARTIAL if report.drafts or report.rejected else EXIT_OK


def cmd_index_search(args: argparse.Namespace) -> int:
    """Every pending record's search terms and their words' terms, off the search path."""
    from app.core.forms import load_formset
    from sync.server import termrows

    engine = _engine(args)
    records = termrows.index_pending(engine, load_formset(), None)
    words = termrows.expand(engine, None)
    print(
        f"检索索引：{records} 条记录，{words} 个词。/ search index: {records} records, {words} words."
    )
    return EXIT_OK


class _Problems:
    """A load's problems printed as they come (a line each, or the items of the JSON report's
    ``problems`` list, the summary closing the same object): a city's mirror may have one on
    every row, and none is kept in memory."""

    def __init__(self, as_json: bool) -> None:
        self.as_json, self.count = as_json, 0

    def __call__(self, row: int, text: str) -> None:
        if self.as_json:
            lead = '{"problems": [' if self.count == 0 else ", "
            print(lead + json.dumps([row, text], ensure_ascii=False))
        else:
            print(f"{row}: {text}")
        self.count += 1

    def end(self, summary: dict[str, int]) -> None:
        if not self.as_json:
            print(" ".join(f"{k}={v}" for k, v in summary.items()))
            return
        lead = '{"problems": [' if self.count == 0 else ""
        print(lead + "], " + json.dumps(summary, ensure_ascii=False)[1:])


def cmd_load_demo(args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from app.core.forms import load_formset
    from sync.server import db, passwords
    from sync.server.demo import load_demo
    from sync.server.service import Service

    engine = _engine(args)
    with db.read(engine) as conn:
        if conn.execute(select(func.count()).select_from(db.records)).scalar_one():
            return _fail(
                args,
                "平台已有记录，演示数据只能载入空的平台。",
                "the platform already holds records; load the demo into an empty one.",
            )
    password = _password(args)
    weak = passwords.problem(password)
    if weak:
        return _fail(args, *weak)
    done = load_demo(Service(engine, load_formset()), password, size=max(args.size, 1))
    en = lang_of(_lang(args)) == "en"
    print(
        f"loaded {done.records} records; users: {', '.join(done.users)}"
        if en
        else f"已载入 {done.records} 条记录；用户：{', '.join(done.users)}"
    )
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from datetime import datetime

    from sync.server.console import audit

    since = args.since
    if since:
        try:
            datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            return _fail(
                args,
                "--since 应为日期或时间，如 2026-01-31 或 2026-01-31T08:00:00Z。",
                "--since must be a date or time, e.g. 2026-01-31 or 2026-01-31T08:00:00Z.",
            )
    for row in reversed(audit.rows(_engine(args), since=since, limit=10**9)):
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            fields = ",".join(row["fields"]) or "-"
            print(
                f"{row['at']}\t{row['username']}\t{row['ip'] or '-'}\t{row['action']}\t"
                f"{row['target'] or '-'}\t{fields}"
            )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sync.server.cli server|server-admin ...``."""
    parser = argparse.ArgumentParser(prog="gridcollect")
    parser.add_argument(
        "--lang", choices=["zh", "en"], help="language (default $GRIDCOLLECT_LANG, else zh)"
    )
    add_server_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
