"""The ``gridcollect`` command: the desktop app by default, and headless subcommands.

Imports are lazy so that ``gridcollect validate`` or a scheduled ``gridcollect sync`` never
loads Qt. Exit codes: 0 done, 1 some rows/records have problems, 2 the input or the
command cannot be used (see each subcommand's --help).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from app.core.messages import command_lang, pick

EXIT_OK, EXIT_PROBLEMS, EXIT_UNUSABLE = 0, 1, 2
log = logging.getLogger("gridcollect")


def _lang(args: argparse.Namespace) -> str:
    return command_lang(getattr(args, "lang", None))


def _setup_logging(args: argparse.Namespace) -> None:
    """Log to the data dir (never personal data: ids and counts only)."""
    from app.core import paths

    handler = logging.FileHandler(
        paths.log_dir(args.data_dir) / "gridcollect.log", encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def _open_store(args: argparse.Namespace, *, demo: bool = False):  # noqa: ANN202 - lazy import keeps Qt/sqlite out of --help
    """The data dir's store, unlocked from --passphrase-file, the environment or the keyring
    (``demo``: a new data dir gets a demo passphrase file, and the notice is printed)."""
    from app.core.store import Store
    from app.core.vault.texts import TEXTS

    def notice(path: Path) -> None:
        print(TEXTS.text("demo_notice", _lang(args), path=str(path)), file=sys.stderr)

    return Store.open(
        args.data_dir, passphrase_file=args.passphrase_file, demo_notice=notice if demo else None
    )


def _form(args: argparse.Namespace):  # noqa: ANN202
    from app.core.forms import FormFileError, UnknownFormError, load_formset

    try:
        formset = load_formset()
    except FormFileError as exc:  # a broken installation: say which file and line
        print(exc, file=sys.stderr)
        raise SystemExit(EXIT_UNUSABLE) from exc
    try:
        return formset, formset.form(args.form)
    except UnknownFormError as exc:
        print(
            pick(
                _lang(args),
                f"未知表单“{args.form}”。可用表单：{', '.join(formset.forms)}",
                f'unknown form "{args.form}"; forms: {", ".join(formset.forms)}',
            ),
            file=sys.stderr,
        )
        raise SystemExit(EXIT_UNUSABLE) from exc


def cmd_gui(args: argparse.Namespace) -> int:
    """Start the desktop app."""
    from app.ui.main import run

    # None lets the app use the language saved in its settings
    return run(
        data_dir=args.data_dir,
        lang=args.lang or os.environ.get("GRIDCOLLECT_LANG"),
        passphrase_file=args.passphrase_file,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """Create the demo community in the data dir."""
    from app.core.demo import generate

    store = _open_store(args, demo=True)
    if store.count() and not args.force:
        print(
            pick(
                _lang(args),
                "数据目录已有记录；如要再次生成演示社区，请加 --force。",
                "the data dir already has records; pass --force to add the demo community again.",
            ),
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
    summary = generate(store, size=args.size, seed=args.seed, progress=_progress(args))
    counts = ", ".join(f"{k}={v}" for k, v in summary.counts.items())
    print(
        pick(
            _lang(args),
            f"演示社区已生成：{counts}（{store.path}）",
            f"demo community created: {counts} ({store.path})",
        )
    )
    log.info("demo generated size=%s seed=%s counts=%s", args.size, args.seed, counts)
    return EXIT_OK


def _progress(args: argparse.Namespace) -> Callable[[int, int], None] | None:
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        print(f"\r{done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    return show


def cmd_validate(args: argparse.Namespace) -> int:
    """Check a file of records against a form; print every error."""
    from app.core.tabular import TableError
    from app.core.transfer import validate_file

    formset, form = _form(args)
    try:
        report = validate_file(args.file, form, formset, lang=_lang(args))
    except TableError as exc:
        return _unusable(args, exc)
    _print_errors(args, report)
    if not args.json:
        print(
            pick(
                _lang(args),
                f"{report.file}：共 {report.rows} 行，{len(report.rejected_rows)} 行有错误，"
                f"{len(report.errors)} 处问题。",
                f"{report.file}: {report.rows} rows, {len(report.rejected_rows)} with errors, "
                f"{len(report.errors)} problems.",
            )
        )
    if report.column_problems:  # the columns do not fit the form: the file cannot be imported
        return EXIT_UNUSABLE
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _unusable(args: argparse.Namespace, exc) -> int:  # noqa: ANN001
    if getattr(args, "json", False):
        print(
            json.dumps(
                {
                    "row": exc.row or 0,
                    "field": "",
                    "code": f"file.{exc.code}",
                    "message": exc.message(_lang(args)),
                },
                ensure_ascii=False,
            )
        )
    else:
        print(exc.message(_lang(args)), file=sys.stderr)
    return EXIT_UNUSABLE


def _print_errors(args: argparse.Namespace, report) -> None:  # noqa: ANN001
    for error in report.errors:
        if args.json:
            print(json.dumps(error.as_json(), ensure_ascii=False))
        else:
            where = (
                pick(_lang(args), f"第{error.row}行", f"row {error.row}")
                if error.row
                else pick(_lang(args), "表头", "header")
            )
            column = f" [{error.column}]" if error.column else ""
            print(f"{report.file} {where}{column}: {error.message}")


def cmd_import(args: argparse.Namespace) -> int:
    """Import a spreadsheet into the store (all or nothing on failure)."""
    from app.core.tabular import TableError
    from app.core.transfer import import_file

    _, form = _form(args)
    store = _open_store(args)
    try:
        report = import_file(
            args.file,
            form,
            store,
            author=args.author,
            strict=args.strict,
            lang=_lang(args),
            progress=_progress(args),
        )
    except TableError as exc:
        return _unusable(args, exc)
    _print_errors(args, report)
    log.info(
        "import form=%s rows=%s created=%s updated=%s rejected=%s",
        form.id,
        report.rows,
        report.created,
        report.updated,
        len(report.rejected_rows),
    )
    if not report.imported:
        print(
            pick(
                _lang(args),
                "未导入任何记录：请先修正上面的问题。",
                "nothing imported: fix the problems above first.",
            ),
            file=sys.stderr,
        )
        return EXIT_UNUSABLE if report.column_problems else EXIT_PROBLEMS
    rejected = len(report.rejected_rows)
    print(
        pick(
            _lang(args),
            f"导入完成：新建 {report.created}，更新 {report.updated}，未变 {report.unchanged}，"
            f"拒绝 {rejected} 行。",
            f"imported: {report.created} created, {report.updated} updated, {report.unchanged} "
            f"unchanged, {rejected} rows rejected.",
        ),
        file=sys.stderr if args.json else sys.stdout,
    )
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def cmd_export(args: argparse.Namespace) -> int:
    """Export a form's records to CSV or XLSX, sensitive columns masked unless --unmasked."""
    from app.core.tabular import TableError
    from app.core.transfer import export_file

    _, form = _form(args)
    store = _open_store(args)
    try:
        count = export_file(
            args.out, form, store, unmasked=args.unmasked, lang=_lang(args), header=args.header
        )
    except TableError as exc:
        return _unusable(args, exc)
    log.info("export form=%s rows=%s unmasked=%s", form.id, count, args.unmasked)
    print(
        pick(
            _lang(args),
            f"已导出 {count} 条记录到 {args.out}",
            f"exported {count} records to {args.out}",
        )
    )
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    """Counts per form, status and grid."""
    store = _open_store(args)
    rows = store.stats()
    if args.json:
        print(
            json.dumps(
                [{"form": f, "status": s, "grid": g, "count": n} for f, s, g, n in rows],
                ensure_ascii=False,
            )
        )
        return EXIT_OK
    form_h, status_h = pick(_lang(args), "表单", "form"), pick(_lang(args), "状态", "status")
    grid_h, count_h = pick(_lang(args), "网格", "grid"), pick(_lang(args), "数量", "count")
    print(f"{form_h:<10}{status_h:<10}{grid_h:<16}{count_h:>8}")
    for form, status, grid, count in rows:
        print(f"{form:<10}{status:<10}{grid or '-':<16}{count:>8}")
    print(
        pick(_lang(args), f"合计 {sum(r[3] for r in rows)} 条", f"total {sum(r[3] for r in rows)}")
    )
    return EXIT_OK


