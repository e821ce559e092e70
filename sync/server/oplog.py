"""The op log's identity rules: which earlier op, if any, a pushed op is a replay of.

Why content hashes: an op id alone does not identify an op. A data dir copied to a second
laptop, or restored from a backup, numbers its new ops with ids the platform has already seen
for *other* edits. Answering those from the op log (``duplicate_op``) made the device believe
its edit had arrived when it had not. So each logged op keeps a hash of its content, and an op
counts as a replay only when id and content both match (PROTOCOL.md §5.4 step 1).

Op ids are unique per device (``ops`` is keyed by ``(device_id, op_id)``). A device the server
re-registered because its data dir was copied (``devices.parent``) still holds the ops it had
before the copy under the old id; the copies form a *family* (``devices.root``), and an op a
family member of the same user already applied with the same content is answered from that
member's log instead of being applied twice. Rows written before hashes existed have none: for
the device that wrote them they count as a match, so pre-upgrade replays stay idempotent; for
its copies they do not (applying an op twice is safe, taking a copy's edit for another is not).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Literal

from sqlalchemy import String, bindparam, select, union_all
from sqlalchemy.engine import Connection, RowMapping

from app.core.records import canonical_json_map
from sync import protocol as p
from sync.server import db
from sync.server.errors import ApiError
from sync.server.sqlin import Built

IN_CHUNK = 500
REUSED = "op_id_reused"
_O = db.ops.c
_D = db.devices.c
# ``:device`` and its family: the devices that are copies of the same data dir
# (``devices.root``), the device itself also when it has no row.
FAMILY = union_all(
    select(_D.device_id).where(
        _D.root == select(_D.root).where(_D.device_id == bindparam("device")).scalar_subquery()
    ),
    select(bindparam("device", type_=String())),
)
# The logged ops under these ids of the device's family, the family read in the same statement
# (a push's check ran two statements for it before its op look-up). Device and op id are both
# lists, so the look-up is a probe of the primary key (device_id, op_id) per family member and
# op id, and the op log needs no index of op ids alone (revision 0018: it cost every logged op
# an insertion; "device or family" as an OR could only be answered through it).
_LOOKUP = Built(
    lambda among: select(_O.device_id, _O.op_id, _O.op_hash, _O.username, _O.result).where(
        _O.device_id.in_(FAMILY), among(_O.op_id, "ids")
    )
)


def op_hash(op: p.Op) -> str:
    """SHA-256 of the op's canonical JSON (sorted keys, compact): its content identity.

    Written from the op's field values as they are (``__dict__``), which hold plain JSON
    values only (``model_dump`` would copy them first: 40 % of the hash's time, 50 per
    push); tests/sync/test_push_derived.py checks both give one text."""
    return op_hashes([op])[0]


def op_hashes(ops: Sequence[p.Op]) -> list[str]:
    """``op_hash`` of each op: their canonical texts written as one column
    (``canonical_json_map``: one plainness pass for the request, not one per op) and
    hashed from orjson's bytes. Why: a push hashes each of its ops in its check; the
    per-op plainness walk and the text's round trip through ``str`` were 2/3 of a hash."""
    return canonical_json_map([op.__dict__ for op in ops], _sha256)


def _sha256(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()


def same_content(stored: str | None, incoming: str | None) -> bool:
    """A logged op without a hash (written before hashes existed) matches any content, and so
    does an incoming op whose id already names its content (``incoming`` None: base loads)."""
    return stored is None or incoming is None or stored == incoming


def priors(
    conn: Connection,
    device_id: str,
    username: str,
    ops: Sequence[p.Op],
    hashes: dict[str, str] | None = None,
) -> dict[str, RowMapping]:
    """The logged op each of ``ops`` replays, by op id (for the whole-request check).

    ``hashes`` (optional) receives each op's ``op_hash``, so applying the batch need not hash
    the ops again. Raises 409 ``op_id_reused`` when this device already logged an op under one
    of the ids with different content, or when the batch itself carries one id with two
    contents."""
    hashes = {} if hashes is None else hashes
    _note_hashes(ops, op_hashes(ops), hashes)
    found = lookup(conn, device_id, username, ops, hashes=hashes)
    if any(v is False for v in found.values()):  # a reused id: name the first op using one
        for index, op in enumerate(ops):
            if found.get(op.op_id) is False:
                raise ApiError(409, REUSED, op_id=op.op_id, index=index)
    return found  # type: ignore[return-value]  # no False in it


def _note_hashes(ops: Sequence[p.Op], digests: Sequence[str], hashes: dict[str, str]) -> None:
    """Put each op's hash in ``hashes`` by op id; 409 ``op_id_reused`` names the first op
    whose id is there with other content. Why a column first: a push's ops are most often
    all new to ``hashes`` and each other, which one ``dict`` and one ``set`` of the ids say
    in C (one ``setdefault`` and comparison per op before, issue 17)."""
    ids = [op.op_id for op in ops]
    if not hashes and len(set(ids)) == len(ids):
        hashes.update(zip(ids, digests, strict=True))
        return
    for index, (op_id, digest) in enumerate(zip(ids, digests, strict=True)):
        if hashes.setdefault(op_id, digest) != digest:
            raise ApiError(409, REUSED, op_id=op_id, index=index)


def lookup(
    conn: Connection,
    device_id: str,
    username: str,
    ops: Sequence[p.Op],
    *,
    ids_name_content: bool = False,
    hashes: Mapping[str, str | None] | None = None,
) -> dict[str, RowMapping | Literal[False]]:
    """By op id: the logged op (device id, hash, stored result) each op replays, or False when
    this device logged different content under that id; ops not named are new.

    ``ids_name_content``: the caller made each op id from the content that matters (the base
    loader: a digest of the row), so an id alone identifies the op. ``hashes``: the ops'
    ``op_hash`` by op id, when the caller has them already."""
    if hashes is None:
        digests = [None] * len(ops) if ids_name_content else op_hashes(ops)
        hashes = {op.op_id: d for op, d in zip(ops, digests, strict=True)}
    rows: dict[str, list[RowMapping]] = {}
    ids = sorted(hashes)
    stmt = _LOOKUP.on(conn)
    for i in range(0, len(ids), IN_CHUNK):
        params = {"ids": ids[i : i + IN_CHUNK], "device": device_id}
        for row in conn.execute(stmt, params).mappings():
            rows.setdefault(row["op_id"], []).append(row)
    found: dict[str, RowMapping | Literal[False]] = {}
    for op_id, digest in hashes.items():
        logged = rows.get(op_id)
        if logged is None:  # nobody logged it (most ops of a push): a new op, nothing to match
            continue
        match = _match(logged, device_id, username, digest)
        if match is not None:
            found[op_id] = match
    return found


def _match(
    rows: Sequence[RowMapping], device_id: str, username: str, digest: str | None
) -> RowMapping | Literal[False] | None:
    """The row this op replays; None: a new op; False: this device reused the id."""
    own = [r for r in rows if r["device_id"] == device_id]
    if own:
        return own[0] if same_content(own[0]["op_hash"], digest) else False
    for row in rows:  # a copy of this data dir applied the very same op already
        # only a hash proves it (an old row without one may hold the other copy's edit)
        known = row["op_hash"] is not None and same_content(row["op_hash"], digest)
        if row["username"] == username and known:
            return row
    return None
