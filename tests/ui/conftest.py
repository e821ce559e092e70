"""UI test isolation: the app-wide language holder is reset after every test, so a test that
switches to English cannot leak into the next one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.ui.i18n import language


@pytest.fixture(autouse=True)
def _reset_language() -> Iterator[None]:
    yield
    language().set_lang("zh")