def cmd_check_forms(args: argparse.Namespace) -> int:
    """Check form files and code tables; print file:line: reason for each problem."""
    from app.core.forms import check_formset

    problems = check_formset(Path(args.dir) if args.dir else None)
    for problem in problems:
        print(problem)
    if not problems:
        print(pick(_lang(args), "表单文件检查通过。", "form files OK."))
    return EXIT_PROBLEMS if problems else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """All subcommands and their options."""
    parser = argparse.ArgumentParser(
        prog="gridcollect",
        description="网格采集 GridCollect — 一标三实离线采集 / offline collection of addresses, "
        "residents, houses and units. Without a subcommand the desktop app starts.",
    )
    parser.add_argument(
        "--data-dir",
        help="数据目录 / data directory (default: $GRIDCOLLECT_DATA_DIR or the per-user data dir)",
    )
    parser.add_argument("--lang", choices=["zh", "en"], help="界面语言 / language (default zh)")
    parser.add_argument(
        "--passphrase-file",
        help="数据目录口令文件（仅本用户可读写）/ file whose first line is the data dir's "
        "passphrase, readable by its owner only (default: $GRIDCOLLECT_PASSPHRASE_FILE, "
        "then the OS keyring if turned on)",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("gui", help="桌面程序 / the desktop app").set_defaults(func=cmd_gui)
    demo = sub.add_parser("demo", help="生成演示社区 / create the demo community")
    demo.add_argument(
        "--size", type=int, default=2000, help="approximate number of records (default 2000)"
    )
    demo.add_argument(
        "--seed", type=int, default=7, help="random seed; the same seed gives the same data"
    )
    demo.add_argument("--force", action="store_true", help="add even if the data dir has records")
    demo.set_defaults(func=cmd_demo)
    val = sub.add_parser(
        "validate",
        help="检查文件 / check a CSV, XLSX or JSON file against a form",
        description="Headers may be field ids or zh/en labels. Exit 0: all rows "
        "valid; 1: some are not; 2: the file is unusable (unreadable, "
        "or unknown, doubled or missing required columns).",
    )
    _form_args(val)
    val.add_argument("file", help="CSV (UTF-8, GB18030/GBK, UTF-16/32 with BOM), XLSX or JSON file")
    val.add_argument("--json", action="store_true", help="one JSON object per error")
    val.set_defaults(func=cmd_validate)
    imp = sub.add_parser(
        "import",
        help="导入文件 / import a spreadsheet",
        description="Valid rows are imported in one transaction; rows whose natural key "
        "exists update that record. Exit 0: all imported; 1: some rows "
        "rejected; 2: the file is unusable (nothing imported).",
    )
    _form_args(imp)
    imp.add_argument("file")
    imp.add_argument("--strict", action="store_true", help="import nothing if any row is rejected")
    imp.add_argument(
        "--author", default=os.environ.get("USER", ""), help="who is importing (history)"
    )
    imp.add_argument("--json", action="store_true", help="errors as JSON lines")
    imp.set_defaults(func=cmd_import)
    exp = sub.add_parser("export", help="导出 / export records to CSV or XLSX")
    _form_args(exp)
    exp.add_argument("--out", required=True, help="output file (.csv or .xlsx)")
    exp.add_argument("--unmasked", action="store_true", help="do not mask sensitive columns")
    exp.add_argument("--header", choices=["label", "id"], default="label", help="column headers")
    exp.set_defaults(func=cmd_export)
    stats = sub.add_parser("stats", help="统计 / counts per form, status and grid")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=cmd_stats)
    chk = sub.add_parser("check-forms", help="检查表单文件 / check form files and code tables")
    chk.add_argument("dir", nargs="?", help="forms directory (default: the shipped forms)")
    chk.set_defaults(func=cmd_check_forms)
    _add_feature_commands(sub)
    return parser


