"""A cross-process lock so the GUI and a scheduled ``gridcollect sync`` never sync at once.

Why an OS file lock (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows) rather than an
O_EXCL file: the operating system drops the lock when the holding process dies, however it
dies, so a killed sync never leaves a stale lock behind and no pid guessing is needed. The
file also records the holder's pid and start time, only so a refusal can say who holds it.
Two ``SyncLock`` objects in one process exclude each other too (each opens its own file).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from app.core import ids
from app.core.messages import pick

LOCK_NAME = "sync.lock"


class LockedError(RuntimeError):
    """Another sync (GUI or scheduled) holds the lock."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        who = f"（{holder}）" if holder else ""
        who_en = f" ({holder})" if holder else ""
        self.message_zh = f"另一个同步正在进行{who}，请等它结束后再试。"
        self.message_en = f"another sync is running{who_en}; wait for it to finish and try again."
        super().__init__(f"{self.message_zh} / {self.message_en}")

    def reason(self, lang: str = "zh") -> str:
        return pick(lang, self.message_zh, self.message_en)


class SyncLock:
    """``with SyncLock(data_dir):`` — raises ``LockedError`` at once if another sync runs.

    ``wait`` > 0 keeps trying for that many seconds before giving up.
    """

    def __init__(self, data_dir: str | os.PathLike[str], wait: float = 0.0) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self.wait = wait
        self._fh: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def acquire(self) -> SyncLock:
        if self._fh is not None:
            raise RuntimeError("SyncLock is not re-entrant")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait
        while True:
            fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
            if _try_lock(fh):
                break
            fh.close()
            if time.monotonic() >= deadline:
                raise LockedError(self.path, self.holder())
            time.sleep(0.1)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid={os.getpid()} since={ids.now_iso()}\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is None:
            return
        with contextlib.suppress(OSError):
            fh.seek(0)
            fh.truncate()
            fh.flush()
        _unlock(fh)
        fh.close()

    def holder(self) -> str:
        """What the holder wrote (pid and start time), or "" if unreadable."""
        try:
            return self.path.read_text(encoding="utf-8").strip()[:100]
        except OSError:
            return ""

    def __enter__(self) -> SyncLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fh: IO[str]) -> bool:
        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fh: IO[str]) -> None:
        with contextlib.suppress(OSError):
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fh: IO[str]) -> bool:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _unlock(fh: IO[str]) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
