"""Where GridCollect keeps its data.

The data dir holds one SQLite file per device (``gridcollect.sqlite``) plus drafts, logs and
settings. Precedence: an explicit ``--data-dir``, then ``GRIDCOLLECT_DATA_DIR``, then the
platform's per-user data dir (platformdirs), so a scheduler and the GUI agree by default.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_VAR = "GRIDCOLLECT_DATA_DIR"
APP_NAME = "GridCollect"
DB_NAME = "gridcollect.sqlite"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the data dir and create it if needed."""
    if explicit:
        path = Path(explicit)
    elif os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR])
    else:
        path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path = path.expanduser().resolve()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner only: residents' data
    return path


def db_path(directory: str | os.PathLike[str] | None = None) -> Path:
    """The store file inside the data dir."""
    return data_dir(directory) / DB_NAME


def log_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """Logs live beside the data, never in the working directory."""
    path = data_dir(directory) / "logs"
    path.mkdir(mode=0o700, exist_ok=True)
    return path
