"""Issue 15: the login throttle's promises, for any schedule of guesses (Hypothesis).

Driven through ``throttle.begin`` on a real SQLite platform file with a moving clock:
- a stranger's guesses are checked at most ``lock_after`` times in any 15 minutes;
- the user's own device (one that held a token of theirs) is never refused meanwhile;
- at the latest one lock period after the last guess, the user gets in from a new device.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert, select

from sync.server import db, throttle

START = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)
POLICY = throttle.ACCOUNT

# A schedule is bursts of guesses, each burst a number of guesses at one spacing (seconds):
# quick (a script), waiting out the delays, or pausing near a lockout's end or past the window.
_spacing = st.one_of(
    st.integers(0, 3),
    st.integers(0, 70),
    st.sampled_from([899, 900, 901, 1800]),
    st.integers(0, 2000),
)
_bursts = st.lists(st.tuples(st.integers(1, 25), _spacing), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("throttle") / "platform.db"
    eng = db.make_engine(f"sqlite:///{path}")
    db.init_db(eng)
    with db.write(eng) as conn:
        conn.execute(
            insert(db.tokens).values(
                token_hash="x" * 64,
                username="wang",
                device_id="wang-laptop",
                created_at="2026-01-01T00:00:00.000Z",
                expires_at="2026-02-01T00:00:00.000Z",
                revoked_at="2026-01-02T00:00:00.000Z",  # even an old, revoked login counts
            )
        )
    yield eng
    eng.dispose()


def checked(engine: Engine, device: str, address: str, now: dt.datetime) -> bool:
    """One guess: True when it got as far as the password check (counted as a failure)."""
    try:
        throttle.begin(engine, "wang", device, address, now)
    except throttle.Throttled as exc:
        assert exc.retry_after >= 1
        return False
    return True


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(bursts=_bursts, own_at=st.integers(0, 149))
def test_any_guessing_schedule_is_slowed_and_never_locks_the_user_out(
    engine: Engine, bursts: list[tuple[int, int]], own_at: int
) -> None:
    gaps = [gap for count, gap in bursts for _ in range(count)]
    with db.write(engine) as conn:
        conn.execute(delete(db.login_failures))
    now, times = START, []
    for i, gap in enumerate(gaps):
        now += dt.timedelta(seconds=gap)
        if checked(engine, "attacker-pc", "10.9.9.9", now):
            times.append(now)
        if i == own_at % len(gaps):  # the real user, from their own laptop, meanwhile
            attempt = throttle.begin(engine, "wang", "wang-laptop", "10.1.1.1", now)
            throttle.succeeded(engine, attempt, now)
    window = dt.timedelta(minutes=15)
    for start in times:
        assert sum(start <= t < start + window for t in times) <= POLICY.lock_after
    later = now + POLICY.lock
    assert checked(engine, "new-phone", "10.2.2.2", later)


def test_rows_nobody_failed_on_for_a_day_are_dropped(engine: Engine) -> None:
    with db.write(engine) as conn:
        conn.execute(delete(db.login_failures))
    for i in range(5):  # a sprayed list of names, each tried once
        checked(engine, "sprayer", f"10.3.0.{i}", START)
    later = START + throttle.FORGET + dt.timedelta(seconds=1)
    attempt = throttle.begin(engine, "wang", "wang-laptop", "10.1.1.1", later)
    throttle.succeeded(engine, attempt, later)
    with db.read(engine) as conn:
        f = db.login_failures.c
        rows = {r.key: r.failures for r in conn.execute(select(f.key, f.failures))}
    # only today's: the address (its failure given back) and the account, reset, not deleted
    # (the device's key once an earlier test gave wang-laptop a token on this engine)
    own = "device:wang-laptop" if "device:wang-laptop" in rows else "account:wang"
    assert rows == {"address:10.1.1.1": 0, own: 0}
