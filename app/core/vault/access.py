"""The key of a data dir's store, had without a dialog: set up, unlocked, and the store
encrypted if it still is plaintext. The CLI and the app's start go through here.

Order of sources: an explicit ``--passphrase-file`` (alone: a wrong one is an error), else
``$GRIDCOLLECT_PASSPHRASE_FILE``, the OS keyring (only if it was turned on for this data dir),
then the demo data dir's own passphrase file, each tried if the one before does not open the
key file. A new data dir takes its passphrase from the first two, or from a fresh demo file when
the caller is ``gridcollect demo``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from app.core.vault import encrypt, keyfile, keys, perms, sources
from app.core.vault.sources import PassphraseError

log = logging.getLogger(__name__)


def _existing(db_path: Path, explicit: str | os.PathLike[str] | None) -> bytes:
    """Unlock a key file that exists. A given ``--passphrase-file`` is the only source tried:
    the person named it, so a wrong one is said, never replaced by another. The implicit
    sources are tried in turn, so a stale ``$GRIDCOLLECT_PASSPHRASE_FILE`` (not updated after
    a change) does not hide the keyring; if none opens, the error names the first that failed."""
    given = sources.explicit_file(explicit)
    if given is not None:
        return _unlock(db_path, given)
    failed: PassphraseError | None = None
    env = sources.env_file()
    if env is not None:
        try:
            return _unlock(db_path, env)
        except PassphraseError as exc:
            failed = exc
    if keys.keyring_enabled(db_path):
        try:
            key = keys.unlock_keyring(db_path)
        except keys.KeyringUnavailable:
            pass
        else:
            if failed is not None:
                log.warning("passphrase from %s is wrong; opened with the keyring", sources.ENV_VAR)
            return key
    demo = sources.demo_found(db_path.parent)
    if demo is not None:
        try:
            return _unlock(db_path, demo)
        except PassphraseError as exc:
            failed = failed or exc
    raise failed or PassphraseError("needed")


def _unlock(db_path: Path, found: sources.Found) -> bytes:
    """The data key from ``found``'s passphrase; a wrong one is an error naming its source."""
    try:
        return keys.unlock(db_path, found.passphrase)
    except keyfile.WrongPassphrase as exc:
        raise found.wrong() from exc


def _new(
    db_path: Path,
    explicit: str | os.PathLike[str] | None,
    demo_notice: Callable[[Path], None] | None,
) -> bytes:
    passphrase = sources.given(explicit)
    if passphrase is None and demo_notice is not None:
        # one already there (a lost key file's, a first run cut short) is kept, never replaced
        passphrase = sources.demo_passphrase(db_path.parent)
        if passphrase is None:
            passphrase = sources.make_demo_passphrase(db_path.parent)
        demo_notice(sources.demo_file(db_path.parent))
    if passphrase is None:
        raise PassphraseError("setup_needed")
    problem = sources.check_new(passphrase)
    if problem is not None:
        raise problem
    return keys.setup(db_path, passphrase)


def open_key(
    db_path: Path,
    passphrase_file: str | os.PathLike[str] | None = None,
    *,
    demo_notice: Callable[[Path], None] | None = None,
) -> bytes:
    """The store's data key, the store encrypted and the data dir private; or PassphraseError.

    ``demo_notice``: only ``gridcollect demo`` gives one; a data dir without a key file then
    gets a random passphrase in a 0600 demo file, and the notice is called with its path.
    """
    perms.private_dir(db_path.parent)
    kpath = keys.key_path(db_path)
    try:
        if keyfile.exists(kpath):
            key = keys.cached(db_path) or _existing(db_path, passphrase_file)
        else:
            try:
                key = _new(db_path, passphrase_file, demo_notice)
            except FileExistsError:  # another process set it up meanwhile: unlock that one
                key = _existing(db_path, passphrase_file)
    except keyfile.KeyFileError as exc:
        raise sources.key_file_problem(exc, kpath) from exc
    finish(db_path, key)
    return key


def finish(db_path: Path, key: bytes) -> None:
    """Once the key is had: encrypt a plaintext store (resuming a killed attempt) and make
    the data dir and its files owner-only."""
    encrypt.encrypt_in_place(db_path, key)
    perms.tighten(db_path.parent)


def key_for_store(db_path: Path) -> bytes | None:
    """The key ``Store(path)`` opens with when none is given: unlocked already in this
    process, or from a source that needs no person. None: a plaintext store without a key
    file (a test's scratch store). ``PassphraseError`` if the store is locked."""
    if not keyfile.exists(keys.key_path(db_path)):
        return None
    key = keys.cached(db_path)
    if key is None:
        try:
            key = _existing(db_path, None)
        except keyfile.KeyFileError as exc:
            raise sources.key_file_problem(exc, keys.key_path(db_path)) from exc
    encrypt.encrypt_in_place(db_path, key)
    return key
