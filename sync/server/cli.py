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
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.core.messages import lang_of

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


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A database that cannot be reached or used is a one-line message and exit 2."""

    def run(args: argparse.Namespace) -> int:
        from sqlalchemy.exc import SQLAlchemyError

        from sync.server.migrate import SchemaMismatch

        try:
            return func(args)
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
        help="only say whether an upgrade is pending (exit 1 if so, 0 if current)",
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

    user = sub.add_parser("add-user", help="create or replace a user")
    user.add_argument("username")
    user.add_argument(
        "--role", required=True, choices=["worker", "supervisor", "admin", "department"]
    )
    user.add_argument(
        "--grid", action="append", default=[], help="a worker's grid (repeat for several)"
    )
    user.add_argument("--community", help="a supervisor's community")
    user.add_argument("--department", help="a department account's department (add it first)")
    user.add_argument(
        "--password-file",
        help="file whose first line is the password (default: $GRIDCOLLECT_PASSWORD, else prompt)",
    )
    user.set_defaults(func=cmd_add_user)

    dept = sub.add_parser("add-department", help="create or rename a department (民政, 卫健…)")
    dept.add_argument("code")
    dept.add_argument("name")
    dept.set_defaults(func=cmd_add_department)

    users = sub.add_parser("list-users", help="users, roles and scopes")
    users.set_defaults(func=cmd_list_users)

    rev = sub.add_parser("revoke-tokens", help="log a user out on every device (or one)")
    rev.add_argument("username")
    rev.add_argument("--device", help="only this device id")
    rev.set_defaults(func=cmd_revoke)

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
    for action in (init, upg, com, grid, user, users, rev, load, aud, dem):
        _db_arg(action, again=True)
        action.set_defaults(func=_guarded(action.get_default("func")))


def _engine(args: argparse.Namespace) -> Any:
    from sync.server import db

    engine = db.make_engine(args.db)
    db.init_db(engine)
    return engine


def _lang(args: argparse.Namespace) -> str:
    return getattr(args, "lang", None) or "zh"


def _fail(args: argparse.Namespace, zh: str, en: str) -> int:
    print(en if lang_of(_lang(args)) == "en" else zh, file=sys.stderr)
    return EXIT_UNUSABLE


def cmd_server(args: argparse.Namespace) -> int:
    import uvicorn

    from sync.server.app import create_app

    secret = (
        Path(args.secret_file).read_text(encoding="utf-8").strip() if args.secret_file else None
    )
    app = create_app(args.db, secret=secret)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    _engine(args)
    print("数据库已就绪。" if lang_of(_lang(args)) != "en" else "database ready.")
    return EXIT_OK


def cmd_upgrade(args: argparse.Namespace) -> int:
    from sync.server import db, migrate

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


def cmd_add_department(args: argparse.Namespace) -> int:
    from sync.server import admin

    admin.put_department(_engine(args), args.code, args.name)
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


def cmd_add_user(args: argparse.Namespace) -> int:
    from sync.server import admin

    try:
        password = _password(args)
    except (OSError, IndexError):
        return _fail(args, "无法读取密码文件。", "cannot read the password file.")
    if len(password) < 8:
        return _fail(args, "密码至少 8 个字符。", "the password needs at least 8 characters.")
    try:
        admin.put_user(
            _engine(args),
            args.username,
            password,
            args.role,
            community=args.community,
            grids=args.grid,
            department=args.department,
        )
    except ValueError as exc:
        return _fail(args, f"无法创建用户：{exc}", f"cannot create the user: {exc}")
    return EXIT_OK


def cmd_list_users(args: argparse.Namespace) -> int:
    from sync.server import admin

    for username, role, community, grids in admin.list_users(_engine(args)):
        print(f"{username}\t{role}\t{community or '-'}\t{','.join(grids) or '-'}")
    return EXIT_OK


def cmd_revoke(args: argparse.Namespace) -> int:
    from sync.server import admin

    count = admin.revoke_tokens(_engine(args), args.username, args.device)
    print(
        f"已注销 {count} 个登录。" if lang_of(_lang(args)) != "en" else f"revoked {count} token(s)."
    )
    return EXIT_OK


def cmd_load_base(args: argparse.Namespace) -> int:
    from app.core.forms import UnknownFormError, load_formset
    from app.core.tabular import TableError
    from sync.server import admin
    from sync.server.service import Service

    formset = load_formset()
    service = Service(_engine(args), formset)
    try:
        report = admin.load_base(service, args.form, args.file, lang=_lang(args))
    except UnknownFormError:
        return _fail(args, f"没有表单 {args.form}。", f"no form {args.form}.")
    except TableError as exc:
        return _fail(args, exc.message("zh"), exc.message("en"))
    except ValueError as exc:
        return _fail(
            args, f"文件的列不符合表单：{exc}", f"the file's columns do not fit the form: {exc}"
        )
    summary = {
        "rows": report.rows,
        "created": report.created,
        "merged": report.merged,
        "unchanged": report.unchanged,
        "drafts": report.drafts,
        "rejected": report.rejected,
    }
    if args.json:
        print(json.dumps({**summary, "problems": report.problems}, ensure_ascii=False))
    else:
        for row, text in report.problems:
            print(f"{row}: {text}")
        print(" ".join(f"{k}={v}" for k, v in summary.items()))
    return EXIT_PARTIAL if report.drafts or report.rejected else EXIT_OK


def cmd_load_demo(args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from app.core.forms import load_formset
    from sync.server import db
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
    if len(password) < 8:
        return _fail(args, "密码至少 8 个字符。", "the password needs at least 8 characters.")
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
    parser.add_argument("--lang", choices=["zh", "en"])
    add_server_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
