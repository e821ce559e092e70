"""``gridcollect sync``: one headless sync run for schedulers (cron, Windows Task Scheduler).

Why exit codes instead of prose: a scheduler can only branch on the code. The password comes
from a file (never the command line, where ``ps`` and shell history would show it), the log
goes to the data dir's ``logs/sync.log`` with counts only, and a lock file keeps this run and
the desktop app from syncing the same data dir at the same time.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.messages import command_lang, lang_of, pick

if TYPE_CHECKING:
    from sync.session import SyncSummary

EXIT_OK = 0
EXIT_UNUSABLE = 2  # bad arguments, an unreadable password file / data dir, a distrusted cert
EXIT_WAITING = 3  # done; conflicts or edits the platform refused wait for a person
EXIT_CONFLICTS = EXIT_WAITING  # its name before refusals counted too
EXIT_AUTH = 4
EXIT_NETWORK = 5  # unreachable, or answering 5xx, after every retry
EXIT_LOCKED = 6
EXIT_PROTOCOL = 7

log = logging.getLogger("gridcollect.sync")

EXIT_HELP = """\
exit codes / 退出码:
  0  done / 同步完成
  2  unusable arguments, password file, data dir, or a server certificate this computer does
     not trust (see --cafile) / 参数、密码文件、数据目录不可用，或服务器证书不受信任
  3  done, conflicts or edits the platform refused wait for a person
     / 同步完成，有冲突或被平台拒绝的修改待人工处理
  4  login failed or token refused / 登录失败或令牌失效
  5  server unreachable, or answering 5xx (unavailable), after retries
     / 多次重试后仍无法连接服务器或服务器暂不可用
  6  another sync (desktop app or scheduled) holds the lock / 另一个同步正在进行
  7  the server refused the request (4xx) or answered what no platform sends
     / 服务器拒绝请求或回答无法识别

The reason is printed on stderr in one line. The first sync of a device needs the password
(--password-file); it then keeps a device credential and later runs need no password. Example
cron line (every night from 02:30, spread over an hour by --jitter):
  30 2 * * * gridcollect sync --server https://grid.example.cn --user wang \\
      --jitter 3600 --json >> ~/sync.jsonl
"""


def add_sync_commands(subparsers: Any) -> None:
    """Add the ``sync`` subcommand to ``gridcollect``'s subparsers."""
    parser = subparsers.add_parser(
        "sync",
        help="与平台同步 / sync with the platform server",
        description="Push this device's changes, then pull the platform's changes for the "
        "user's grids. 推送本机修改，再拉取本人网格的平台数据。",
        epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--server", required=True, help="platform URL, e.g. https://grid.example.cn"
    )
    parser.add_argument("--user", required=True, help="user name / 用户名")
    parser.add_argument(
        "--password-file",
        help="file whose first line is the password (never pass it on the command line); "
        "needed for the first sync of a device, later ones use the device's sync credential",
    )
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait a delay in [0, SECONDS) before starting, the same for this device every "
        "night, so a scheduler that starts every device at one minute spreads their load",
    )
    parser.add_argument(
        "--cafile",
        help="CA certificate(s) (PEM) to trust for the server's https certificate, e.g. the "
        "office's own CA (default: the system's, or $REQUESTS_CA_BUNDLE)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow http:// to another machine (password and data unencrypted on the network)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="ops per push request (1-1000; default: as many as the server takes, up to 1000)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=5,
        help="attempts per request on network errors, 5xx and 429, with backoff (default 5)",
    )
    parser.set_defaults(func=cmd_sync)


def _lang(args: argparse.Namespace) -> str:
    return command_lang(getattr(args, "lang", None))


def _read_password(path: str) -> str:
    text = Path(path).expanduser().read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    password = lines[0] if lines else ""
    if not password:
        raise ValueError("empty")
    return password


def _transport_problem(args: argparse.Namespace) -> int | None:
    """Exit 2 with a one-line reason before any password is read or sent: an insecure URL,
    a password file others may read or write, a missing --cafile."""
    from sync import transport

    checks = [
        ("insecure_url", transport.url_problem(args.server, args.insecure)),
    ]
    if args.password_file:  # optional once the device keeps its sync credential
        checks.append(("password_file_mode", transport.password_file_problem(args.password_file)))
    if args.cafile and not Path(args.cafile).expanduser().is_file():
        checks.append(
            ("cafile", (f"找不到 CA 证书文件：{args.cafile}", f"no such CA file: {args.cafile}"))
        )
    for reason, problem in checks:
        if problem:
            return _fail(args, EXIT_UNUSABLE, reason, *problem)
    return None


