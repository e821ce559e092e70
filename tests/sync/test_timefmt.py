"""The console's time display (``console.timefmt.when``): stored UTC shown in the platform's
zone, to the minute; what is no time is shown as it is."""

from __future__ import annotations

import pytest

from sync.server.console.timefmt import when


def test_a_stored_time_is_shown_in_the_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRIDCOLLECT_TZ", raising=False)
    assert when("2026-12-07T23:34:30.889Z") == "2026-12-08 07:34"  # the next day in Beijing
    assert when("2026-12-07T23:34:30") == "2026-12-08 07:34"  # no zone written: UTC
    monkeypatch.setenv("GRIDCOLLECT_TZ", "UTC")
    assert when("2026-12-07T23:34:30.889Z") == "2026-12-07 23:34"
    monkeypatch.setenv("GRIDCOLLECT_TZ", "Mars/Olympus")  # mistyped: the default, not an error
    assert when("2026-12-07T23:34:30Z") == "2026-12-08 07:34"


@pytest.mark.parametrize("value", [None, "", "2030-12-31", "not a Time", 7])
def test_what_is_no_time_is_shown_as_it_is(value: object) -> None:
    assert when(value) == ("" if value is None else str(value))
