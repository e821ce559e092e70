"""Nothing outside the caller's scope shows in the answers to the caller (issue 10 item 8).

A worker must not learn whether an ID number is registered in another grid, nor the form or
version of a record outside the scope. A create whose key another grid holds is stored and
answered like any create, and becomes a transfer claim (迁入/迁出) for the supervisors of both
grids; their decision reaches the worker's device with the next sync.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.forms import FormSet
from app.core.ids import uuid7
from sync import replica
from sync.client import Client, ProtocolError, Retry
from sync.server import admin
from tests.factories import id_number, resident
from tests.sync.conftest import GRID_A, GRID_B, GRID_C, OTHER_COMMUNITY, PASSWORD, Platform
from tests.sync.devicekit import make_device

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def person(grid: str, seq: int, **extra: Any) -> dict[str, Any]:
    return {**resident(grid=grid, seq=seq), "_status": "complete", **extra}


def shape(result: dict[str, Any]) -> str:
    """A result with its ids and op id blanked: what may differ between two candidates."""
    text = repr({k: v for k, v in result.items() if k != "op_id"})
    return _UUID.sub("<id>", text)


# -- the oracle ------------------------------------------------------------------------------


def test_a_create_does_not_tell_whether_another_grid_holds_the_number(
    platform: Platform,
) -> None:
    """Regression: one push of candidates found the number registered in grid B (the only
    ``out_of_scope`` among ``applied``/``invalid`` answers)."""
    li, wang = platform.client("li"), platform.client("wang")
    secret = id_number(seq=257)
    li.push([li.op(uuid7(), "create", person(GRID_B, 257, id_number=secret))])
    candidates = [id_number(seq=s) for s in range(201, 301, 2)]
    assert secret in candidates
    for extra in ({}, {"ethnicity": ""}):  # complete and valid / complete and invalid
        ops = [
            wang.op(uuid7(), "create", person(GRID_A, 257, id_number=n, **extra))
            for n in candidates
        ]
        results = wang.push(ops)
        shapes = {shape(r) for r in results}
        assert len(shapes) == 1, shapes
        assert results[0]["status"] == ("applied" if not extra else "rejected")


def test_an_update_does_not_tell_whether_another_grid_holds_the_number(
    platform: Platform,
) -> None:
    """Changing a record's number to one held outside the scope was a ``duplicate_key``."""
    li, wang = platform.client("li"), platform.client("wang")
    secret, free = id_number(seq=171), id_number(seq=173)
    li.push([li.op(uuid7(), "create", person(GRID_B, 171, id_number=secret))])
    mine = [uuid7(), uuid7()]
    wang.push([wang.op(rid, "create", person(GRID_A, 175 + 2 * i)) for i, rid in enumerate(mine)])
    held, unheld = wang.push(
        [
            wang.op(mine[0], "update", {"id_number": secret}, base_version=1),
            wang.op(mine[1], "update", {"id_number": free}, base_version=1),
        ]
    )
    assert shape(held) == shape(unheld)
    assert held["status"] == "applied" and held["version"] == 2


def test_scope_is_checked_before_form_and_version(platform: Platform) -> None:
    """A record outside the scope answers ``out_of_scope`` whatever form or version the op
    names: ``wrong_form`` and ``base_ahead`` told its form and version."""
    li, wang = platform.client("li"), platform.client("wang")
    theirs = uuid7()
    li.push([li.op(theirs, "create", person(GRID_B, 181))])
    answers = set()
    for form, base in (("resident", 1), ("resident", 9), ("house", 1), ("unit", None)):
        resp = wang.push_raw([wang.op(theirs, "update", {}, base_version=base, form=form)])
        answers.add((resp.status_code, resp.json()["error"]["code"]))
    assert answers == {(403, "out_of_scope")}


# -- transfer claims, end to end -----------------------------------------------------------------


def _client(platform: Platform, user: str) -> Client:
    client = Client(platform.url, f"dev-{user}-{uuid7()}", retry=Retry(attempts=1))
    client.login(user, PASSWORD)
    return client


@pytest.fixture
def moved(platform: Platform, tmp_path: Path, formset: FormSet) -> Iterator[dict[str, Any]]:
    """Zhao (grid C, another community) registered a person; the person moved to grid A and
    wang registers them again on his laptop. Both devices synced."""
    admin.put_user(platform.engine, "sun", PASSWORD, "supervisor", community=OTHER_COMMUNITY)
    zhao = make_device(platform.url, tmp_path, formset, "zhao")
    wang = make_device(platform.url, tmp_path, formset, "wang")
    number = id_number(seq=191)
    old = zhao.save("resident", resident(grid=GRID_C, seq=191, id_number=number), status="complete")
    zhao.sync()
    new_data = resident(grid=GRID_A, seq=191, id_number=number, phone="13911112222")
    new = wang.save("resident", new_data, status="complete")
    summary = wang.sync()
    bosses = {name: _client(platform, name) for name in ("chen", "sun")}
    try:
        yield {
            "zhao": zhao,
            "wang": wang,
            "old": old.id,
            "new": new.id,
            "summary": summary,
            **bosses,
        }
    finally:
        for device in (zhao, wang):
            device.close()
        for client in bosses.values():
            client.close()


def _claim(moved: dict[str, Any], who: str) -> Any:
    [item] = [r for r in moved[who].reviews().reviews if r.kind == "transfer"]
    return item


