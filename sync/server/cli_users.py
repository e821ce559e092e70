"""``gridcollect server-admin`` commands about users: add, list, disable/enable, reset a
password, revoke tokens. ``add_user_commands`` adds them to the ``server-admin`` subparsers
(``cli.add_server_commands`` calls it); the helpers are ``cli``'s."""

from __future__ import annotations

import argparse
from typing import Any

from app.core.messages import lang_of
from sync.server.cli import EXIT_OK, _engine, _fail, _lang, _password


def add_user_commands(sub: Any) -> list[argparse.ArgumentParser]:
    """Add the user commands to ``server-admin``'s subparsers; returns their parsers."""
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

    sg = sub.add_parser(
        "set-grids",
        help="设置网格员的网格 / give a worker exactly these grids (password and logins kept)",
    )
    sg.add_argument("username")
    sg.add_argument("--grid", action="append", required=True, help="a grid (repeat for several)")
    sg.set_defaults(func=cmd_set_grids)

    dis = sub.add_parser(
        "disable-user", help="停用用户 / disable a user: every login ends, new ones are refused"
    )
    dis.add_argument("username")
    dis.set_defaults(func=cmd_disable_user, disabled=True)
    ena = sub.add_parser("enable-user", help="启用用户 / enable a disabled user again")
    ena.add_argument("username")
    ena.set_defaults(func=cmd_disable_user, disabled=False)

    rst = sub.add_parser(
        "reset-password",
        help="重设密码 / set a user's new password (role and grids kept); every login ends",
    )
    rst.add_argument("username")
    rst.add_argument(
        "--password-file",
        help="file whose first line is the password (default: $GRIDCOLLECT_PASSWORD, else prompt)",
    )
    rst.set_defaults(func=cmd_reset_password)

    rev = sub.add_parser("revoke-tokens", help="log a user out on every device (or one)")
    rev.add_argument("username")
    rev.add_argument("--device", help="only this device id")
    rev.set_defaults(func=cmd_revoke)
    return [user, dept, users, sg, dis, ena, rst, rev]


def cmd_add_user(args: argparse.Namespace) -> int:
    from sync.server import admin, passwords

    try:
        password = _password(args)
    except (OSError, IndexError):
        return _fail(args, "无法读取密码文件。", "cannot read the password file.")
    weak = passwords.problem(password, args.username)
    if weak:
        return _fail(args, *weak)
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


def cmd_add_department(args: argparse.Namespace) -> int:
    from sync.server import admin

    admin.put_department(_engine(args), args.code, args.name)
    return EXIT_OK


def cmd_list_users(args: argparse.Namespace) -> int:
    from sync.server import admin

    for username, role, community, grids in admin.list_users(_engine(args)):
        print(f"{username}\t{role}\t{community or '-'}\t{','.join(grids) or '-'}")
    return EXIT_OK


def cmd_set_grids(args: argparse.Namespace) -> int:
    """A worker's devices fetch the records of grids new to them on their next sync."""
    from sync.server import admin

    try:
        gained, lost = admin.set_user_grids(_engine(args), args.username, args.grid)
    except ValueError as exc:
        return _fail(args, f"无法设置网格：{exc}", f"cannot set the grids: {exc}")
    if lang_of(_lang(args)) == "en":
        print(f"{args.username}: {len(gained)} grid(s) added, {len(lost)} removed.")
    else:
        print(f"{args.username}：新增 {len(gained)} 个网格，移除 {len(lost)} 个。")
    return EXIT_OK


def cmd_disable_user(args: argparse.Namespace) -> int:
    from sync.server import admin

    en = lang_of(_lang(args)) == "en"
    if not admin.set_disabled(_engine(args), args.username, args.disabled):
        return _fail(args, f"没有用户 {args.username}。", f"no user {args.username}.")
    if args.disabled:
        print(
            f"user {args.username} disabled; every login ended."
            if en
            else f"已停用用户 {args.username}，其所有登录已注销。"
        )
    else:
        print(f"user {args.username} enabled." if en else f"已启用用户 {args.username}。")
    return EXIT_OK


def cmd_reset_password(args: argparse.Namespace) -> int:
    from sync.server import admin, passwords

    try:
        password = _password(args)
    except (OSError, IndexError):
        return _fail(args, "无法读取密码文件。", "cannot read the password file.")
    weak = passwords.problem(password, args.username)
    if weak:
        return _fail(args, *weak)
    count = admin.reset_password(_engine(args), args.username, password)
    if count is None:
        return _fail(args, f"没有用户 {args.username}。", f"no user {args.username}.")
    print(
        f"password of {args.username} reset; {count} token(s) revoked."
        if lang_of(_lang(args)) == "en"
        else f"已重设 {args.username} 的密码，注销 {count} 个登录。"
    )
    return EXIT_OK


def cmd_revoke(args: argparse.Namespace) -> int:
    from sync.server import admin

    count = admin.revoke_tokens(_engine(args), args.username, args.device)
    print(
        f"已注销 {count} 个登录。" if lang_of(_lang(args)) != "en" else f"revoked {count} token(s)."
    )
    return EXIT_OK
