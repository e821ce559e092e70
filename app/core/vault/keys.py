"""Setting up, unlocking and re-wrapping a store's key; the unlocked keys of this process.

Why a process-wide cache: the app opens several ``Store`` objects on one file (the window's, and
one per background task's thread); the passphrase is asked once and the slow derivation runs
once, then every open on that file finds its key here. The cache is keyed by the key file's
path and id, so a key file replaced by a new one is never opened with an old key.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from app.core.vault import keyfile
from app.core.vault.keyfile import KeyFile, WrongPassphrase

KEYRING_SERVICE = "GridCollect"
_cache: dict[tuple[str, str], bytes] = {}
_lock = threading.Lock()


class KeyringUnavailable(RuntimeError):
    """No usable OS keyring here (no backend, locked, or the entry is missing)."""


def key_path(db_path: Path) -> Path:
    """The key file beside a store file: ``gridcollect.sqlite`` → ``gridcollect.key``."""
    return db_path.with_suffix(".key")


def _remember(path: Path, kf: KeyFile, data_key: bytes) -> bytes:
    with _lock:
        _cache[(str(path.resolve()), kf.key_id)] = data_key
    return data_key


def cached(db_path: Path) -> bytes | None:
    """The data key this process already unlocked for ``db_path``, if any."""
    path = key_path(db_path)
    try:
        kf = keyfile.load(path)
    except keyfile.KeyFileError:
        return None
    with _lock:
        return _cache.get((str(path.resolve()), kf.key_id))


def forget() -> None:
    """Drop every unlocked key (tests; a future "lock now")."""
    with _lock:
        _cache.clear()


def setup(db_path: Path, passphrase: str, kdf: dict[str, int] | None = None) -> bytes:
    """Create the key file for a store that has none; returns the new data key.

    ``FileExistsError`` if a key file exists, or appears while the passphrase is derived
    (another process's first run: it is kept). ``KeyFileError`` if the store is already
    encrypted: its key file is lost, and a new key could not open it (restore the backup)."""
    from app.core.store import driver

    path = key_path(db_path)
    if keyfile.exists(path):
        raise FileExistsError(path)
    if driver.is_encrypted(db_path):
        raise keyfile.KeyFileError("missing")
    kf, data_key = keyfile.new(passphrase, kdf)
    keyfile.create(path, kf)
    return _remember(path, kf, data_key)


def unlock(db_path: Path, passphrase: str) -> bytes:
    """The data key from the passphrase (``WrongPassphrase`` if it is not the right one)."""
    path = key_path(db_path)
    kf = keyfile.load(path)
    return _remember(path, kf, keyfile.unlock_passphrase(kf, passphrase))


def change_passphrase(db_path: Path, old: str, new: str, kdf: dict[str, int] | None = None) -> None:
    """Re-wrap the data key under ``new`` (fresh salt); the store itself is not touched."""
    path = key_path(db_path)
    kf = keyfile.load(path)
    data_key = keyfile.unlock_passphrase(kf, old)
    keyfile.save(path, kf.with_slot(keyfile.passphrase_slot(kf.key_id, new, data_key, kdf)))
    _remember(path, kf, data_key)


# -- the OS keyring (optional: for the unattended nightly sync) ------------------------------


def _account(kf: KeyFile) -> str:
    return f"store-key-{kf.key_id}"


def _keyring():  # noqa: ANN202 - the keyring module, loaded only when asked for
    import keyring
    from keyring.errors import KeyringError

    return keyring, KeyringError


def keyring_enable(db_path: Path, passphrase: str) -> None:
    """Put a random wrapping secret in the OS keyring and a slot sealed by it in the key file."""
    import secrets

    path = key_path(db_path)
    kf = keyfile.load(path)
    data_key = keyfile.unlock_passphrase(kf, passphrase)
    wrapping = secrets.token_bytes(keyfile.KEY_BYTES)
    keyring, keyring_error = _keyring()
    try:
        keyring.set_password(KEYRING_SERVICE, _account(kf), wrapping.hex())
    except (keyring_error, RuntimeError) as exc:
        raise KeyringUnavailable(type(exc).__name__) from exc
    keyfile.save(path, kf.with_slot(keyfile.seal(kf.key_id, "keyring", wrapping, data_key)))


def keyring_disable(db_path: Path) -> None:
    """Remove the keyring slot from the key file and the secret from the keyring."""
    path = key_path(db_path)
    kf = keyfile.load(path)
    keyfile.save(path, kf.without_slot("keyring"))
    keyring, keyring_error = _keyring()
    with contextlib.suppress(keyring_error, RuntimeError):
        keyring.delete_password(KEYRING_SERVICE, _account(kf))


def keyring_enabled(db_path: Path) -> bool:
    """True if the key file has a keyring slot."""
    try:
        return "keyring" in keyfile.load(key_path(db_path)).slots
    except keyfile.KeyFileError:
        return False


def unlock_keyring(db_path: Path) -> bytes:
    """The data key through the OS keyring (``KeyringUnavailable`` if that way is closed)."""
    path = key_path(db_path)
    kf = keyfile.load(path)
    slot = kf.slots.get("keyring")
    if slot is None:
        raise KeyringUnavailable("not enabled")
    keyring, keyring_error = _keyring()
    try:
        secret = keyring.get_password(KEYRING_SERVICE, _account(kf))
    except (keyring_error, RuntimeError) as exc:
        raise KeyringUnavailable(type(exc).__name__) from exc
    if not secret:
        raise KeyringUnavailable("no entry")
    try:
        data_key = keyfile.open_slot(kf.key_id, slot, bytes.fromhex(secret))
    except (ValueError, WrongPassphrase) as exc:
        raise KeyringUnavailable("entry does not open this key file") from exc
    return _remember(path, kf, data_key)
