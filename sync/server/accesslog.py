"""The server's access log line (``--access-log``, on by default), written cheaper.

Why: uvicorn's ``AccessFormatter`` copies each record twice, formats the message it then
does not use and looks the status phrase up anew: ~2 % of the server's CPU on a night of
nightly syncs (py-spy --gil, tests/bench/bench_fixed_costs.py), for one line per request.
Without colours (a file or a pipe: how a server runs) this formatter writes the same line
directly; with colours, another format or an exception it is uvicorn's. Equal to uvicorn's by
a property test (tests/sync/test_push_lean.py), but for the query's values: those are left out
(``redacted``), since the console's search puts what was searched — a name, an ID number, a
phone — in the URL, and no log line may hold a personal value (docs/SECURITY.md).
"""

from __future__ import annotations

import http
import logging
import re
from functools import cache

from uvicorn.logging import AccessFormatter as UvicornAccessFormatter

FORMAT = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'  # uvicorn's


class AccessFormatter(UvicornAccessFormatter):
    """uvicorn's access formatter, its plain line written in one f-string."""

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if not isinstance(args, tuple) or len(args) != 5:
            return super().format(record)
        client_addr, method, full_path, http_version, status_code = args
        if "?" in str(full_path):
            full_path = redacted(str(full_path))
        if (
            self.use_colors
            or self._fmt != FORMAT
            or record.exc_info
            or record.exc_text
            or record.stack_info
        ):
            if full_path is not args[2]:  # a copy: other handlers may see the record too
                shown = (client_addr, method, full_path, http_version, status_code)
                record = logging.makeLogRecord({**record.__dict__, "args": shown})
            return super().format(record)
        level = record.levelname
        return (
            f"{level}:{' ' * (8 - len(level))} {client_addr!s} - "
            f'"{method!s} {full_path!s} HTTP/{http_version!s}" {_status(int(status_code))}'  # type: ignore[call-overload]
        )


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,39}")


def redacted(full_path: str) -> str:
    """A request line's path with its query's values left out (``/console/records?q=*``): the
    names of the parameters stay when they are plain names, never a value."""
    path, _, query = full_path.partition("?")
    names = []
    for part in query.split("&"):
        name, eq, _value = part.partition("=")
        if _NAME.fullmatch(name):
            names.append(f"{name}=*" if eq else name)
        elif part:
            names.append("*")
    return f"{path}?{'&'.join(names)}"


@cache
def _status(code: int) -> str:
    """``AccessFormatter.get_status_code`` without colours, once per code."""
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    return f"{code} {phrase}"