def test_a_transfer_claim_waits_like_any_create_and_both_supervisors_see_it(
    moved: dict[str, Any], platform: Platform
) -> None:
    summary, wang = moved["summary"], moved["wang"]
    assert (summary.applied, summary.rejected) == (1, 0)
    record = wang.get(moved["new"])
    assert record.server_version == 1 and not record.conflict
    for who in ("chen", "sun"):
        item = _claim(moved, who)
        assert (item.record_id, item.other_id, item.state) == (moved["new"], moved["old"], "open")
        assert (item.grid, item.other_grid, item.reason) == (GRID_A, GRID_C, "transfer")
    with pytest.raises(ProtocolError) as err:  # workers see no reviews at all
        wang.client.reviews()
    assert err.value.code == "forbidden"
    li = platform.client("li")  # a worker of neither grid cannot decide it either
    resp = li.http.post(
        f"{platform.url}/v1/reviews/{_claim(moved, 'chen').id}",
        json={"decision": "same"},
        headers=li.headers,
        timeout=30,
    )
    assert resp.status_code == 403


def test_an_accepted_transfer_moves_the_person_and_reaches_both_devices(
    moved: dict[str, Any],
) -> None:
    wang, zhao, old, new = moved["wang"], moved["zhao"], moved["old"], moved["new"]
    outcome = moved["sun"].decide_review(_claim(moved, "sun").id, "same")  # the old grid's
    assert outcome.merged_into == old and outcome.review.state == "same"
    assert moved["chen"].reviews().reviews == []

    summary = wang.sync()
    assert summary.aliases == 1
    assert wang.store.get(new) is None  # the device's id now names the canonical record
    record = wang.get(old)
    assert record.data["grid"] == GRID_A and record.data["phone"] == "13911112222"
    assert record.server_version == 2 and not record.deleted

    assert zhao.sync().removed == 1  # the old grid's worker no longer has the person
    assert zhao.store.get(old) is None


def test_a_rejected_transfer_is_flagged_on_the_workers_device(moved: dict[str, Any]) -> None:
    wang, zhao, old, new = moved["wang"], moved["zhao"], moved["old"], moved["new"]
    outcome = moved["chen"].decide_review(_claim(moved, "chen").id, "different")
    assert outcome.merged_into is None and outcome.review.state == "different"

    summary = wang.sync()
    assert summary.open_conflicts == 1
    record = wang.get(new)
    assert record.server_version == 2 and record.data["id_number"] == id_number(seq=191)
    flags = {c["field"]: c for c in record.conflict or []}
    assert set(flags) == {"id_type", "id_number"}  # the key's fields: the worker checks them
    assert flags["id_number"]["note"] == "transfer_rejected"
    assert flags["id_number"]["mine"] == id_number(seq=191)
    assert wang.store.count("resident", conflict=True) == 1

    zhao.sync()
    kept = zhao.get(old)
    assert kept.data["grid"] == GRID_C and kept.server_version == 1

    # Keeping the number (resolving the flag with it) asks the supervisors again.
    replica.resolve(
        wang.store, new, {"id_type": "111", "id_number": id_number(seq=191)}, author="wang"
    )
    wang.sync()
    assert not wang.get(new).conflict
    item = _claim(moved, "sun")
    assert (item.record_id, item.state) == (new, "open")


def test_a_claim_stands_where_the_holder_would(platform: Platform) -> None:
    """Wang's claimant holds no key (grid B does), yet his next record with the number merges
    into it and an update to the number is a ``duplicate_key`` naming it: as without grid B."""
    li, wang = platform.client("li"), platform.client("wang")
    number = id_number(seq=211)
    li.push([li.op(uuid7(), "create", person(GRID_B, 211, id_number=number))])
    first, second, third = uuid7(), uuid7(), uuid7()
    wang.push([wang.op(first, "create", person(GRID_A, 211, id_number=number))])
    (merged,) = wang.push([wang.op(second, "create", person(GRID_A, 211, id_number=number))])
    assert (merged["status"], merged["merged_into"]) == ("merged_into", first)
    wang.push([wang.op(third, "create", person(GRID_A, 213))])
    (dup,) = wang.push([wang.op(third, "update", {"id_number": number}, base_version=1)])
    assert dup["reason"]["code"] == "duplicate_key" and dup["reason"]["other_id"] == first


def test_the_holder_stays_editable_while_a_claim_waits(platform: Platform) -> None:
    """A supervisor who sees both records may still edit the holder (and create the person
    again in its grid: merged into the holder), the claimant does not make it a duplicate."""
    li, wang, chen = platform.client("li"), platform.client("wang"), platform.client("chen")
    number = id_number(seq=221)
    holder = uuid7()
    li.push([li.op(holder, "create", person(GRID_B, 221, id_number=number))])
    wang.push([wang.op(uuid7(), "create", person(GRID_A, 221, id_number=number))])
    (edit,) = chen.push([chen.op(holder, "update", {"phone": "13911110000"}, base_version=1)])
    assert (edit["status"], edit["version"]) == ("applied", 2)
    (again,) = chen.push([chen.op(uuid7(), "create", person(GRID_B, 221, id_number=number))])
    assert (again["status"], again["merged_into"]) == ("merged_into", holder)
