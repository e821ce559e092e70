"""A keyring backend in a JSON file, so keyring tests never touch the developer's own keyring
and a `gridcollect` subprocess sees what the test process stored.

Use: ``PYTHON_KEYRING_BACKEND=tests.keyringkit.FileKeyring`` and ``GRIDCOLLECT_TEST_KEYRING`` =
the file (the subprocess needs the repo on PYTHONPATH); in-process ``use(path)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keyring
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

ENV = "GRIDCOLLECT_TEST_KEYRING"


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def _path(self) -> Path:
        return Path(os.environ[ENV])

    def _load(self) -> dict[str, str]:
        try:
            return json.loads(self._path().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load() | {f"{service}/{username}": password}
        self._path().write_text(json.dumps(data), encoding="utf-8")

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError(username)
        self._path().write_text(json.dumps(data), encoding="utf-8")


def use(path: Path) -> None:
    """Point this process's keyring at ``path``."""
    os.environ[ENV] = str(path)
    keyring.set_keyring(FileKeyring())
