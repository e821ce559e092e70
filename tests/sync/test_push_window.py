"""Push batches sized from the server's limits (PROTOCOL.md §3): as many ops per request as
``GET /v1/info`` says the server takes (``limits.max_ops``, at most 1000), so a 10 k push is
10 requests and 10 server transactions instead of 20; a server that takes fewer gets fewer."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from sync.client import Client
from tests.factories import resident
from tests.sync import devicekit

db_url = devicekit.db_url  # fixture: SQLite only, the subject is the client
devices = devicekit.devices  # fixture


def _fill(dev: Any, count: int) -> None:
    """``count`` distinct residents (distinct ID numbers) typed on the device."""
    rows = [
        resident(birth=dt.date(1950, 1, 1) + dt.timedelta(days=i // 400), seq=2 * (i % 400) + 1)
        for i in range(count)
    ]
    dev.store.insert_many("resident", [(None, r, "draft") for r in rows], author=dev.user)


def _batches(dev: Any) -> list[int]:
    """The number of ops of every push request the device sends, in order."""
    sent: list[int] = []
    real = dev.client.push

    def push(ops: Any, *rest: Any) -> Any:
        sent.append(len(ops))
        return real(ops, *rest)

    dev.client.push = push
    return sent


def test_a_push_sends_as_many_ops_per_request_as_the_server_takes(devices: Any) -> None:
    (dev,) = devices(1)
    _fill(dev, 1500)
    sent = _batches(dev)
    summary = dev.sync()
    assert summary.applied == 1500
    assert sent == [1000, 500]


def test_a_server_that_takes_fewer_ops_gets_smaller_batches(
    devices: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (dev,) = devices(1)
    real = Client.info

    def info(self: Client) -> Any:
        answer = real(self)
        answer.limits.max_ops = 300
        return answer

    monkeypatch.setattr(Client, "info", info)
    dev.client.info()
    _fill(dev, 700)
    sent = _batches(dev)
    assert dev.sync().applied == 700
    assert sent == [300, 300, 100]
    assert dev.sync(batch=50).pushed == 0  # nothing left; an asked-for batch is still honoured
