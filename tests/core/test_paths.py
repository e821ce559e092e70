"""The data dir: --data-dir beats the environment variable, which beats platformdirs."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from app.core import paths


def test_explicit_dir_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path / "env"))
    assert paths.data_dir(tmp_path / "explicit") == (tmp_path / "explicit").resolve()
    assert (tmp_path / "explicit").is_dir()


def test_environment_variable_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path / "env"))
    assert paths.db_path() == (tmp_path / "env" / paths.DB_NAME).resolve()


def test_platform_dir_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda *a, **k: str(tmp_path / "platform"))
    assert paths.data_dir() == (tmp_path / "platform").resolve()
    assert paths.log_dir().parent == (tmp_path / "platform").resolve()
