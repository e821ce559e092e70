"""Shared fixtures: the shipped form set and a fresh store in a temporary data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

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
