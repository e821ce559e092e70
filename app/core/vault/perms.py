"""Owner-only permissions for the data dir (0700) and what it holds (0600) on POSIX.

Why not rely on the umask: a default umask gives 0755/0644, so any other account on the laptop
could read the store file and its key file (and try passphrases offline at leisure).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

POSIX = os.name == "posix"


def private_dir(path: Path) -> Path:
    """Create ``path`` if needed and make it 0700 (POSIX); returns it."""
    path.mkdir(parents=True, exist_ok=True)
    if POSIX:
        with contextlib.suppress(PermissionError):  # not ours (e.g. a shared mount): leave it
            os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> None:
    """Make an existing file 0600 (POSIX); absent files are skipped."""
    if POSIX:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.chmod(path, 0o600)


OWN_PREFIXES = ("gridcollect", "sync", "demo-passphrase")  # what GridCollect writes there


def tighten(data_dir: Path) -> None:
    """0700 on the data dir and its ``logs/``, 0600 on the files GridCollect keeps there (an
    older install's 0644 ones). Only its own files: a data dir may be a folder that holds
    other things too, whose modes are not ours to change."""
    if not POSIX:
        return
    private_dir(data_dir)
    for path in data_dir.iterdir():
        if path.is_file() and path.name.startswith(OWN_PREFIXES):
            private_file(path)
    logs = data_dir / "logs"
    if logs.is_dir():
        private_dir(logs)
        for path in logs.glob("*.log*"):
            private_file(path)


def open_to_others(path: Path) -> bool:
    """True if group or others may read or write ``path`` (POSIX; never on Windows)."""
    if not POSIX:
        return False
    mode = path.stat().st_mode
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO) & ~(stat.S_IXGRP | stat.S_IXOTH))


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename), 0600 from the start."""
    tmp = _durable_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def _durable_temp(path: Path, data: bytes) -> str:
    """``data`` in a new 0600 temp file beside ``path``, written whole and fsynced; its name.
    A temp file of its own: two writers at once never share one."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".new", dir=path.parent)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte: ``os.write`` may store only a part (a nearly full disk) and say so
    in its count, the error coming at the next call; a short key file must never be renamed
    over a whole one."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def create_private(path: Path, data: bytes) -> None:
    """Like ``write_private``, but only if ``path`` does not exist yet (``FileExistsError``):
    the new file appears whole, and never over one another process made meanwhile."""
    tmp = _durable_temp(path, data)
    try:
        try:
            os.link(tmp, path)  # atomic, and refuses an existing target (unlike a rename)
        except FileExistsError:
            raise
        except OSError:  # no hard links here (FAT/exFAT, some shares): check, then rename
            if path.exists():
                raise FileExistsError(path) from None
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX; a no-op where directories cannot be opened)."""
    if not POSIX:
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
