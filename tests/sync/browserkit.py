"""Playwright for Python on Debian's ``chromium`` (Playwright's own browser download is not
available here): where the binary is, and a headless browser for console tests and
screenshots."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str | None:
    """``$GRIDCOLLECT_CHROMIUM``, else Debian's binary (the real one, not the wrapper script)."""
    given = os.environ.get("GRIDCOLLECT_CHROMIUM")
    if given:
        return given
    for path in CANDIDATES:
        if Path(path).exists():
            return path
    return shutil.which("chromium")


def launch(playwright: Any) -> Any:
    """A headless Chromium; ``--no-sandbox`` only when running as root (a container)."""
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=args)