def _add_feature_commands(sub: argparse._SubParsersAction) -> None:
    """Subcommands owned by the sync, server and printing packages (their modules import
    nothing heavy at module level, so --help stays fast)."""
    from app.passphrase_cli import add_passphrase_commands
    from app.printing.cli import add_print_commands
    from sync.cli import add_sync_commands
    from sync.server.cli import add_server_commands

    add_sync_commands(sub)
    add_server_commands(sub)
    add_print_commands(sub)
    add_passphrase_commands(sub)


def _form_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--form", required=True, help="form id: resident, house, unit or address")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    if os.name == "posix":
        os.umask(0o077)  # logs, exports and print files this run makes: owner only
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args.func = cmd_gui
    _setup_logging(args)
    try:
        return int(args.func(args))
    except Exception as exc:
        return _store_failure(args, exc)


def _store_failure(args: argparse.Namespace, exc: Exception) -> int:
    """One line for a store that cannot be opened (locked, damaged, no passphrase); anything
    else is raised again. The drivers are looked up only if loaded: --help stays light."""
    vault = sys.modules.get("app.core.vault.sources")
    if vault is not None and isinstance(exc, vault.PassphraseError):
        log.error("store locked: %s", exc.key)
        print(exc.text(_lang(args)), file=sys.stderr)
        return EXIT_UNUSABLE
    driver = sys.modules.get("app.core.store.driver")
    if driver is None or not isinstance(exc, driver.Error):
        raise exc
    # a locked, read-only or damaged store file; no personal data
    log.error("store error: %s", type(exc).__name__)
    print(
        pick(
            _lang(args),
            f"数据文件无法使用（{exc}）。请关闭其他正在使用该数据目录的程序后重试。",
            f"the data file cannot be used ({exc}); close other programs using the data dir "
            f"and try again.",
        ),
        file=sys.stderr,
    )
    return EXIT_UNUSABLE


if __name__ == "__main__":
    raise SystemExit(main())
