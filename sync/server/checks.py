"""Whole-request checks of a push (PROTOCOL.md §5.2): all before any op is applied.

A push that fails here changes nothing; the error names the op at fault so the device can set it
aside and push the rest. Checks are about *shape*, scope and versions; whether values are right
for their fields is validation, which only gates complete records (drafts always sync).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any, TypedDict

from sqlalchemy.engine import Connection, RowMapping

from app.core import rules
from app.core.forms import Form, FormSet
from app.core.ids import is_uuid
from app.core.records import is_empty
from app.core.textcheck import MAX_DEPTH, TEXT_ONLY, cells_ok, text_problem
from app.core.textcheck import plain_ok as _plain_ok
from app.core.textcheck import text_ok as _text_ok
from sync import protocol as p
from sync.merge import DELETED, STATUS
from sync.server import oplog, records
from sync.server.auth import User
from sync.server.errors import ApiError
from sync.server.tx import Tx

_SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)  # exactly these types (subclasses go the plain way)
MAX_GRID_CHARS = 64  # grid codes are keys (db.grids.code)
_STATUSES = frozenset(p.STATUSES)


class _OpAt(TypedDict):
    """The op at fault, as ``ApiError`` keyword arguments."""

    op_id: str
    index: int


def check_text(
    text: str, *, op: p.Op | None = None, index: int | None = None, field: str | None = None
) -> None:
    """No NUL, no lone surrogates (PostgreSQL and UTF-8 refuse both), bounded length: the
    checks every file import makes too (``app.core.textcheck``)."""
    problem = text_problem(text)
    if problem:
        op_id = op.op_id if op and "\x00" not in op.op_id else None
        raise ApiError(422, problem, op_id=op_id, index=index, field=field)


def check_plain(value: Any, _depth: int = 0, **where: Any) -> None:
    """Every string inside ``value`` passes ``check_text``; numbers are finite; lists and
    dicts nested at most ``textcheck.MAX_DEPTH`` deep (``_depth``: those around ``value``)."""
    if isinstance(value, str):
        check_text(value, **where)
    elif (isinstance(value, float) and not math.isfinite(value)) or (
        isinstance(value, list | dict) and _depth >= MAX_DEPTH
    ):
        raise ApiError(422, "bad_value", **_ids(where))
    elif isinstance(value, list):
        for item in value:
            check_plain(item, _depth + 1, **where)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, **where)
            check_plain(item, _depth + 1, **where)


def _ids(where: dict[str, Any]) -> dict[str, Any]:
    op = where.get("op")
    return {
        "op_id": op.op_id if op else None,
        "index": where.get("index"),
        "field": where.get("field"),
    }


def _shape_ok(kind: str, value: Any) -> bool:
    """The JSON shape a field type may hold in a draft (wrong text is fine, nesting is not)."""
    if isinstance(value, _SCALARS):
        return True
    if kind == "multi_choice" and isinstance(value, list):
        return len(value) <= p.MAX_LIST_ITEMS and all(isinstance(v, _SCALARS) for v in value)
    if kind == "coordinates" and isinstance(value, dict):
        return rules.coordinates_ok(value)  # what the device stores; gk3 checked against lon/lat
    return False


def check_op_shape(
    formset: FormSet,
    op: p.Op,
    index: int,
    *,
    strings_ok: bool | None = None,
    fields_ok: bool | None = None,
) -> Form:
    """Strings, ids, form, field names and value shapes of one op (``strings_ok``: True when
    the scan of the whole request found every string good, ``strings_ok_all``; ``fields_ok``:
    True when the request's fields passed as columns, ``fields_ok_all``)."""
    if strings_ok is None:
        strings_ok = _strings_ok(op)  # the usual op: one scan, and no string is checked alone
    if not strings_ok:
        for text in (op.op_id, op.record_id, op.form, op.edited_at, op.author):
            if not _text_ok(text):
                check_text(text, op=op, index=index)
    if not is_uuid(op.record_id):
        raise ApiError(422, "bad_record_id", op_id=op.op_id, index=index)
    form = formset.forms.get(op.form)
    if form is None:
        raise ApiError(422, "unknown_form", op_id=op.op_id, index=index)
    if not strings_ok:
        for name, value in op.fields.items():
            if not _text_ok(name):
                check_text(name, op=op, index=index)
            if not _plain_ok(value):
                check_plain(value, op=op, index=index, field=name)
    if op.kind == "delete":
        return form  # its fields are ignored, but they are stored if the op is quarantined
    if fields_ok or _fields_ok(form, op.fields):
        return form
    for name, value in op.fields.items():
        if name == STATUS:
            if value not in p.STATUSES:
                raise ApiError(422, "bad_status", op_id=op.op_id, index=index, field=name)
        elif name == DELETED and op.kind == "resolve":
            if not isinstance(value, bool):
                raise ApiError(422, "bad_value", op_id=op.op_id, index=index, field=name)
        elif name not in form.fields:
            raise ApiError(422, "unknown_field", op_id=op.op_id, index=index, field=name)
        elif not _shape_ok(form.fields[name].type, value) or (
            name == form.roles.grid and _grid_too_long(value)
        ):
            raise ApiError(422, "bad_value", op_id=op.op_id, index=index, field=name)
    return form


def _grid_too_long(value: Any) -> bool:
    """A grid value longer than a grid code as the record would hold it (``_grid_next``: a
    number as its text, e.g. 65 digits; PostgreSQL's grid columns hold 64 characters)."""
    if isinstance(value, str):
        return len(value) > MAX_GRID_CHARS
    return type(value) is int and _long_int(value)


def _long_int(value: int) -> bool:
    """The integer's text is longer than a grid code (a 65-digit number, or a sign and 64)."""
    return len(str(value)) > MAX_GRID_CHARS


def _fields_ok(form: Form, fields: dict[str, Any]) -> bool:
    """The field loop of ``check_op_shape`` passes, decided for the whole op at once: every
    name is a field of the form (or a good ``_status``), every value a plain scalar (any
    scalar has a good shape) and the grid code short enough. Why: the loop's ~15 steps per
    resident were ~5 % of a push's server CPU; here the names are one set difference and the
    values one set of types, in C. False: the loop decides and names the first bad field
    (tests/sync/test_check_shape_property.py checks both answer alike)."""
    if not {*map(type, fields.values())} <= _SCALAR_TYPES:
        return False
    extra = fields.keys() - form.fields.keys()
    if extra and (extra != {STATUS} or fields[STATUS] not in p.STATUSES):
        return False
    grid = fields.get(form.roles.grid) if form.roles.grid else None
    return not (
        (type(grid) is str and len(grid) > MAX_GRID_CHARS)
        or (type(grid) is int and _long_int(grid))
    )


def fields_ok_all(formset: FormSet, ops: Sequence[p.Op]) -> bool:
    """``_fields_ok`` of every op but deletes (which ``check_op_shape`` does not ask), each
    with a form of ``formset``: decided per form as columns, each a pass in C or one set (the
    value types, the names beyond the form's fields, the statuses), and the grid codes'
    lengths. Why: a push of 1 000 residents asked 1 000 times, each with its own sets.
    tests/sync/test_check_shape_property.py holds it against ``_fields_ok`` per op."""
    by_form: dict[str, list[dict[str, Any]]] = {}
    for op in ops:
        if op.kind != "delete":
            by_form.setdefault(op.form, []).append(op.fields)
    for name, fields in by_form.items():
        form = formset.forms.get(name)
        if form is None or not _SCALAR_TYPES.issuperset(
            map(type, chain.from_iterable(map(dict.values, fields)))
        ):
            return False
        extra = set(chain.from_iterable(fields)) - form.fields.keys()
        if extra and (
            extra != {STATUS} or not _STATUSES.issuperset(f[STATUS] for f in fields if STATUS in f)
        ):
            return False
        grid = form.roles.grid
        if grid and any(
            (type(g := f.get(grid)) is str and len(g) > MAX_GRID_CHARS)
            or (type(g) is int and _long_int(g))
            for f in fields
        ):
            return False
    return True


def _strings_ok(op: p.Op) -> bool:
    """Every string of the op (ids, form, clock, author, field names and values) passes
    ``text_ok`` and every other value ``plain_ok``: one regex scan over the op's strings
    (``textcheck.cells_ok``) instead of one call per string, ~30 per resident."""
    return strings_ok_all([op])


_OP_STRINGS = attrgetter("op_id", "record_id", "form", "edited_at", "author")


def strings_ok_all(ops: Sequence[p.Op]) -> bool:
    """``_strings_ok`` of every op, in one scan of all their strings (a character is bad on
    its own, so the scan of them joined finds what the scans one by one would). Why: a push
    of 1 000 residents made 1 000 scans, each with its list, join and type set. The strings
    are gathered as columns (ids, field names, values), not op by op."""
    fields = [op.fields for op in ops]
    values = [*chain.from_iterable(map(dict.values, fields))]
    cells: list[Any] = [
        *chain.from_iterable(map(_OP_STRINGS, ops)),
        *{*chain.from_iterable(fields)},  # the ops share their field names: each scanned once
    ]
    if TEXT_ONLY.issuperset(map(type, values)):  # a device's fields: all text
        return cells_ok(cells + values)
    cells += [v for v in values if type(v) is str]
    return cells_ok(cells) and all(_plain_ok(v) for v in values if type(v) is not str)


def check_push(
    conn: Connection,
    formset: FormSet,
    user: User,
    req: p.PushRequest,
    device_id: str,
    hashes: dict[str, str] | None = None,
    tx: Tx | None = None,
) -> Checked:
    """Raise ``ApiError`` for the first problem of the batch; return when all ops may be applied.
    ``hashes`` receives the ops' content hashes (``oplog.op_hash``) for the apply step; the
    answer holds what the check read, for an apply in the same transaction (``tx``: that
    transaction, which then loads and locks the records here, once for check and apply)."""
    if req.protocol not in p.SUPPORTED_PROTOCOLS:
        raise ApiError(400, "protocol")
    if req.device_id != device_id:
        raise ApiError(400, "device_mismatch")
    if len(req.ops) > p.MAX_OPS:
        raise ApiError(413, "too_many_ops")
    forms, shape_error = _shapes(formset, req.ops)
    ops = req.ops[: len(forms)]  # the ops before a shape error must pass every other check too
    aliases = records.canonical(conn, [op.record_id for op in ops])
    ids = [aliases.get(op.record_id, op.record_id) for op in ops]
    known = _brief(conn, tx, ids)
    # ops naming a record merged away (a tombstone with versions of its own): their base
    # versions are that record's (Service._apply merges from its snapshot)
    merged_away = records.brief(
        conn, [op.record_id for op in ops if op.base_version and op.record_id in aliases]
    )
    priors = oplog.priors(conn, device_id, user.username, ops, hashes)
    replayed = set(priors)
    projected: dict[str, str | None] = {}  # grids as the batch leaves them, for later ops
    passed = _lone_in_scope(user, forms, ops, ids, known)
    for index, (op, form, rid) in enumerate(zip(ops, forms, ids, strict=True)):
        if op.op_id in replayed or index in passed:
            continue  # answered from the op log (duplicate_op), whatever happened since; or
            # a lone op of a new record whose scope passed
        current = known.get(rid)
        grid_now = projected[rid] if rid in projected else (current[1] if current else None)
        # Scope first: the form and version of a record outside it must not be probed.
        projected[rid] = _check_scope(
            user, form, op, index, grid_now, exists=rid in projected or current is not None
        )
        if current is not None and current[0] != op.form:
            raise ApiError(422, "wrong_form", op_id=op.op_id, index=index)
        own = merged_away.get(op.record_id, current)
        if current is not None and own is not None and (op.base_version or 0) > own[2]:
            raise ApiError(409, "base_ahead", op_id=op.op_id, index=index)
    if shape_error is not None:
        raise shape_error
    return Checked(dict(priors), aliases, frozenset(op.record_id for op in ops))


@dataclass(frozen=True)
class Checked:
    """What a passed check read: the logged ops the batch replays, the aliases of its record
    ids and which ids were looked up. Only good within the transaction that read them."""

    replays: dict[str, RowMapping]
    aliases: dict[str, str]
    looked_up: frozenset[str]


def _brief(
    conn: Connection, tx: Tx | None, ids: list[str]
) -> dict[str, tuple[str, str | None, int]]:
    """id -> (form, grid, version) of the records that exist (``records.brief``); through
    ``tx`` when the apply follows in the same transaction (it needs the whole rows, locked)."""
    if tx is None:
        return records.brief(conn, ids)
    tx.load_many(ids)
    return {i: (row.form, row.grid, row.version) for i in ids if (row := tx.rows.get(i))}


def _shapes(formset: FormSet, ops: list[p.Op]) -> tuple[list[Form], ApiError | None]:
    """The form of each op up to the first whose shape is wrong, and that op's error.

    The answer must name the FIRST op that fails any check (PROTOCOL.md §5.2): a client sets
    it aside and sends the ops before it on their own, so they must have passed every check.
    """
    forms: list[Form] = []
    strings_ok = strings_ok_all(ops) or None  # else each op is scanned on its own
    fields_ok = fields_ok_all(formset, ops) or None  # else each op's fields are checked
    if strings_ok and fields_ok and (found := _forms_of(formset, ops)) is not None:
        return found, None
    for index, op in enumerate(ops):
        try:
            forms.append(
                check_op_shape(formset, op, index, strings_ok=strings_ok, fields_ok=fields_ok)
            )
        except ApiError as exc:
            return forms, exc
    return forms, None


def _forms_of(formset: FormSet, ops: Sequence[p.Op]) -> list[Form] | None:
    """What ``check_op_shape`` answers for each op once the request's strings and fields
    passed as columns (``strings_ok_all``, ``fields_ok_all``): its form, when every record
    id is a UUID and every form known; None otherwise (the loop names the op at fault).
    Why: the rest of ``check_op_shape`` asked op by op was ~1 µs per pushed op (issue 17);
    tests/sync/test_push_made.py holds ``_shapes`` with and without it."""
    known = formset.forms
    names = [op.form for op in ops]
    if not known.keys() >= set(names) or not all(map(is_uuid, [op.record_id for op in ops])):
        return None
    return [known[name] for name in names]


def _check_scope(
    user: User, form: Form, op: p.Op, index: int, grid_now: str | None, *, exists: bool
) -> str | None:
    """PROTOCOL.md §5.5; returns the grid the record will have after the op."""
    if exists and not user.in_scope(grid_now):
        raise ApiError(403, "out_of_scope", **_at(op, index))
    grid_next = _grid_next(form, op, grid_now)
    if _scope_ok(user, op, grid_next, exists=exists):
        return grid_next
    if grid_next is None:
        raise ApiError(403, "grid_missing", field=form.roles.grid, **_at(op, index))
    raise ApiError(403, "out_of_scope", field=form.roles.grid, **_at(op, index))


def _grid_next(form: Form, op: p.Op, grid_now: str | None) -> str | None:
    """The grid the op leaves its record in (its grid field when it sends one)."""
    grid_field = form.roles.grid
    if op.kind != "delete" and grid_field and grid_field in op.fields:
        value = op.fields[grid_field]
        return None if is_empty(value) else str(value).strip()
    return grid_now


def _scope_ok(user: User, op: p.Op, grid_next: str | None, *, exists: bool) -> bool:
    """The caller may leave the record in ``grid_next`` (an update/delete before its create
    is decided when applied, §5.4)."""
    if user.is_admin or (grid_next is None and not exists and op.kind in ("update", "delete")):
        return True
    return grid_next is not None and user.in_scope(grid_next)


def _lone_in_scope(
    user: User,
    forms: Sequence[Form],
    ops: Sequence[p.Op],
    ids: Sequence[str],
    known: Mapping[str, Any],
) -> set[int]:
    """The ops of records nothing holds and no other op of the batch names whose scope check
    (``_check_scope``) passes, decided as a column: the scope asked once per grid.

    Why: a push of new records went through the check's loop op by op (~2.5 µs each, issue
    17). Those ops read no grid an earlier op left and leave none a later op reads, so the
    loop may skip them; any other op, or one that fails, is the loop's (which names the
    first op at fault). tests/sync/test_push_made.py holds the check with and without it."""
    counts = Counter(ids)
    ok: dict[str, bool] = {}
    passed: set[int] = set()
    for index, (op, form, rid) in enumerate(zip(ops, forms, ids, strict=True)):
        if counts[rid] != 1 or rid in known:
            continue
        grid = _grid_next(form, op, None)
        if grid is None:  # decided by the op's kind
            fine = _scope_ok(user, op, grid, exists=False)
        elif grid in ok:  # decided by the grid alone
            fine = ok[grid]
        else:
            fine = ok[grid] = _scope_ok(user, op, grid, exists=False)
        if fine:
            passed.add(index)
    return passed


def _at(op: p.Op, index: int) -> _OpAt:
    """The op at fault (made only when one is: a push checks the scope of every op)."""
    return {"op_id": op.op_id, "index": index}