def cmd_sync(args: argparse.Namespace) -> int:
    """Run one sync; returns the exit code (see ``EXIT_HELP``)."""
    from app.core import paths

    lang = _lang(args)
    if args.batch is not None and not 1 <= args.batch <= 1000:
        return _fail(
            args, EXIT_UNUSABLE, "batch", "--batch 须在 1 到 1000 之间。", "--batch must be 1-1000."
        )
    refused = _transport_problem(args)
    if refused:
        return refused
    if not 0 <= args.jitter <= 86400:
        return _fail(
            args,
            EXIT_UNUSABLE,
            "jitter",
            "--jitter 须在 0 到 86400 秒之间。",
            "--jitter must be 0-86400 seconds.",
        )
    try:
        password = _read_password(args.password_file) if args.password_file else None
    except (OSError, ValueError, UnicodeDecodeError):
        return _fail(
            args,
            EXIT_UNUSABLE,
            "password_file",
            "无法读取密码文件（文件不存在、不可读或为空）。",
            "cannot read the password file (missing, unreadable or empty).",
        )
    try:
        data_dir = paths.data_dir(getattr(args, "data_dir", None))
    except OSError:
        return _fail(
            args, EXIT_UNUSABLE, "data_dir", "数据目录不可用。", "the data dir cannot be used."
        )
    handler = _log_to(paths.log_dir(data_dir) / "sync.log")
    try:
        return _run(args, data_dir, password, lang)
    finally:
        logging.getLogger("gridcollect.sync").removeHandler(handler)
        handler.close()


def _run(args: argparse.Namespace, data_dir: Path, password: str | None, lang: str) -> int:
    from app.core.store import Store, driver
    from app.core.vault.sources import PassphraseError
    from sync import heap
    from sync.client import (
        AuthError,
        CertificateError,
        Client,
        NetworkError,
        ProtocolError,
        Retry,
        ServerError,
        SyncError,
    )
    from sync.lock import LockedError, SyncLock
    from sync.replica import credential
    from sync.replica import identity as replica_identity
    from sync.session import SyncSession

    codes: list[tuple[type[SyncError], int]] = [
        (AuthError, EXIT_AUTH),
        (NetworkError, EXIT_NETWORK),
        (ServerError, EXIT_NETWORK),  # 5xx after every retry: unavailable, as unreachable
        (CertificateError, EXIT_UNUSABLE),  # only a person can fix it: --cafile, the URL
        (ProtocolError, EXIT_PROTOCOL),
    ]
    try:
        with SyncLock(data_dir):
            store = Store.open(data_dir, passphrase_file=getattr(args, "passphrase_file", None))
            _wait_jitter(args.jitter, store.device_id)
            client = Client(
                args.server,
                store.device_id,
                retry=Retry(attempts=max(1, args.retries)),
                installation=replica_identity.installation(store),
                cafile=str(Path(args.cafile).expanduser()) if args.cafile else None,
            )
            try:
                log.info("sync started: server %s", client.host)
                client.info()
                _sign_in(client, store, args.server, args.user, password)
                heap.settle()  # a one-shot process: what is loaded now lives until the end
                summary = SyncSession(
                    store, client, batch=args.batch, progress=_progress(args)
                ).run()
                if client.refresh_token:  # a copy given a new device id has a new one
                    credential.save(store, args.server, args.user, client.refresh_token)
            finally:
                client.close()
                store.close()
    except PassphraseError as exc:
        log.warning("sync refused: store locked (%s)", exc.key)
        return _fail(args, EXIT_UNUSABLE, "passphrase", exc.text("zh"), exc.text("en"))
    except LockedError as exc:
        log.warning("sync refused: locked")
        return _fail(args, EXIT_LOCKED, "locked", exc.message_zh, exc.message_en)
    except SyncError as exc:
        code = next((c for kind, c in codes if isinstance(exc, kind)), EXIT_PROTOCOL)
        log.warning("sync failed: %s (%s)", type(exc).__name__, exc.code)
        zh, en = _CLI_ADVICE.get(exc.code, (exc.message_zh, exc.message_en))
        return _fail(args, code, exc.code, zh, en)
    except driver.Error as exc:
        log.error("store error: %s", type(exc).__name__)
        return _fail(
            args,
            EXIT_UNUSABLE,
            "store",
            "数据文件无法使用，请关闭其他正在使用该数据目录的程序后重试。",
            "the data file cannot be used; close other programs using the data dir and retry.",
        )
    waiting = summary.open_conflicts or summary.open_refused
    result = EXIT_WAITING if waiting else EXIT_OK
    if args.json:
        print(
            json.dumps({"ok": True, "exit_code": result, **summary.as_dict()}, ensure_ascii=False)
        )
    else:
        print(summary.text(lang))
    if waiting:
        print(_waiting_line(summary, lang_of(lang) == "en"), file=sys.stderr)
    return result


# What the CLI says instead of the client's reason, where a command-line option is the fix.
_CLI_ADVICE = {
    "certificate": (
        "服务器的证书不受信任（不是本机信任的 CA 签发的），已停止，未发送任何数据："
        "请用 --cafile 指定签发该证书的 CA 证书（如单位自己的 CA）。",
        "the server's certificate is not trusted (no CA this computer trusts signed it); "
        "stopped, nothing sent: give the CA that signed it with --cafile (e.g. the office's "
        "own CA).",
    ),
}


