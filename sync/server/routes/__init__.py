"""The sync API's routes, one ``APIRouter`` per concern (PROTOCOL.md): ``sync`` (info, push,
pull), ``auth`` (login, logout, revoking tokens), ``records`` (one record by id) and ``reviews``
(possible duplicates and transfer claims). ``app.create_app`` includes them; routes read the
engine, the service and the token key from ``app.state`` (see ``deps``), so a router holds no
state of its own. New concerns (the console, tasks, department access) add their own router.
"""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """The sync API's routers, ready for ``app.include_router``."""
    from sync.server.routes import auth, dept, records, reviews, sync

    return [sync.router, auth.router, records.router, reviews.router, dept.router]
