"""Shared fixtures: the shipped form set and a fresh store in a temporary data dir."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

# No per-example deadline: it is a wall-clock assertion, and on a loaded 2-core machine a plain
# encode took 424 ms once (test_qrpayload). Speed is the benches' business (tests/bench).
# On CI (a clean clone, `CI=true`) examples are derandomized, so a run is repeatable and a red
# run names the change that caused it; local runs keep exploring new examples.
settings.register_profile("gridcollect", deadline=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("gridcollect")

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Encrypted data dirs (the CLI's and the app's) unlock from this 0600 file, in this process and
# in the `gridcollect` subprocesses tests start; tests of a missing passphrase remove the variable.
TEST_PASSPHRASE = "测试口令 test passphrase 2026"
_passphrase_dir = Path(tempfile.mkdtemp(prefix="gridcollect-test-passphrase-"))
TEST_PASSPHRASE_FILE = _passphrase_dir / "passphrase"
TEST_PASSPHRASE_FILE.write_text(TEST_PASSPHRASE + "\n", encoding="utf-8")
TEST_PASSPHRASE_FILE.chmod(0o600)
os.environ["GRIDCOLLECT_PASSPHRASE_FILE"] = str(TEST_PASSPHRASE_FILE)
# Never the developer's own OS keyring: keyring tests point this at a file (tests/keyringkit).
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

from app.core.forms import FormSet, load_formset  # noqa: E402
from app.core.store import Store  # noqa: E402


@pytest.fixture(scope="session")
def formset() -> FormSet:
    return load_formset()


@pytest.fixture
def store(tmp_path: Path, formset: FormSet) -> Store:
    s = Store(tmp_path / "gridcollect.sqlite", formset)
    yield s
    s.close()
