"""The device's record store: one SQLite file per data dir.

``store`` is the face (``Store``: saves with history and outbox, reads, autosave, grids);
``reads`` the queries, ``schema`` the tables and their migrations, ``derive`` the values kept
beside each record (natural keys, references, search terms), ``browse`` the lists and the
building/household views.
"""

from app.core.store.store import STATUS_FIELD, Grid, Store

__all__ = ["STATUS_FIELD", "Grid", "Store"]
