"""``gridcollect passphrase``: change the data dir's passphrase, turn the keyring on or off.

Why its own module: ``app/cli.py`` holds the record commands; these touch only the key file
(``app.core.vault``), never the records, so a change of passphrase re-wraps 32 bytes and
leaves the encrypted store as it is.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.messages import command_lang, pick

if TYPE_CHECKING:
    from app.core.vault.sources import Found

EXIT_OK, EXIT_UNUSABLE = 0, 2
log = logging.getLogger("gridcollect")


def add_passphrase_commands(sub: Any) -> None:
    """Add ``passphrase change`` and ``passphrase keyring on|off`` to ``gridcollect``."""
    parser = sub.add_parser(
        "passphrase",
        help="数据目录口令 / the data dir's passphrase and keyring",
        description="The data dir is encrypted; its key is opened by the passphrase (and, if "
        "turned on, by the OS keyring). The current passphrase comes from --passphrase-file "
        "(before the subcommand), $GRIDCOLLECT_PASSPHRASE_FILE or the demo file.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    change = actions.add_parser("change", help="更换口令 / choose a new passphrase")
    change.add_argument(
        "--new-passphrase-file", required=True, help="file whose first line is the new passphrase"
    )
    change.set_defaults(func=cmd_change)
    ring = actions.add_parser(
        "keyring", help="系统钥匙串 / keep an unlock key in the OS keyring (unattended sync)"
    )
    ring.add_argument("state", choices=["on", "off"])
    ring.set_defaults(func=cmd_keyring)


def _lang(args: argparse.Namespace) -> str:
    return command_lang(getattr(args, "lang", None))


def _current(args: argparse.Namespace) -> tuple[Path, Found]:
    """(db path, the current passphrase and its file): from --passphrase-file, else the
    environment, else the demo file. The keyring cannot give it: its secret is not one."""
    from app.core import paths
    from app.core.vault import access, sources

    db_path = paths.db_path(args.data_dir)
    access.open_key(db_path, args.passphrase_file)  # set up / migrate first if needed
    found = (
        sources.explicit_file(args.passphrase_file)
        or sources.env_file()
        or sources.demo_found(db_path.parent)
    )
    if found is None:
        raise sources.PassphraseError("needed")
    return db_path, found


def cmd_change(args: argparse.Namespace) -> int:
    """Re-wrap the data key under a new passphrase; the demo file, if any, is deleted."""
    from app.core.vault import keyfile, keys, sources
    from app.core.vault.texts import TEXTS

    new = sources.read_file(args.new_passphrase_file)
    problem = sources.check_new(new)
    if problem is not None:
        raise problem
    db_path, old = _current(args)
    try:
        keys.change_passphrase(db_path, old.passphrase, new)
    except keyfile.WrongPassphrase as exc:
        raise old.wrong() from exc
    with contextlib.suppress(FileNotFoundError):
        sources.demo_file(db_path.parent).unlink()
    log.info("passphrase changed")
    print(TEXTS.text("changed", _lang(args)))
    return EXIT_OK


def cmd_keyring(args: argparse.Namespace) -> int:
    """Turn the keyring slot on (needs the passphrase) or off."""
    from app.core.vault import keyfile, keys, sources
    from app.core.vault.texts import TEXTS

    if args.state == "off":
        from app.core import paths

        db_path = paths.db_path(args.data_dir)
        try:
            keys.keyring_disable(db_path)
        except keyfile.KeyFileError as exc:
            raise sources.key_file_problem(exc, keys.key_path(db_path)) from exc
        print(TEXTS.text("keyring_off", _lang(args)))
        return EXIT_OK
    db_path, current = _current(args)
    try:
        keys.keyring_enable(db_path, current.passphrase)
    except keyfile.WrongPassphrase as exc:
        raise current.wrong() from exc
    except keys.KeyringUnavailable:
        print(TEXTS.text("keyring_unavailable", _lang(args)), file=sys.stderr)
        return EXIT_UNUSABLE
    log.info("keyring slot added")
    print(TEXTS.text("keyring_on", _lang(args)))
    print(
        pick(
            _lang(args),
            "提示：本机此用户登录后，无需口令即可打开数据；笔记本被盗且系统账户未锁定时不再受口令保护。",
            "note: once this OS user is logged in, the data opens without the passphrase; a "
            "stolen laptop whose OS account is not locked is no longer protected by it.",
        ),
        file=sys.stderr,
    )
    return EXIT_OK
