"""The key of a data dir's store, had without a dialog: set up, unlocked, and the store
encrypted if it still is plaintext. The CLI and the app's start go through here.

Order of sources: an explicit ``--passphrase-file``, ``$GRIDCOLLECT_PASSPHRASE_FILE``, the OS
keyring (only if it was turned on for this data dir), then the demo data dir's own passphrase
file. A new data dir takes its passphrase from the first two, or from a fresh demo file when
the caller is ``gridcollect demo``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from app.core.vault import encrypt, keyfile, keys, perms, sources
from app.core.vault.sources import PassphraseError


def _existing(db_path: Path, explicit: str | os.PathLike[str] | None) -> bytes:
    """Unlock a key file that exists, from the first source that has a passphrase."""
    passphrase = sources.given(explicit)
    if passphrase is None and keys.keyring_enabled(db_path):
        try:
            return keys.unlock_keyring(db_path)
        except keys.KeyringUnavailable:
            pass
    if passphrase is None:
        passphrase = sources.demo_passphrase(db_path.parent)
    if passphrase is None:
        raise PassphraseError("needed")
    try:
        return keys.unlock(db_path, passphrase)
    except keyfile.WrongPassphrase as exc:
        raise PassphraseError("wrong") from exc


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
        raise PassphraseError("key_file_bad", path=str(kpath)) from exc
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
            raise PassphraseError("key_file_bad", path=str(keys.key_path(db_path))) from exc
    encrypt.encrypt_in_place(db_path, key)
    return key
