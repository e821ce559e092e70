"""``gridcollect server-admin task create|list|show|assign|cancel``: tasks for offices that
script.

The commands act as a named supervisor or admin (``--as``), with that user's scope, through the
same functions as the console (``sync.server.tasks.actions``), and leave the same audit rows
(address ``cli``). A task is given as ``--filter TEXT`` plus options, or as a JSON file in the
shape of ``POST /v1/console/tasks`` (PROTOCOL.md §13).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.core.messages import command_lang, lang_of

EXIT_OK, EXIT_UNUSABLE = 0, 2


def add_task_commands(sub: Any) -> list[argparse.ArgumentParser]:
    """Add ``task`` and its subcommands; returns the parsers that take ``--db``."""
    task = sub.add_parser(
        "task", help="任务 / issue, list, show and cancel tasks (PROTOCOL.md §13)"
    )
    tsub = task.add_subparsers(dest="task_command", required=True)
    make = tsub.add_parser(
        "create",
        help="issue a task",
        description="Filter syntax: PROTOCOL.md §13.4, e.g. --filter '人口类型 = 流动人口 且 "
        "联系方式 为空'. --json FILE takes the whole task as JSON (options given too override it).",
    )
    make.add_argument("--json-file", "--spec", dest="spec", help="the task as a JSON file")
    make.add_argument("--title")
    make.add_argument("--form", help="form id (default resident)")
    make.add_argument("--kind", choices=["verify", "collect"])
    make.add_argument("--field", action="append", dest="fields", help="a field to check (repeat)")
    make.add_argument("--filter", help="which records (the filter syntax)")
    make.add_argument("--grid", action="append", dest="grids", help="a grid (repeat)")
    make.add_argument(
        "--assignee",
        action="append",
        dest="assignees",
        metavar="NAME",
        help="a worker of the task's grids it goes to (repeat; none: every worker of its grids)",
    )
    make.add_argument("--due", help="YYYY-MM-DD")
    make.add_argument("--priority", type=int, choices=[0, 1, 2])
    make.add_argument("--instruction")
    make.add_argument("--ids-csv", help="a CSV whose first column holds ID numbers or record ids")
    make.add_argument("--preview", action="store_true", help="count items per grid, write nothing")
    lst = tsub.add_parser("list", help="tasks in the user's scope")
    lst.add_argument("--state", choices=["open", "closed", "cancelled"])
    show = tsub.add_parser("show", help="a task's progress per grid and worker")
    show.add_argument("task_id")
    named = tsub.add_parser(
        "assign",
        help="name the workers an open task goes to (none: every worker of its grids)",
        description="Workers no longer named have the task taken off their devices at their "
        "next pull (PROTOCOL.md §13.2).",
    )
    named.add_argument("task_id")
    named.add_argument(
        "--assignee",
        action="append",
        dest="assignees",
        default=[],
        metavar="NAME",
        help="a worker of the task's grids (repeat; none: every worker of its grids)",
    )
    cancel = tsub.add_parser("cancel", help="cancel a task (devices get it on their next pull)")
    cancel.add_argument("task_id")
    parsers = [make, lst, show, named, cancel]
    funcs = (cmd_create, cmd_list, cmd_show, cmd_assign, cmd_cancel)
    for parser, func in zip(parsers, funcs, strict=True):
        parser.add_argument("--as", dest="as_user", required=True, help="a supervisor or admin")
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.set_defaults(func=func)
    return parsers


def _say(args: argparse.Namespace, zh: str, en: str, *, err: bool = False) -> None:
    text = en if lang_of(command_lang(getattr(args, "lang", None))) == "en" else zh
    print(text, file=sys.stderr if err else sys.stdout)


def _actor(args: argparse.Namespace, engine: Any) -> Any:
    from sqlalchemy import select

    from sync.server import auth, db
    from sync.server.console.audit import Actor

    with db.read(engine) as conn:
        row = conn.execute(
            select(db.users.c.role, db.users.c.community, db.users.c.disabled).where(
                db.users.c.username == args.as_user
            )
        ).first()
        if row is None or row.disabled:
            return None
        grids = auth.scope_of(conn, args.as_user, row.role, row.community)
    return Actor(auth.User(args.as_user, row.role, row.community, grids, "cli"), "cli")


def _run(args: argparse.Namespace, work: Any) -> int:
    """Open the database, find the acting user, run ``work(engine, actor)`` and print."""
    from sync.server import db
    from sync.server.errors import ApiError, message

    engine = db.make_engine(args.db)
    db.init_db(engine)
    actor = _actor(args, engine)
    if actor is None:
        _say(args, f"没有可用的用户 {args.as_user}。", f"no usable user {args.as_user}.", err=True)
        return EXIT_UNUSABLE
    try:
        out = work(engine, actor)
    except ApiError as exc:
        zh, en = message(exc.code, **exc.params)
        _say(args, f"{zh}（{exc.code}）", f"{en} ({exc.code})", err=True)
        return EXIT_UNUSABLE
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        _print(out)
    return EXIT_OK


def _print(out: Any) -> None:
    if isinstance(out, dict) and "tasks" in out:
        for t in out["tasks"]:
            c = t["counts"]
            print(
                f"{t['id']}\t{t['state']}\t{t['due'] or '-'}\tP{t['priority']}\t"
                f"{c['open']}/{c['done']}/{c['unable']}\t{t['title']}"
            )
        return
    if isinstance(out, dict) and "task" in out:
        t, c = out["task"], out["counts"]
        print(f"{t['id']}\t{t['state']}\t{t['title']}")
        print(f"assignees {', '.join(t['assignees']) or '(every worker of its grids)'}")
        print(f"open {c['open']}\tdone {c['done']}\tunable {c['unable']}")
        for g in out["grids"]:
            print(f"  {g['grid']}\t{g['open']}/{g['done']}/{g['unable']}")
        return
    if isinstance(out, dict) and "total" in out:
        print(f"total {out['total']}")
        for g in out["grids"]:
            print(f"  {g['grid']}\t{g['count']}")


def _ids_from_csv(path: str) -> tuple[list[str], list[str]]:
    """First-column values: UUIDs are record ids, anything else an ID number."""
    import csv

    from app.core.ids import is_uuid

    ids: list[str] = []
    numbers: list[str] = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for row in csv.reader(f):
            value = (row[0] if row else "").strip()
            if not value or value.lower() in ("id", "id_number", "record_id", "证件号码"):
                continue
            (ids if is_uuid(value.lower()) else numbers).append(value)
    return ids, numbers


def _spec(args: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if args.spec:
        spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))
    for key in (
        "title",
        "form",
        "kind",
        "fields",
        "filter",
        "grids",
        "due",
        "priority",
        "assignees",
    ):
        value = getattr(args, key)
        if value is not None:
            spec[key] = value
    if args.instruction is not None:
        spec["instruction"] = args.instruction
    if args.ids_csv:
        spec["record_ids"], spec["id_numbers"] = _ids_from_csv(args.ids_csv)
    spec.setdefault("form", "resident")
    if args.preview:
        spec.setdefault("title", "preview")  # a preview writes nothing: no title needed
    return spec


def cmd_create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from sync.server.tasks import actions
    from sync.server.tasks.spec import TaskSpec

    try:
        spec = TaskSpec.model_validate(_spec(args))
    except (ValidationError, OSError, ValueError) as exc:
        detail = str(exc).splitlines()[0:3]
        _say(
            args,
            f"任务内容有误：{' '.join(detail)}",
            f"the task is not right: {' '.join(detail)}",
            err=True,
        )
        return EXIT_UNUSABLE

    def work(engine: Any, actor: Any) -> Any:
        from app.core.forms import load_formset

        forms = load_formset()
        if args.preview:
            return actions.preview(engine, forms, actor, spec)
        return actions.create(engine, forms, actor, spec)

    return _run(args, work)


def cmd_list(args: argparse.Namespace) -> int:
    from sync.server import db
    from sync.server.tasks import store

    def work(engine: Any, actor: Any) -> Any:
        with db.read(engine) as conn:
            return {"tasks": store.listing(conn, actor.user, args.state)}

    return _run(args, work)


def cmd_show(args: argparse.Namespace) -> int:
    from sync.server.tasks import actions

    return _run(args, lambda engine, actor: actions.shown(engine, actor, args.task_id))


def cmd_assign(args: argparse.Namespace) -> int:
    """The API's PATCH with ``assignees`` only: the same check, numbering and audit row."""
    from sync.server.tasks import actions, assign

    def work(engine: Any, actor: Any) -> Any:
        from app.core.forms import load_formset

        change = assign.naming(args.assignees)
        return actions.edit(engine, load_formset(), actor, args.task_id, change)

    return _run(args, work)


def cmd_cancel(args: argparse.Namespace) -> int:
    from sync.server.tasks import actions

    return _run(
        args, lambda engine, actor: actions.finish(engine, actor, args.task_id, "cancelled")
    )
