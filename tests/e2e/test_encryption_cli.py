"""The encrypted store from the command line, in real processes: a plaintext store migrated
while being killed with SIGKILL at random points, the passphrase refusals, a change of
passphrase, and the keyring for the unattended sync."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.core.store import Store, driver
from app.core.vault import keys
from tests.conftest import TEST_PASSPHRASE_FILE
from tests.e2e.test_cli import COMMAND, REPO, cli_env, gridcollect
from tests.factories import resident


def _passfile(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def plaintext_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A plaintext store of an older version with a few thousand records (its WAL kept)."""
    path = tmp_path_factory.mktemp("plain") / "gridcollect.sqlite"
    store = Store(path)
    rows = [(None, resident(seq=i % 1000, name=f"测试{i}"), "draft") for i in range(4000)]
    ids = store.insert_many("resident", rows, author="t")
    store.close()
    assert driver.is_plaintext(path)
    return path, sorted(ids)


def _copy_plain(source: Path, data: Path) -> None:
    data.mkdir()
    shutil.copy(source, data / "gridcollect.sqlite")


def _ids(data: Path) -> list[str]:
    keys.forget()
    store = Store.open(data)  # the test passphrase (tests/conftest.py)
    try:
        return sorted(r.id for r in store.iter_records("resident"))
    finally:
        store.close()


