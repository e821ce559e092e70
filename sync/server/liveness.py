"""A PostgreSQL connection taken from the pool is checked without a round trip to the server.

Why: SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` at every checkout, a round trip and a
statement for PostgreSQL at every request of every device. A backend that ended while its
connection sat idle in the pool (``pg_terminate_backend``, a server restart, PgBouncer closing
it) has sent its goodbye and closed the socket, so the socket is readable; an idle connection
otherwise has nothing to read. Such a connection is replaced before the request uses it, as a
failed ping would have replaced it. (Neither check notices a network that went silent: the
statement then fails as it would have after a successful ping.)
"""

from __future__ import annotations

import select
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError


def watch(engine: Engine) -> None:
    """Replace, at checkout, pooled connections whose server side has gone."""
    event.listen(engine, "checkout", _checkout)


def _checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    if not alive(dbapi_conn):
        raise DisconnectionError("the server closed this connection")


def alive(dbapi_conn: Any) -> bool:
    """False when a psycopg connection is closed or broken, or its idle socket is readable
    (the server's goodbye or end of file: nothing else arrives unasked, as no LISTEN is used)."""
    if dbapi_conn.closed or dbapi_conn.broken:
        return False
    try:
        readable, _, _ = select.select([dbapi_conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
