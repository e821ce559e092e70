"""The platform's web console (``/console``) and its JSON API (``/v1/console``).

``router()`` is everything the console adds to the platform app, as one ``APIRouter``; the
sync API's ``create_app`` includes it. See pages.py (HTML), api.py (JSON), queries.py (reads in
scope), overview.py (the overview's figures), actions.py (changes), sessions.py (login cookie, CSRF) and audit.py (the audit log).
"""

from __future__ import annotations

from fastapi import APIRouter


def router() -> APIRouter:
    """The console's pages and API, ready for ``app.include_router``."""
    from sync.server.console import api, dept_api, dept_pages, pages, task_pages, tasks_api

    combined = APIRouter()
    combined.include_router(task_pages.router)
    combined.include_router(pages.router)
    combined.include_router(dept_pages.router)
    combined.include_router(api.router)
    combined.include_router(tasks_api.router)
    combined.include_router(dept_api.router)
    return combined
