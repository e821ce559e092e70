"""``gridcollect print`` and ``gridcollect labels``: record sheets and door plates to PDF.

Wired into ``app.cli.build_parser`` with ``add_print_commands(sub)``. Qt is imported only when a
command runs, and a headless ``QGuiApplication`` is made then (no display needed). Progress goes
to stderr for batches of ``PROGRESS_FROM`` records or more (a ``\\r`` counter on a terminal,
a line per tenth otherwise); ``--quiet`` silences it. Exit codes: 0 written, 2 nothing usable
(no records matched, an unknown id or stock, no Chinese font, the file cannot be written).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from app.core.messages import command_lang, pick

EXIT_OK, EXIT_UNUSABLE = 0, 2
PROGRESS_FROM = 50
log = logging.getLogger("gridcollect.printing")


def _lang(args: argparse.Namespace) -> str:
    return command_lang(getattr(args, "lang", None))


def progress_printer(
    args: argparse.Namespace, total: int, what: tuple[str, str]
) -> Callable[[int, int], None] | None:
    """A stderr progress callback for big batches, or None."""
    if getattr(args, "quiet", False) or total < PROGRESS_FROM:
        return None
    label = pick(_lang(args), *what)
    tty = sys.stderr.isatty()
    shown = {"tenth": -1}

    def show(done: int, all_: int) -> None:
        if tty:
            end = "\n" if done >= all_ else ""
            print(f"\r{label} {done}/{all_}", end=end, file=sys.stderr, flush=True)
            return
        tenth = done * 10 // max(all_, 1)
        if tenth != shown["tenth"]:
            shown["tenth"] = tenth
            print(f"{label} {done}/{all_}", file=sys.stderr, flush=True)

    return show


def _fail(args: argparse.Namespace, exc: Any) -> int:
    print(exc.message(_lang(args)), file=sys.stderr)
    return EXIT_UNUSABLE


def _write_error(args: argparse.Namespace, out: str, exc: OSError) -> int:
    print(
        pick(
            _lang(args),
            f"无法写入 {out}（{exc.strerror or exc}）。请检查路径和权限。",
            f"cannot write {out} ({exc.strerror or exc}); check the path and permissions.",
        ),
        file=sys.stderr,
    )
    return EXIT_UNUSABLE


def _run(args: argparse.Namespace, job: Callable[[], int]) -> int:
    """Run a print job, turning the known refusals into messages and exit code 2."""
    from app.core.forms import UnknownFormError
    from app.printing.fonts import NoCjkFontError
    from app.printing.labels import UnknownStockError
    from app.printing.select import SelectionError

    # Printing needs fonts, not a screen: offscreen works with or without a display.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        return job()
    except (SelectionError, NoCjkFontError, UnknownStockError) as exc:
        return _fail(args, exc)
    except UnknownFormError:
        print(
            pick(_lang(args), f"未知表单“{args.form}”。", f'unknown form "{args.form}".'),
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
    except OSError as exc:
        return _write_error(args, args.out, exc)


def _check_out(args: argparse.Namespace) -> None:
    parent = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(parent):
        raise FileNotFoundError(2, "no such directory", parent)


def cmd_print(args: argparse.Namespace) -> int:
    """Record sheets of a selection, a house, a building or a grid into one PDF."""
    if not (args.ids or args.house or args.building or args.grid or args.all):
        print(
            pick(
                _lang(args),
                "请用 --ids、--house、--building（配合 --grid）、--grid 或 --all 选择记录。",
                "choose records with --ids, --house, --building (with --grid), --grid or --all.",
            ),
            file=sys.stderr,
        )
        return EXIT_UNUSABLE

    def job() -> int:
        from app.core.store import Store
        from app.printing.fonts import cjk_family
        from app.printing.select import select_records
        from app.printing.sheets import write_sheets_pdf

        _check_out(args)
        cjk_family()  # refuse before any work when there is no Chinese font
        store = Store.open(args.data_dir, passphrase_file=getattr(args, "passphrase_file", None))
        try:
            ids = select_records(
                store,
                args.form,
                ids=args.ids or (),
                house=args.house,
                building=args.building,
                grid=args.grid,
                everything=args.all,
            )
            show = progress_printer(args, len(ids), ("排版", "sheets"))
            pages = write_sheets_pdf(store, ids, args.out, lang=_lang(args), progress=show)
        finally:
            store.close()
        log.info("print form=%s records=%s pages=%s", args.form, len(ids), pages)
        print(
            pick(
                _lang(args),
                f"已生成 {args.out}：{len(ids)} 条记录，共 {pages} 页。",
                f"wrote {args.out}: {len(ids)} records, {pages} pages.",
            )
        )
        return EXIT_OK

    return _run(args, job)


def cmd_labels(args: argparse.Namespace) -> int:
    """Door-plate labels (QR + address) of houses into one PDF on a label stock."""

    if not (args.ids or args.grid or args.building or args.all):
        print(
            pick(
                _lang(args),
                "请用 --grid、--building、--ids 或 --all 选择房屋。",
                "choose houses with --grid, --building, --ids or --all.",
            ),
            file=sys.stderr,
        )
        return EXIT_UNUSABLE

    def job() -> int:
        from app.core.store import Store
        from app.printing.fonts import cjk_family
        from app.printing.labels import stock, write_labels_pdf
        from app.printing.select import select_houses

        _check_out(args)
        chosen = stock(args.stock)
        cjk_family()
        store = Store.open(args.data_dir, passphrase_file=getattr(args, "passphrase_file", None))
        try:
            ids = select_houses(
                store,
                ids=args.ids or (),
                grid=args.grid,
                building=args.building,
                everything=args.all,
            )
            show = progress_printer(args, len(ids), ("标签", "labels"))
            pages = write_labels_pdf(
                store,
                ids,
                args.out,
                stock_id=chosen.id,
                skip=args.skip,
                lang=_lang(args),
                progress=show,
            )
        finally:
            store.close()
        log.info("labels houses=%s stock=%s pages=%s", len(ids), chosen.id, pages)
        print(
            pick(
                _lang(args),
                f"已生成 {args.out}：{len(ids)} 枚标签（{chosen.id}），共 {pages} 张。",
                f"wrote {args.out}: {len(ids)} labels ({chosen.id}), {pages} sheets.",
            )
        )
        return EXIT_OK

    return _run(args, job)


def _stock_help() -> str:
    from app.printing.labels import STOCKS

    return "; ".join(s.describe("en") for s in STOCKS.values())


def add_print_commands(sub: argparse._SubParsersAction) -> None:
    """Add the ``print`` and ``labels`` subcommands to the ``gridcollect`` parser."""
    pr = sub.add_parser(
        "print",
        help="打印记录表 / record sheets to PDF",
        description="A4 record sheets (sensitive values masked, QR code, page numbers) in one "
        "PDF. Exit 0: written; 2: nothing matched or the file cannot be written.",
    )
    pr.add_argument("--form", required=True, help="form id: resident, house, unit or address")
    which = pr.add_mutually_exclusive_group()
    which.add_argument("--ids", nargs="+", metavar="ID", help="these records")
    which.add_argument("--house", metavar="ID", help="the house's residents (or units, or itself)")
    which.add_argument(
        "--building",
        metavar="NAME",
        help="records of a building's houses (in --grid, or in every grid)",
    )
    which.add_argument("--all", action="store_true", help="every record of the form")
    pr.add_argument("--grid", metavar="CODE", help="a grid; alone: every record of the form in it")
    pr.add_argument("--out", required=True, metavar="FILE.pdf")
    pr.add_argument("--quiet", action="store_true", help="no progress on stderr")
    pr.set_defaults(func=cmd_print)

    lb = sub.add_parser(
        "labels",
        help="打印门牌标签 / door-plate labels to PDF",
        description="QR + address labels for houses. Stocks: "
        + _stock_help()
        + ". Exit 0: written; 2: nothing matched, unknown stock, or the file cannot be written.",
    )
    group = lb.add_mutually_exclusive_group()
    group.add_argument("--ids", nargs="+", metavar="ID", help="these houses")
    group.add_argument("--all", action="store_true", help="every house")
    lb.add_argument("--grid", metavar="CODE", help="houses of a grid")
    lb.add_argument(
        "--building", metavar="NAME", help="houses of a building (in --grid, or in every grid)"
    )
    lb.add_argument("--stock", default="A4-24", help="label stock (default A4-24)")
    lb.add_argument(
        "--skip", type=int, default=0, help="leave the first N labels of the first sheet empty"
    )
    lb.add_argument("--out", required=True, metavar="FILE.pdf")
    lb.add_argument("--quiet", action="store_true", help="no progress on stderr")
    lb.set_defaults(func=cmd_labels)


__all__ = ["add_print_commands", "cmd_labels", "cmd_print", "progress_printer"]