def test_migration_killed_at_random_points_leaves_a_store_with_every_record(
    plaintext_store: tuple[Path, list[str]], tmp_path: Path
) -> None:
    source, ids = plaintext_store
    first = tmp_path / "timing"
    _copy_plain(source, first)
    start = time.monotonic()
    done = gridcollect(first, "stats")
    full = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert driver.is_encrypted(first / "gridcollect.sqlite")
    rng = random.Random(15)
    outcomes = set()
    for trial in range(16):
        if trial >= 8 and len(outcomes) == 2:
            break  # both sides of the rename were hit; later trials only go on if the load hid one
        data = tmp_path / f"kill{trial}"
        _copy_plain(source, data)
        proc = subprocess.Popen(
            [*COMMAND, "--data-dir", str(data), "stats"],
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(full * (trial + rng.random()) / 8)  # spread over the whole run
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        db = data / "gridcollect.sqlite"
        outcomes.add("encrypted" if driver.is_encrypted(db) else "plaintext")
        assert driver.is_plaintext(db) or driver.is_encrypted(db), "neither old nor new store"
        assert _ids(data) == ids, f"trial {trial}"  # opens (resuming the migration) with all
        assert driver.is_encrypted(db)
        assert not (data / "gridcollect.sqlite.encrypting").exists()
    assert outcomes == {"plaintext", "encrypted"}, outcomes  # kills before and after the rename


def test_a_wrong_or_missing_passphrase_is_one_clear_line(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert gridcollect(data, "stats").returncode == 0
    bad = _passfile(tmp_path, "not the passphrase", "bad")
    wrong = gridcollect(data, "--passphrase-file", bad, "stats")
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == f"口令文件 {bad} 中的口令不正确。"
    env = {k: v for k, v in cli_env("en").items() if k != "GRIDCOLLECT_PASSPHRASE_FILE"}
    none = subprocess.run(
        [*COMMAND, "--data-dir", str(data), "stats"], env=env, capture_output=True, text=True
    )
    assert none.returncode == 2 and len(none.stderr.strip().splitlines()) == 1
    assert "needs its passphrase" in none.stderr and "--passphrase-file" in none.stderr
    bad.chmod(0o644)
    loose = gridcollect(data, "--passphrase-file", bad, "stats", lang="en")
    assert loose.returncode == 2 and len(loose.stderr.strip().splitlines()) == 1
    assert "readable or writable by other users" in loose.stderr


def test_passphrase_change_reencrypts_nothing_and_only_the_new_one_opens(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert gridcollect(data, "demo", "--size", "60").returncode == 0
    db = data / "gridcollect.sqlite"
    before = db.read_bytes()
    new = _passfile(tmp_path, "新的口令 new passphrase", "new")
    changed = gridcollect(data, "passphrase", "change", "--new-passphrase-file", new)
    assert changed.returncode == 0, changed.stderr
    assert "口令已更换" in changed.stdout
    assert db.read_bytes() == before
    assert gridcollect(data, "stats").returncode == 2  # the old one no longer opens
    assert gridcollect(data, "--passphrase-file", new, "stats").returncode == 0


def test_demo_without_a_passphrase_writes_a_private_demo_file_and_says_so(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in cli_env().items() if k != "GRIDCOLLECT_PASSPHRASE_FILE"}
    data = tmp_path / "demo"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*COMMAND, "--data-dir", str(data), *args], env=env, capture_output=True, text=True
        )

    made = run("demo", "--size", "60")
    assert made.returncode == 0, made.stderr
    assert "demo-passphrase" in made.stderr and "gridcollect passphrase change" in made.stderr
    assert (data / "demo-passphrase").stat().st_mode & 0o777 == 0o600
    assert run("stats").returncode == 0  # ./dev run: the demo dir opens without a prompt


def test_keyring_on_lets_the_nightly_sync_open_the_store_without_a_passphrase(
    tmp_path: Path,
) -> None:
    data = tmp_path / "d"
    assert gridcollect(data, "stats").returncode == 0
    env = cli_env() | {
        "PYTHON_KEYRING_BACKEND": "tests.keyringkit.FileKeyring",
        "GRIDCOLLECT_TEST_KEYRING": str(tmp_path / "keyring.json"),
        "PYTHONPATH": str(REPO),
    }

    def run(*args: str, passphrase: bool = True) -> subprocess.CompletedProcess[str]:
        run_env = (
            env
            if passphrase
            else {k: v for k, v in env.items() if k != "GRIDCOLLECT_PASSPHRASE_FILE"}
        )
        return subprocess.run(
            [sys.executable, "-m", "app", "--data-dir", str(data), *args],
            env=run_env,
            capture_output=True,
            text=True,
            cwd=REPO,
        )

    assert run("stats", passphrase=False).returncode == 2
    on = run("passphrase", "keyring", "on")
    assert on.returncode == 0, on.stderr
    assert run("stats", passphrase=False).returncode == 0
    assert TEST_PASSPHRASE_FILE.read_text(encoding="utf-8").strip() not in (
        tmp_path / "keyring.json"
    ).read_text(encoding="utf-8")
    assert run("passphrase", "keyring", "off").returncode == 0
    assert run("stats", passphrase=False).returncode == 2
    assert os.environ.get("PYTHON_KEYRING_BACKEND") == "keyring.backends.fail.Keyring"


def test_the_default_kdf_is_slow_on_purpose() -> None:
    """One guess costs a full scrypt run with 128 MiB (OWASP's floor)."""
    from app.core.vault.keyfile import DEFAULT_KDF

    assert DEFAULT_KDF["n"] * DEFAULT_KDF["r"] * 128 >= 128 * 1024 * 1024


def test_a_stale_environment_file_falls_through_to_the_keyring_but_a_given_one_is_refused(
    tmp_path: Path,
) -> None:
    """The nightly sync's environment names a passphrase file from before a change; the keyring
    is on: the sync opens the store through the keyring. The same file given with
    --passphrase-file is refused in one line naming it, and `passphrase change` (which needs
    the current passphrase, not the keyring's secret) names the variable and the file."""
    data = tmp_path / "d"
    stale = _passfile(tmp_path, "the passphrase before the change", "stale")
    env = cli_env() | {
        "PYTHON_KEYRING_BACKEND": "tests.keyringkit.FileKeyring",
        "GRIDCOLLECT_TEST_KEYRING": str(tmp_path / "keyring.json"),
        "PYTHONPATH": str(REPO),
    }

    def run(
        *args: str | Path, passphrase_env: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        run_env = (
            env
            if passphrase_env is None
            else env | {"GRIDCOLLECT_PASSPHRASE_FILE": str(passphrase_env)}
        )
        return subprocess.run(
            [sys.executable, "-m", "app", "--data-dir", str(data), *map(str, args)],
            env=run_env,
            capture_output=True,
            text=True,
            cwd=REPO,
        )

    assert run("passphrase", "keyring", "on").returncode == 0  # sets up, then the keyring
    through = run("stats", passphrase_env=stale)
    assert through.returncode == 0, through.stderr
    given = run("--passphrase-file", stale, "stats", passphrase_env=stale)
    assert given.returncode == 2 and len(given.stderr.strip().splitlines()) == 1
    assert str(stale) in given.stderr and "口令不正确" in given.stderr
    new = _passfile(tmp_path, "a new passphrase 2026", "new")
    change = run("passphrase", "change", "--new-passphrase-file", new, passphrase_env=stale)
    assert change.returncode == 2 and len(change.stderr.strip().splitlines()) == 1
    assert str(stale) in change.stderr and "GRIDCOLLECT_PASSPHRASE_FILE" in change.stderr
