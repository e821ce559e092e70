"""An import's reading and checking in a second process, streamed to the writing one.

An import is reading + checking the file, then the store's writes, and one process does them
one after the other on one core. Here a child process runs ``transfer.checked_stream`` (the
very function an import runs in-process: one implementation of every rule) and sends each
checked batch through a pipe while the importing process writes the one before: the wall time
becomes about the longer of the two instead of their sum.

The child is ``python -c`` importing this module, not ``multiprocessing``: it must not
import the app's main module (Qt) again, and a frozen app has no interpreter to start, so it
imports in-process (``pays``). A thread of the importing process reads the pipe as batches
arrive, so the child never waits for the writer.
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.core.forms import Form, FormSet
    from app.core.transfer import Checked, Head

# Below this file size an import checks in-process. The child costs ~0.3 s of wall before its
# first batch (an interpreter, the rules' imports, the 0.7 MB formset: 0.2 s of CPU) and saves
# at most the check, now ~16 us a row (the compiled batch validator), while pickling the
# checked batches costs the writer: ``bench_import.py`` measured the two-process import at
# 1.08x the in-process wall for 20 000 residents (2.7 MB) on a quiet machine, and
# ``--sizes 16000 32000 64000`` at 1.27x, 1.18x, 1.00x on a busy one (2026-12-07). 8 MB
# (~58 000 residents) is where it stops costing; it was 2 MB when the check was ~45 us a row.
MIN_BYTES = 8_000_000
# The child imports this very checkout's ``app`` first: not an ``app`` package in the working
# directory (``-m`` would look there first), not another installed copy.
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); from app.core.import_worker import main; main()"
)
_END = "end"
_RAISED = "raised"


def pays(path: str | Path, formset: FormSet, form: Form) -> bool:
    """Whether checking ``path`` in a second process pays: a big enough file, a core to spare,
    an interpreter to start, and ``form`` one of ``formset``'s (the child checks with it)."""
    if getattr(sys, "frozen", False) or formset.forms.get(form.id) is not form:
        return False
    try:
        return os.path.getsize(path) >= MIN_BYTES and spare_core()
    except OSError:  # reading it fails the same way in-process, with the usual message
        return False


def spare_core() -> bool:
    """A second core, not already busy where the load is known (on a machine running more
    than its cores, the child only takes turns with the writer: measured slower)."""
    cores = os.cpu_count() or 1
    if cores < 2:
        return False
    try:
        return os.getloadavg()[0] <= cores - 1
    except (AttributeError, OSError):  # Windows has no load average
        return True


def _proxy(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(items)


def _reduce_proxy(mapping: MappingProxyType[Any, Any]) -> tuple[Any, tuple[dict[Any, Any]]]:
    return _proxy, (dict(mapping),)


def _dumps(obj: object) -> bytes:
    """``obj`` pickled; forms hold read-only mappings, sent as their dicts."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, MappingProxyType: _reduce_proxy}
    pickler.dump(obj)
    return buffer.getvalue()


@contextmanager
def checked_in_worker(
    path: str | Path,
    form: Form,
    formset: FormSet,
    lang: str,
    today: date | None,
    batch: int,
) -> Iterator[Iterator[Head | Checked]]:
    """``transfer.checked_stream`` run in a child process: its messages, as they arrive.

    An exception of the child (a broken file's ``TableError``) is raised here when the
    messages reach it; leaving the block early (cancel, a failed write) stops the child."""
    request = _dumps((str(Path(path).absolute()), form, formset, lang, today, batch))
    child = subprocess.Popen(
        [sys.executable, "-c", _BOOT, str(Path(__file__).resolve().parents[2])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),  # no console flash on Windows
    )
    assert child.stdin is not None and child.stdout is not None
    inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
    reader = threading.Thread(target=_talk, args=(child, request, inbox), daemon=True)
    reader.start()
    try:
        yield _messages(inbox)
    finally:
        child.kill()
        child.wait()
        reader.join()
        child.stdin.close()
        child.stdout.close()


def _talk(child: subprocess.Popen[bytes], request: bytes, inbox: queue.Queue[Any]) -> None:
    """Send the request (the pipe holds 64 KiB: the writer must not wait for the child to
    start), then put the child's messages into ``inbox`` as they come (a dead child: an
    error)."""
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.write(request)
        child.stdin.close()
        while True:
            inbox.put(pickle.load(child.stdout))
    except EOFError:
        inbox.put((_RAISED, RuntimeError("the import's checking process ended early")))
    except Exception as exc:  # noqa: BLE001 - handed to the importing thread
        inbox.put((_RAISED, exc))


def _messages(inbox: queue.Queue[tuple[str, Any]]) -> Iterator[Head | Checked]:
    while True:
        kind, value = inbox.get()
        if kind == _END:
            return
        if kind == _RAISED:
            raise value
        yield value


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """The child's side: read the request, send each checked batch, then the end (or what
    was raised, for the importing process to raise)."""
    from app.core.transfer import checked_stream, gc_paused

    path, form, formset, lang, today, batch = pickle.load(inp)
    try:
        with gc_paused():  # the child holds the whole file: full collections walked it all
            for message in checked_stream(path, form, formset, lang, today, batch):
                out.write(_dumps(("message", message)))
                out.flush()
    except Exception as exc:  # noqa: BLE001 - raised again in the importing process
        out.write(_raised(exc))
    else:
        out.write(_dumps((_END, None)))
    out.flush()


def _raised(exc: Exception) -> bytes:
    """``exc`` for the importing process to raise (as a RuntimeError if it cannot travel)."""
    try:
        return _dumps((_RAISED, exc))
    except Exception:  # noqa: BLE001 - an exception that does not pickle
        return _dumps((_RAISED, RuntimeError(f"{type(exc).__name__}: {exc}")))


def main() -> None:
    """Entry point of the child; stdout carries only pickles (stray prints go to stderr)."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
