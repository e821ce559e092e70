"""A push of residents the platform already holds does no work only new records need (issue
17: "push known >= push new"): its echoes ask no reference of each op (``fresh.naming``), no
held record's keys again (``echoes._derived``) and no device's last version of a record it
leaves as it is (``Tx.want_device_versions``). Each column form is held against the per-op
function it replaces; what a push stores is held against the per-op path by
tests/sync/test_push_echoes.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import unicodedata
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.forms import FormSet
from sync import protocol as p
from sync.server import echoes, fresh, rows
from sync.server.service import Service
from sync.server.tx import Tx
from tests.sync.conftest import resident_creates
from tests.sync.test_server_batch import WORKER, _fresh

HOUSE = "0190a0b0-c0d0-7000-8000-0000000ee000"
_REF_VALUES = st.one_of(
    st.none(), st.sampled_from(["", "r1", "r2", "0190a0b0-c0d0-7000"]), st.just(7), st.just([1])
)


@given(
    picks=st.lists(
        st.tuples(
            st.sampled_from(["resident", "house", "unit", "address"]),
            st.dictionaries(st.sampled_from(["house_ref", "address_ref", "name"]), _REF_VALUES),
        ),
        max_size=8,
    ),
    names=st.sets(st.sampled_from(["", "r1", "r2", "0190a0b0-c0d0-7000", "x"])),
    picked=st.sets(st.integers(0, 7)),
)
def test_ops_naming_ids_as_columns_are_those_ref_ids_finds(
    formset: FormSet, picks: list[tuple[str, dict[str, Any]]], names: set[str], picked: set[int]
) -> None:
    """``fresh.naming`` picks the ops whose ``ref_ids`` name one of ``names``, whatever the
    forms, the references sent and their types (a list is no record id)."""
    ops = [
        p.Op.model_construct(op_id=f"d:{n}", form=form, fields=fields)
        for n, (form, fields) in enumerate(picks)
    ]
    forms = [formset.form(op.form) for op in ops]
    indexes = [i for i in sorted(picked) if i < len(ops)]
    each = [i for i in indexes if any(v in names for v in fresh.ref_ids(forms[i], ops[i]))]
    assert fresh.naming(forms, ops, indexes, names) == each


class _Counted(frozenset[type]):
    """A set of types that counts the ``issuperset`` asked of it (a spy)."""

    asked = 0

    def issuperset(self, other: Iterable[Any]) -> bool:
        self.asked += 1
        return super().issuperset(other)


def _again(held: list[p.Op], device: str, first: int = 0) -> list[p.Op]:
    """The held residents' creates sent again from ``device`` under new ids (numbered from
    ``first``) and op ids."""
    return [
        op.model_copy(
            update={
                "op_id": f"{device}:{i}",
                "record_id": f"0190a0b0-c0d0-7000-8000-00000{first + i:07d}",
            }
        )
        for i, op in enumerate(held)
    ]


def test_a_known_push_asks_no_reference_nor_held_keys_of_each_echo(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 residents (one naming a house) pushed again from another device: every create is
    answered merged_into its held record, and no op is asked its references one by one
    (``fresh.ref_ids``), nor a held record its keys or grid again (``rows.keys_of`` and
    ``grids_of`` as ``echoes`` asks them: each echo's create had them worked out), nor a held
    record's values checked for text one by one (its create's equal data was)."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        held = resident_creates(50, "dev", dt.date(1971, 1, 1))
        held[3] = held[3].model_copy(update={"fields": {**held[3].fields, "house_ref": HOUSE}})
        service.apply(WORKER, "dev", held)
        asked: list[str] = []
        derived: list[dict[str, Any]] = []
        ref_ids, keys_of, grids_of = fresh.ref_ids, echoes.keys_of, echoes.grids_of

        def spied_refs(form: Any, op: p.Op) -> Any:
            asked.append(op.op_id)
            return ref_ids(form, op)

        def spied_keys(form: Any, datas: list[dict[str, Any]]) -> Any:
            derived.extend(datas)
            return keys_of(form, datas)

        def spied_grids(form: Any, datas: list[dict[str, Any]]) -> Any:
            derived.extend(datas)
            return grids_of(form, datas)

        monkeypatch.setattr(fresh, "ref_ids", spied_refs)
        monkeypatch.setattr(echoes, "keys_of", spied_keys)
        monkeypatch.setattr(echoes, "grids_of", spied_grids)
        monkeypatch.setattr(echoes, "TEXT_ONLY", _Counted(echoes.TEXT_ONLY))
        again = _again(held, "dev2")
        req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev2", ops=again)
        results = service.push(WORKER, req, "dev2")
        assert [r["status"] for r in results] == ["merged_into"] * 50
        assert [r["record_id"] for r in results] == [op.record_id for op in held]
        assert asked == []
        assert derived == []
        assert echoes.TEXT_ONLY.asked == 0  # type: ignore[attr-defined]
        assert service.get_record(WORKER, again[3].record_id)["data"]["house_ref"] == HOUSE
    finally:
        engine.dispose()


def test_a_known_push_reads_device_versions_only_when_a_merge_asks(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 residents pushed again from another device read nothing of what that device last
    wrote on the held records (every create echoes one: no merge asks it); pushed again from
    a third device with a new phone and a status raised, the held records' are read in one
    batch when the first merge asks one, none one by one, and the changed ones get a
    version, the others keep theirs."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        held = resident_creates(50, "dev", dt.date(1972, 1, 1))
        service.apply(WORKER, "dev", held)
        read: list[list[str]] = []
        alone: list[str] = []
        prefetch, one = Tx.prefetch_device_versions, Tx.device_version

        def spied_prefetch(self: Tx, device_id: str, ids: Iterable[str]) -> None:
            ids = list(ids)
            wanted = [i for i in ids if (device_id, i) not in self._device_versions]
            if wanted:
                read.append(wanted)
            prefetch(self, device_id, ids)

        def spied_one(self: Tx, device_id: str, record_id: str) -> int | None:
            found = one(self, device_id, record_id)
            if (device_id, record_id) not in self._device_versions:
                alone.append(record_id)
            return found

        monkeypatch.setattr(Tx, "prefetch_device_versions", spied_prefetch)
        monkeypatch.setattr(Tx, "device_version", spied_one)

        def push(device: str, ops: list[p.Op]) -> list[dict[str, Any]]:
            req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id=device, ops=ops)
            return service.push(WORKER, req, device)

        results = push("dev2", _again(held, "dev2"))
        assert [r["status"] for r in results] == ["merged_into"] * 50
        assert read == []
        again = _again(held, "dev3", first=100)
        again[5] = again[5].model_copy(
            update={"fields": {**again[5].fields, "phone": "13600000005"}}
        )
        again[9] = again[9].model_copy(
            update={"fields": {**again[9].fields, "_status": "complete"}}
        )
        results = push("dev3", again)
        assert [r["status"] for r in results] == ["merged_into"] * 50
        assert [sorted(ids) for ids in read] == [sorted(op.record_id for op in held)]
        assert alone == []
        assert results[5]["version"] == 2
        assert {r["version"] for i, r in enumerate(results) if i not in (5, 9)} == {1}
    finally:
        engine.dispose()


def test_device_versions_put_off_are_those_read_first(db_url: str, formset: FormSet) -> None:
    """``Tx.want_device_versions`` then ``device_version`` answers as a prefetch first, and as
    a look-up of each record alone: records the device wrote (some twice), others wrote, none
    at all, and one it writes in the transaction itself."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        mine = resident_creates(6, "dev", dt.date(1974, 1, 1))
        service.apply(WORKER, "dev", mine)
        service.apply(
            WORKER,
            "dev",
            [
                op.model_copy(
                    update={
                        "op_id": f"dev:u{i}",
                        "kind": "update",
                        "base_version": 1,
                        "fields": {"phone": "1370000000" + str(i)},
                    }
                )
                for i, op in enumerate(mine[:3])
            ],
        )
        theirs = resident_creates(3, "other", dt.date(1975, 1, 1))
        service.apply(WORKER, "other", theirs)
        ids = [op.record_id for op in mine + theirs] + ["0190a0b0-c0d0-7000-8000-00000000dead"]
        with engine.begin() as conn:
            later, first, alone = Tx(conn), Tx(conn), Tx(conn)
            for tx in (later, first, alone):
                tx.log_op({"op_id": "x", "device_id": "dev", "record_id": ids[4], "version": 9})
            later.want_device_versions("dev", ids)
            first.prefetch_device_versions("dev", ids)
            answers = [[tx.device_version("dev", i) for i in ids] for tx in (later, first, alone)]
        assert answers[0] == answers[1] == answers[2]
        assert answers[0][:6] == [2, 2, 2, 1, 9, 1]
        assert answers[0][6:] == [None] * 4
    finally:
        engine.dispose()