def _waiting_line(summary: SyncSummary, en: bool) -> str:
    """The one stderr line of a run that ends with something waiting for a person: how many
    conflicts and refused edits, and what to do about each."""
    parts: list[str] = []
    conflicts, refused = summary.open_conflicts, summary.open_refused
    grid_only = summary.open_refused_out_of_scope
    if conflicts:
        parts.append(
            f"{conflicts} record(s) have conflicts: resolve them in the app"
            if en
            else f"有 {conflicts} 条记录存在冲突，请在程序中处理"
        )
    if refused > grid_only:
        n = refused - grid_only
        parts.append(
            f"the platform refused edits of {n} record(s), kept on this device: correct them "
            "in the app (or ask the administrator why), the next sync sends them"
            if en
            else f"有 {n} 条记录的修改被平台拒绝，仍保存在本机：请在程序中改正"
            "（或向管理员询问原因），下次同步时发送"
        )
    if grid_only:
        parts.append(
            f"edits of {grid_only} record(s) were refused because their grid is no longer "
            "yours, kept on this device: they are sent again when the grid is given back "
            "(ask the administrator)"
            if en
            else f"有 {grid_only} 条记录的修改因所属网格已不归您负责而被平台拒绝，仍保存在本机："
            "网格交还后自动重新发送（请联系管理员）"
        )
    return ("; " if en else "；").join(parts) + ("." if en else "。")


def _wait_jitter(jitter: float, device_id: str) -> None:
    """Sleep this device's share of ``jitter`` seconds: a fraction derived from the device id,
    so every night the device starts at the same offset and the devices of an office spread
    evenly over the window (PROTOCOL.md §11). The sync lock is already held."""
    import hashlib
    import time

    if jitter <= 0:
        return
    digest = hashlib.sha256(device_id.encode("utf-8")).digest()
    delay = int.from_bytes(digest[:8], "big") / 2**64 * jitter
    log.info("start delayed by %.0f s (--jitter %.0f)", delay, jitter)
    time.sleep(delay)


def _sign_in(client: Any, store: Any, server: str, user: str, password: str | None) -> None:
    """With the device's sync credential when it has one, else with the password; keeps the
    credential the platform gives for next time."""
    from sync.client import AuthError
    from sync.replica import credential

    kept = credential.load(store, server, user)
    if kept:
        try:
            client.refresh(kept)
            if client.refresh_token != kept:  # a copy: a device id and credential of its own
                _keep(client, store, server, user)
            return
        except AuthError as exc:
            log.warning("device credential refused (%s)", exc.code)
            credential.save(store, server, user, None)
            if password is None:
                raise AuthError(
                    exc.code,
                    "本机的同步凭据已失效，请用 --password-file 提供密码重新登录一次。",
                    "this device's sync credential no longer works; log in once again with "
                    "--password-file.",
                ) from None
    if password is None:
        raise AuthError(
            "no_credential",
            "本机尚未登录过该平台：第一次同步请用 --password-file 提供密码。",
            "this device has not signed in to this platform yet: give the password with "
            "--password-file for the first sync.",
        )
    client.login(user, password)
    if client.refresh_token:
        _keep(client, store, server, user)


def _keep(client: Any, store: Any, server: str, user: str) -> None:
    """Keep the credential the platform gave and, for a copy of a data dir, the device id it
    is bound to, in one transaction: the session adopts the id at its start, the credential
    was kept only at the end of a run that got there, and the next run sent the original's
    credential for the copy's id (refused: exit 4)."""
    from sync.replica import credential
    from sync.replica import identity as replica_identity

    with store.transaction():
        if client.device_status == "copied" and replica_identity.adopt_device(
            store, client.device_id
        ):
            log.warning("this data dir is a copy: registered as a new device")
        credential.save(store, server, user, client.refresh_token)


def _fail(args: argparse.Namespace, code: int, reason: str, zh: str, en: str) -> int:
    """One line on stderr; with --json also one JSON object on stdout."""
    print(pick(_lang(args), zh, en), file=sys.stderr)
    if getattr(args, "json", False):
        body = {"ok": False, "exit_code": code, "error": reason, "message_zh": zh, "message_en": en}
        print(json.dumps(body, ensure_ascii=False))
    return code


def _log_to(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("gridcollect.sync")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def _progress(args: argparse.Namespace) -> Any:
    if args.json or not sys.stderr.isatty():
        return None

    def show(phase: str, done: int, total: int) -> None:
        label = {"push": "推送 push", "pull": "拉取 pull", "grids": "新网格 new grids"}.get(
            phase, phase
        )
        shown = f"{done}/{total}" if total else f"{done}"
        print(f"\r{label} {shown}", end="", file=sys.stderr, flush=True)

    return show
