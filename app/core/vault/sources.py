"""Where a passphrase comes from without a person typing it: a strict file, the environment,
the data dir's demo file; and the rules a new passphrase must meet.

Why refuse a file other users can read or write: the passphrase is the only thing between a
copied laptop disk and the residents' data, and a world-writable file lets another account
swap in its own passphrase for the next setup.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from app.core.vault import keyfile, perms
from app.core.vault.texts import TEXTS

ENV_VAR = "GRIDCOLLECT_PASSPHRASE_FILE"
DEMO_FILE = "demo-passphrase"
MIN_LENGTH = 8


class PassphraseError(Exception):
    """A passphrase cannot be had or used; ``text(lang)`` says what to fix."""

    def __init__(self, key: str, **params: str | int) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def text(self, lang: str | None) -> str:
        return TEXTS.text(self.key, lang, **self.params)


def key_file_problem(exc: keyfile.KeyFileError, path: Path) -> PassphraseError:
    """The error for a key file that cannot be used: a missing one is to be restored (the
    store is encrypted under it), any other is damaged or not ours."""
    return PassphraseError(
        "key_file_missing" if str(exc) == "missing" else "key_file_bad", path=str(path)
    )


def read_file(path: str | os.PathLike[str]) -> str:
    """The first line of a passphrase file that only its owner can read and write."""
    file = Path(path).expanduser()
    try:
        if perms.open_to_others(file):
            raise PassphraseError("file_open_to_others", path=str(file))
        lines = file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PassphraseError("file_unreadable", path=str(file)) from exc
    if not lines or not lines[0]:
        raise PassphraseError("file_unreadable", path=str(file))
    return lines[0]


@dataclass(frozen=True)
class Found:
    """A passphrase and the file it came from, so a wrong one is reported by its source."""

    passphrase: str
    path: Path
    origin: str  # "explicit" (--passphrase-file), "env" ($GRIDCOLLECT_PASSPHRASE_FILE), "demo"

    def wrong(self) -> PassphraseError:
        """The error for this source's passphrase not opening the key file."""
        if self.origin == "env":
            return PassphraseError("wrong_env", path=str(self.path), var=ENV_VAR)
        return PassphraseError("wrong_file", path=str(self.path))


def _found(path: str | os.PathLike[str], origin: str) -> Found:
    return Found(read_file(path), Path(path).expanduser(), origin)


def explicit_file(explicit: str | os.PathLike[str] | None) -> Found | None:
    """The passphrase from ``--passphrase-file``, if given."""
    return _found(explicit, "explicit") if explicit else None


def env_file() -> Found | None:
    """The passphrase from ``$GRIDCOLLECT_PASSPHRASE_FILE``, if set."""
    path = os.environ.get(ENV_VAR)
    return _found(path, "env") if path else None


def demo_found(data_dir: Path) -> Found | None:
    """The demo data dir's passphrase, if ``gridcollect demo`` made one here."""
    path = demo_file(data_dir)
    return _found(path, "demo") if path.exists() else None


def given(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """The passphrase from ``--passphrase-file`` or else ``$GRIDCOLLECT_PASSPHRASE_FILE``."""
    found = explicit_file(explicit) or env_file()
    return found.passphrase if found else None


def demo_file(data_dir: Path) -> Path:
    """Where ``gridcollect demo`` keeps the demo data dir's passphrase (0600)."""
    return data_dir / DEMO_FILE


def demo_passphrase(data_dir: Path) -> str | None:
    """The demo data dir's passphrase, if ``gridcollect demo`` made one here."""
    path = demo_file(data_dir)
    return read_file(path) if path.exists() else None


def make_demo_passphrase(data_dir: Path) -> str:
    """A random passphrase for a demo data dir, written 0600 beside the store."""
    passphrase = secrets.token_urlsafe(18)
    perms.write_private(demo_file(data_dir), (passphrase + "\n").encode("ascii"))
    return passphrase


def check_new(passphrase: str) -> PassphraseError | None:
    """Why a new passphrase cannot be used, or None (counted in the form its key derives
    from: an NFD "é" is one character, as the worker sees it)."""
    if len(keyfile.normalised(passphrase)) < MIN_LENGTH:
        return PassphraseError("too_short", min=MIN_LENGTH)
    return None


def strength(passphrase: str) -> str:
    """A hint for the setup dialog: "weak", "fair" or "good" (length and kinds of characters),
    rated on the form the key derives from (full-width letters are letters, not symbols)."""
    passphrase = keyfile.normalised(passphrase)
    kinds = sum(
        (
            any(c.islower() for c in passphrase),
            any(c.isupper() for c in passphrase),
            any(c.isdigit() for c in passphrase),
            any(not c.isascii() or not c.isalnum() for c in passphrase),
        )
    )
    if len(passphrase) < MIN_LENGTH or (len(passphrase) < 12 and kinds < 3):
        return "weak"
    if len(passphrase) >= 16 or (len(passphrase) >= 12 and kinds >= 3):
        return "good"
    return "fair"