def test_a_known_push_merges_no_create_of_a_held_key(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk of 50 residents pushed again from another device and 10 new ones: only the
    new ones have a merge when the creates are sorted (``fresh.completed``: ``FILLED``, the
    merge of filled text, left unbuilt): a create meeting a held key makes no new record and
    reads no merge of its own; each is answered as before."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        held = resident_creates(50, "dev", dt.date(1973, 1, 1))
        service.apply(WORKER, "dev", held)
        merged: list[str] = []
        plain = fresh.sort_creates

        def spied(tx: Any, ctx: Any, ops: Any, read: Any, *args: Any) -> Any:
            merged.extend(ops[i].fields["id_number"] for i, c in read.made.items() if c[0])
            return plain(tx, ctx, ops, read, *args)

        monkeypatch.setattr(fresh, "sort_creates", spied)
        new = resident_creates(10, "dev2", dt.date(1990, 1, 1), start=50)
        req = p.PushRequest(
            protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev2", ops=_again(held, "dev2") + new
        )
        results = service.push(WORKER, req, "dev2")
        assert [r["status"] for r in results] == ["merged_into"] * 50 + ["applied"] * 10
        assert sorted(merged) == sorted(op.fields["id_number"] for op in new)
    finally:
        engine.dispose()


def test_held_keys_of_equal_data_are_the_creates(formset: FormSet) -> None:
    """``echoes._derived`` takes a create's grid and keys for a held record whose create's
    data is equal to it, and works out the others' (``grids_of``, ``keys_of``), each in its
    place."""
    form = formset.form("resident")
    held = [
        {"name": "张三", "id_type": "居民身份证", "id_number": "330106197901010011", "grid": "g1"},
        {"name": "李四", "id_number": "330106197901010022", "grid": "g2"},
        {"name": "王五", "id_number": "330106197901010033", "grid": "g3"},
    ]
    alike: list[Any] = [(None, dict(held[0]), "made-grid", ["made-key"], None), None, None]
    datas, grids, own = echoes._derived(form, held, alike)
    assert datas == held
    assert grids == ["made-grid", *(rows.grid_of(form, d) for d in held[1:])]
    assert own == [["made-key"], *(rows.natural_keys(form, d) for d in held[1:])]


def test_held_records_are_built_by_position(monkeypatch: pytest.MonkeyPatch) -> None:
    """``rows.from_result`` builds each held record's ``Row`` by position (``Row``'s fields
    are ``_ROW_COLUMNS`` in order), not by name: what a row holds is as before."""
    assert [f.name for f in dataclasses.fields(rows.Row)] == list(rows._ROW_COLUMNS)
    keys = list(reversed(rows._ROW_COLUMNS))  # another column order
    stored = {
        "id": "r1", "form": "resident", "form_version": 1, "grid": "g", "title": "张三",
        "data": '{"name":"张三"}', "status": "draft", "deleted": 0, "version": 2,
        "conflict": None, "stamps": '[["2026-01-01T00:00:00.000Z#0000","d",["name"]]]',
        "created_at": "a", "created_by": "b", "updated_at": "c", "updated_by": "d",
    }  # fmt: skip
    by_name = rows.from_db(type("R", (), stored)())
    plain = rows.Row

    def positional(*args: Any, **kw: Any) -> rows.Row:
        assert not kw, sorted(kw)
        return plain(*args)

    monkeypatch.setattr(rows, "Row", positional)
    built = list(rows.from_result([tuple(stored[k] for k in keys)], keys))
    assert built == [by_name]
    assert dict(built[0].stamps) == dict(by_name.stamps)


_FULL = str.maketrans("0123456789", "０１２３４５６７８９")
# a held resident's create sent again with one value spelled otherwise: each has the held
# record's natural key (normalised alike) and grid, so each finds the held record, and none
# holds its data as it is
_SPELLINGS: list[tuple[str, Any]] = [
    ("name", lambda v: v + " "),  # trailing space
    ("name", lambda v: "\u3000" + v),  # full-width space
    ("phone", lambda v: v.translate(_FULL)),  # full-width digits
    ("id_number", lambda v: v.translate(_FULL)),  # the key itself, full-width
    ("id_number", lambda v: v[:6] + " " + v[6:]),  # the key itself, a space inside
    ("grid", lambda v: v + " "),  # the same grid
    ("hukou_address", lambda v: unicodedata.normalize("NFKD", v + "é")),  # decomposed
    ("_status", lambda v: "complete"),  # the status raised, in text
]


def test_a_known_push_merges_each_value_spelled_otherwise(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held residents pushed again from another device, later, each with one value spelled
    otherwise (whitespace, full-width, decomposed; the natural key itself; the status): all
    filled text, so ``fresh.made`` takes their data unmerged, and ``echoes`` meets each with
    its held record's key, grid and text. None is answered as an echo (its data is not the
    held data): each spelling reaches its held record in a new version, and the device is
    answered that version. An exact echo keeps its version; so does a blank the held record
    lacks, pushed on its own (a blank sends the chunk's creates the merged way)."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        n = len(_SPELLINGS)
        held = resident_creates(n + 2, "dev", dt.date(1976, 1, 1))
        service.apply(WORKER, "dev", held)
        echoed: list[str] = []
        plain = echoes.known_creates

        def spied(tx: Any, ctx: Any, ops: Any, *rest: Any) -> Any:
            found = plain(tx, ctx, ops, *rest)
            echoed.extend(ops[i].op_id for i in found)
            return found

        monkeypatch.setattr(echoes, "known_creates", spied)
        again = _again(held, "dev2")
        for i, op in enumerate(again):
            fields = dict(op.fields)
            if i < n:
                name, spell = _SPELLINGS[i]
                fields[name] = spell(fields[name])
            elif i == n + 1:
                fields["former_name"] = ""  # blank, held lacks it: nothing changes
            later = op.edited_at.replace("#0000", "#0001")  # after the held values' stamp
            again[i] = op.model_copy(update={"fields": fields, "edited_at": later})
        results = []
        for ops in (again[: n + 1], again[n + 1 :]):
            req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev2", ops=ops)
            results += service.push(WORKER, req, "dev2")
        assert [r["status"] for r in results] == ["merged_into"] * len(again)
        assert [r["record_id"] for r in results] == [op.record_id for op in held]
        assert [r["version"] for r in results] == [2] * n + [1, 1]
        assert echoed == [op.op_id for op in again[n:]]  # the exact echo and the blank only
        for op, sent, result in zip(held, again, results, strict=True):
            got = service.get_record(WORKER, op.record_id)
            assert got["version"] == result["version"]
            want = {k: v for k, v in sent.fields.items() if k != "_status" and v != ""}
            assert got["data"] == want, op.record_id
            assert got["status"] == sent.fields["_status"]
    finally:
        engine.dispose()
