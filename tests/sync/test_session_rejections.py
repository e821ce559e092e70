"""A bad op in a push batch is answered once and the rest of the batch goes on (issue 10,
item 2). The server refuses a whole batch for its first bad op (PROTOCOL.md §2); resending the
whole batch after each one made the traffic grow with the square of the bad ops."""

from __future__ import annotations

from typing import Any

import pytest

from sync import replica
from tests.factories import resident
from tests.sync import devicekit

db_url = devicekit.db_url  # fixture: SQLite only, the subject is the client
devices = devicekit.devices  # fixture


def _count_pushes(dev: Any) -> list[list[str]]:
    """The op ids of every push request the device sends, in order."""
    sent: list[list[str]] = []
    real = dev.client.push

    def push(ops: Any) -> Any:
        sent.append([op["op_id"] for op in ops])
        return real(ops)

    dev.client.push = push
    return sent


def _fill(dev: Any, total: int, bad_every: int) -> set[str]:
    """``total`` new records; every ``bad_every``-th carries a value the server refuses
    (an object in a text field: 422 bad_value). Returns the bad records' ids."""
    bad: set[str] = set()
    for i in range(total):
        if i % bad_every == bad_every - 1:
            record = dev.save("house", {"address_text": {"not": "text"}, "grid": devicekit.GRID_A})
            bad.add(record.id)
        else:
            dev.save("resident", resident(seq=(2 * i + 1) % 1000, name="张三"))
    return bad


@pytest.mark.parametrize(("total", "bad_every"), [(100, 10), (60, 1)])
def test_bad_ops_are_answered_once_and_the_rest_is_sent_once_more_at_most(
    devices: Any, total: int, bad_every: int
) -> None:
    (dev,) = devices(1)
    bad = _fill(dev, total, bad_every)
    sent = _count_pushes(dev)
    summary = dev.sync(batch=total)
    good = total - len(bad)
    assert (summary.applied, summary.rejected) == (good, len(bad)), summary
    rejected = replica.rejected_ops(dev.store)
    assert {r["record_id"] for r in rejected} == bad
    assert {r["result"]["reason"]["code"] for r in rejected} == {"bad_value"}
    # Each op is sent a bounded number of times: the traffic is linear in the bad ops.
    # Resending the whole batch after each bad op sent 1045 ops for (100, 10), 1830 for (60, 1).
    ops_sent = sum(len(ids) for ids in sent)
    assert ops_sent <= 4 * total, (ops_sent, len(sent))
    assert len(sent) <= 3 * len(bad) + 2, len(sent)
    # ...and every good op is applied once (nothing re-applied, no duplicate_op)
    states = dev.store.conn.execute("SELECT state, result FROM outbox").fetchall()
    assert sum(1 for s, r in states if s == "applied" and '"status":"applied"' in r) == good
