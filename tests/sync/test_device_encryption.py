"""A thief with the laptop: after a demo, an import, a sync with the real platform, a print
job and a crash with unsaved typing, no file in the data dir holds a resident's name, ID
number or phone in clear (its raw bytes are searched for every one of them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from app.core.store import Store
from app.core.vault import keys
from tests.e2e.test_cli import REPO, citizen, cli_env, gridcollect, write_csv
from tests.sync import devicekit
from tests.sync.devicekit import GRID_A, PASSWORD

db_url = devicekit.db_url  # fixture: SQLite only

CRASH = """
import os, signal, sys
from app.core.store import Store
store = Store.open(sys.argv[1])
store.autosave_put("editor-1", "resident", None, {"name": "司徒未存", "id_number": sys.argv[2],
                   "phone": "13912345678"})
os.kill(os.getpid(), signal.SIGKILL)  # the app dies with the form open
"""


def _personal_values(data: Path) -> set[str]:
    """Every name, ID number and phone the store holds (read through the key), autosaves too."""
    keys.forget()
    store = Store.open(data)
    try:
        values: set[str] = set()
        rows = [r.data for r in store.iter_records("resident")]
        rows += [a.data for a in store.autosaves()]
        for data_row in rows:
            for field in ("name", "id_number", "phone"):
                value = data_row.get(field)
                if isinstance(value, str) and len(value) >= 2:
                    values.add(value)
        return values
    finally:
        store.close()


def _spellings(value: str) -> list[bytes]:
    """The byte forms a value in clear would take: UTF-8, and UTF-16 when 6 bytes or more.
    A 2-character name is 4 bytes in UTF-16: a MB of ciphertext holds given 4 bytes by chance
    with odds of ~1 in 4,000, and the store holds dozens of such names (a run failed so, for
    付峰); every value of 6 bytes or more (each UTF-8 spelling, longer names, phones, ID
    numbers) still must not appear."""
    wide = value.encode("utf-16-le")
    return [value.encode("utf-8"), *([wide] if len(wide) >= 6 else [])]


def test_no_file_in_the_data_dir_holds_personal_data_in_clear(
    platform: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert gridcollect(data, "demo", "--size", "300").returncode == 0
    people = [citizen(n, 所属网格=GRID_A) for n in range(1, 41)]
    sheet = write_csv(tmp_path / "people.csv", people)
    imported = gridcollect(data, "import", "--form", "resident", sheet)
    assert imported.returncode == 0, imported.stderr
    password = tmp_path / "pw"
    password.write_text(PASSWORD + "\n", encoding="utf-8")
    password.chmod(0o600)
    synced = gridcollect(
        data, "sync", "--server", platform.url, "--user", "wang", "--password-file", password
    )
    assert synced.returncode in (0, 3), synced.stderr
    printed = gridcollect(data, "print", "--form", "resident", "--all", "--out", tmp_path / "a.pdf")
    assert printed.returncode == 0, printed.stderr
    crash = subprocess.run(
        [sys.executable, "-c", CRASH, str(data), people[0]["公民身份号码"]],
        env=cli_env(),
        cwd=REPO,
        capture_output=True,
    )
    assert crash.returncode == -9, crash.stderr
    values = _personal_values(data)  # also the crash restore: the autosave is still there
    assert "司徒未存" in values and {p["姓名"] for p in people} <= values
    assert len(values) > 300
    files = [p for p in data.rglob("*") if p.is_file()]
    for path in files:
        raw = path.read_bytes()
        leaked = [v for v in values if any(form in raw for form in _spellings(v))]
        assert not leaked, f"{path.name}: {len(leaked)} personal values in clear"
    names = {p.name for p in files}
    assert {"gridcollect.sqlite", "gridcollect.key"} <= names, names
    assert any(p.suffix == ".log" for p in files)
    assert json.loads((data / "gridcollect.key").read_text())["format"] == "gridcollect-key/1"
    assert all(os.stat(p).st_mode & 0o077 == 0 for p in files)
