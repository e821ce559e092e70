"""Applying pushed ops and answering pulls (PROTOCOL.md §5 and §8).

A push is checked as a whole first (``checks``), then applied in chunks: one transaction per
chunk, one savepoint per op, so every op is atomic and a chunk's change numbers are assigned at
its very end (see ``tx.Tx``). Ops apply strictly in request order. What an op meets on the way
(``Ctx``, ``Outcome``, ``Reject``) is in ``pushop``; natural keys against the caller's scope
(duplicates, transfer claims) in ``claims``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Container, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from app.core.forms import Form, FormSet
from sync import protocol as p
from sync.merge import (
    Merged,
    combine_conflicts,
    merge,
    merge_fields,
    merge_new,
    op_changes,
    resolve,
    unchanged,
)
from sync.server import (
    checks,
    claims,
    db,
    echoes,
    fresh,
    notdup,
    oplog,
    pulls,
    races,
    records,
    reviews,
    settle,
)
from sync.server.auth import User, iso, now
from sync.server.errors import ApiError
from sync.server.pushop import Ctx, Outcome, Reject
from sync.server.rows import Person
from sync.server.tasks import results as task_results
from sync.server.tx import Tx

log = logging.getLogger(__name__)

CHUNK = p.MAX_OPS  # ops per transaction: a full push request is one
TX_RETRIES = 8  # a unique-key race, deadlock or serialisation failure: retry the whole chunk
CLOCK_SKEW = timedelta(minutes=10)
# The caller, authenticated in the transaction given (None: a look-up of its own). Why: a
# push or pull then authenticates with the first statement of its own transaction instead of
# checking out a connection of its own for it (issue 19: server CPU per nightly sync).
Who = Callable[[Connection | None], User]


class Service:
    """The platform's record operations over one database."""

    def __init__(self, engine: Engine, formset: FormSet) -> None:
        self.engine = engine
        self.formset = formset
        # Fault injection for tests: called inside every push transaction after its change
        # numbers are assigned, just before commit (the window the cursor design must survive).
        self.before_commit: Callable[[], None] | None = None

    # -- push --------------------------------------------------------------------------------

    def push(self, user: User, req: p.PushRequest, device_id: str) -> list[dict[str, Any]]:
        """Check the whole batch, then apply it op by op (PROTOCOL.md §5). Task results
        (§13.3) are checked with it and applied by ``push_all``."""
        return self.push_all(user, req, device_id)["results"]

    def push_all(self, user: User | Who, req: p.PushRequest, device_id: str) -> dict[str, Any]:
        """The whole push answer: op results, then task results (applied after the ops).
        ``user``: the caller, or how to authenticate them (``Who``)."""
        if not req.task_results and not req.dedup_decisions and len(req.ops) <= CHUNK:
            # the usual push: authenticated, checked and applied in one transaction
            return {"results": self._chunk(user, device_id, req.ops, check=req)}
        user = _caller(user, None)
        if len(req.task_results) > p.MAX_OPS:
            raise ApiError(413, "too_many_ops")
        hashes: dict[str, str] = {}
        with db.read(self.engine) as conn:
            checks.check_push(conn, self.formset, user, req, device_id, hashes)
            task_results.check(conn, user, device_id, req.task_results)
        if len(req.dedup_decisions) > p.MAX_OPS:
            raise ApiError(413, "too_many_ops")
        notdup.check(req.dedup_decisions)
        results = self.apply(user, device_id, req.ops, hashes=hashes)
        answer: dict[str, Any] = {"results": results}
        if req.task_results:
            answer["task_results"] = self._task_results(user, device_id, req.task_results)
        if req.dedup_decisions:  # after the ops: their creates open the review items
            answer["dedup_decisions"] = notdup.apply(
                self.engine, user, device_id, req.dedup_decisions
            )
        return answer

    def _task_results(
        self, user: User, device_id: str, results: Sequence[p.TaskResult]
    ) -> list[dict[str, Any]]:
        """Apply task results in one transaction, run again after a deadlock with a
        concurrent push (an automatic done locks items in another order)."""
        return races.retried(
            lambda: task_results.apply(self.engine, user, device_id, results), TX_RETRIES
        )

    def apply(
        self,
        user: User,
        device_id: str,
        ops: Sequence[p.Op],
        *,
        ids_name_content: bool = False,
        hashes: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Apply already-checked ops in order, chunk by chunk. ``ids_name_content``: the op ids
        are digests of what the ops carry (the base loader), so a known id is a replay even
        when the record id and clock were made anew (see ``oplog.lookup``). ``hashes``: the
        ops' content hashes when the check computed them already."""
        results: list[dict[str, Any]] = []
        for start in range(0, len(ops), CHUNK):
            chunk = ops[start : start + CHUNK]
            results.extend(self._chunk(user, device_id, chunk, ids_name_content, hashes))
        return results

    def _chunk(
        self,
        user: User | Who,
        device_id: str,
        ops: Sequence[p.Op],
        ids_name_content: bool = False,
        hashes: Mapping[str, str] | None = None,
        *,
        check: p.PushRequest | None = None,
    ) -> list[dict[str, Any]]:
        """One transaction for a chunk of ops (``check``: the whole request, checked first in
        the same transaction, whose reads the apply then reuses; a refused request has
        written nothing; ``user``: the caller, or ``Who`` authenticates them in it first).

        No op writes anything before it is sure to be applied (every rejection is decided
        first), so ops need no savepoints. A unique-key race with a concurrent writer
        (PostgreSQL) or a deadlock rolls the whole chunk back and runs it again: it then sees
        the other writer's commit (e.g. the person it was creating now exists: merged_into).
        """
        for attempt in range(TX_RETRIES):
            try:
                with db.write(self.engine) as conn:
                    caller = _caller(user, conn)
                    tx = Tx(conn)
                    ctx = self._ctx(caller, device_id)
                    ctx.ids_name_content = ids_name_content
                    seen: dict[str, str] = dict(hashes or {})
                    checked = None
                    if check is not None:
                        checked = checks.check_push(
                            conn, self.formset, caller, check, device_id, seen, tx
                        )
                    read = self._prefetch(tx, ctx, ops, seen, checked)
                    out = self._ops(tx, ctx, ops, read)
                    task_results.after_saves(tx, ctx.at, caller.username)
                    tx.finish()
                    if self.before_commit is not None:
                        self.before_commit()
                return out
            except Exception as exc:  # a driver error from a raw COPY too (races.py)
                if not races.is_race(exc) or attempt == TX_RETRIES - 1:
                    raise
                log.info("push chunk retried after a concurrent write (attempt %d)", attempt + 1)
                races.pause(attempt)
        raise AssertionError("unreachable")

    def _prefetch(
        self,
        tx: Tx,
        ctx: Ctx,
        ops: Sequence[p.Op],
        hashes: Mapping[str, str],
        checked: checks.Checked | None = None,
    ) -> fresh.Read:
        """What the chunk's ops will read, in a few bulk queries instead of several per op:
        known op ids, aliases (of records and of the records references name), the records
        themselves (locked, in id order), their natural-key owners, the people they may be,
        the versions they are based on and what this device last wrote on them. Returns each
        op's record id after aliases and form, and each create of an absent record worked out
        once (``fresh.Read``)."""
        conn = tx.conn
        if not ctx.ids_name_content:
            ctx.hashes = {op.op_id: hashes.get(op.op_id) or oplog.op_hash(op) for op in ops}
        forms = {name: self.formset.form(name) for name in {op.form for op in ops}}
        named = [op.record_id for op in ops]
        referenced = fresh.ref_ids_all(forms, ops)
        named += referenced
        if checked is not None:  # read by the check in this transaction
            ctx.known_ops = dict(checked.replays)
            rest = [i for i in named if i not in checked.looked_up]
            ctx.aliases = {**checked.aliases, **(records.canonical(conn, rest) if rest else {})}
        else:
            ctx.known_ops = oplog.lookup(
                conn,
                ctx.device_id,
                ctx.user.username,
                ops,
                ids_name_content=ctx.ids_name_content,
                hashes=ctx.hashes if not ctx.ids_name_content else None,
            )
            ctx.aliases = records.canonical(conn, named)
        rids = [ctx.aliases.get(op.record_id, op.record_id) for op in ops]
        tx.load_many(rids)
        tombs = [i for i in rids if (row := tx.rows.get(i)) is not None and row.deleted]
        if tombs and records.canonical(conn, tombs):  # aliased since they were read above
            raise races.MergedMeanwhile
        if referenced:  # the records references name, as the ops will store them
            gone = tx.lock_referenced(ctx.aliases.get(i, i) for i in referenced)
            if gone and records.canonical(conn, gone):  # merged away while this waited
                raise races.MergedMeanwhile
        made = fresh.made(tx, ctx, ops, rids, forms)
        read_forms = [forms[op.form] for op in ops]
        # the chunk's new records (``made``: merged once, their keys with them; their people
        # once the merging ones are known) as columns, then every other op's merged-over
        # data, keys and record
        made_ops = [(ops[i], read_forms[i], create) for i, create in made.items()]
        keys = [(f.id, k) for _op, f, create in made_ops for k in create[3]]
        new = [(op.record_id, f.id, create[3]) for op, f, create in made_ops]
        states: dict[int, tuple[Form, dict[str, Any]]] = {}  # merged-over data, not made
        held = tx.rows.get
        for index, (op, rid) in enumerate(zip(ops, rids, strict=True)):
            if index in made:
                continue
            form = read_forms[index]
            row = held(rid)
            data = {**(row.data if row else {}), **op.fields}
            op_keys = tx.derived.natural_keys(form, data)
            states[index] = (form, data)
            keys += [(form.id, k) for k in op_keys]
            if row is None:
                new.append((op.record_id, form.id, op_keys))
        tx.prefetch_keys(keys)
        # creates of records the platform already holds under their natural key: the owners,
        # what this device last wrote on them and who else was merged into the new ids (a
        # key nobody holds or claims has no owner: ``keys_taken`` says so without a look-up)
        taken = tx.keys_taken(keys)  # most often none: each new record asked no further
        owned = _owners(tx, new, taken) if taken else {}
        owners = list(owned.values())
        tx.load_many(owners)
        # People who may be the same as the pushed ones; not for a create merging into the
        # record in the caller's scope that holds its key (a push of residents the platform
        # knows: each would find the owner itself; ``reviews`` looks up the few whose person
        # the merge changes). A key held outside the scope merges nothing (a transfer claim):
        # that create is a new record and its people are read here with the others.
        merging = {i for i, o in owned.items() if claims.visible(tx, ctx.user, o)}
        made = fresh.completed(
            ctx, ops, made, read_forms, {i for i in made if ops[i].record_id in merging}, taken
        )  # nor is the merge of one meeting a taken key, nor the person of one merging
        people: dict[str, list[Person]] = {}
        for index, create in made.items():
            if create[4] is not None:
                people.setdefault(read_forms[index].id, []).append(create[4])
        for index, (form, data) in states.items():
            if ops[index].record_id not in merging:
                person = tx.derived.person_of(form, data)
                if person is not None:
                    people.setdefault(form.id, []).append(person)
        tx.want_device_versions(ctx.device_id, owners)  # read when a merge asks one
        tx.known_absent(ctx.device_id, rids)  # a create of a new id needs no more reads
        tx.prefetch_incoming(record_id for record_id, _f, _k in new)
        for form_id, found in people.items():
            tx.prefetch_people(form_id, found)
        tx.prefetch_snapshots(
            (rid, op.base_version) for op, rid in zip(ops, rids, strict=True) if op.base_version
        )
        tx.prefetch_device_versions(
            ctx.device_id, (rid for op, rid in zip(ops, rids, strict=True) if not op.base_version)
        )
        return fresh.Read(rids, read_forms, made)

    def _ops(self, tx: Tx, ctx: Ctx, ops: Sequence[p.Op], read: fresh.Read) -> list[dict[str, Any]]:
        """Apply the chunk's ops in order: creates of new records that meet nothing else of
        the chunk or the platform (``fresh.sort_creates``) as columns, creates that echo a
        held record unchanged (``echoes.known_creates``) from one pass, the others one by one.

        Why: a nightly push is mostly such creates, and the per-op path (an ``Outcome``, a
        ``Row``, a dict per table row, rules asked per op) was most of its server CPU (issue
        17). Their change numbers are taken in request order as the plain path's are."""
        creates = fresh.sort_creates(tx, ctx, ops, read, self.formset)
        fast = creates.fresh
        known = echoes.known_creates(tx, ctx, ops, read, self.formset, creates)
        if not fast and not known:
            return [self._one(tx, ctx, op) for op in ops]
        answers = echoes.results(tx, ctx, ops, known) if known else {}
        out: list[dict[str, Any] | None] = []
        for index, op in enumerate(ops):
            if index in fast:
                tx.touch("record", op.record_id)
                out.append(None)
            elif index in known:
                echoes.answer(tx, ctx, op, known[index])
                out.append(answers[index])
            else:
                out.append(self._one(tx, ctx, op))
        for index, result in fresh.write(tx, ctx, ops, read, fast):
            out[index] = result
        return out  # type: ignore[return-value]  # every None was filled

    @staticmethod
    def _ctx(user: User, device_id: str) -> Ctx:
        moment = now()
        return Ctx(
            user=user,
            device_id=device_id,
            at=iso(moment),
            stamp_limit=iso(moment + CLOCK_SKEW),
            server_stamp=iso(moment) + "#0000",
        )

    def _one(self, tx: Tx, ctx: Ctx, op: p.Op) -> dict[str, Any]:
        """Apply one op; a rejection is logged (and quarantined) instead."""
        try:
            outcome = self._apply(tx, ctx, op)
        except Reject as rej:
            result = rej.result(op)
            if rej.store:
                self._log_op(tx, ctx, op, Outcome(result, None))
                tx.quarantine_rows.append(
                    {
                        "op_id": op.op_id,
                        "device_id": ctx.device_id,
                        "username": ctx.user.username,
                        "record_id": op.record_id,
                        "form": op.form,
                        "op": db.dumps(op.model_dump()),
                        "code": result["reason"]["code"],
                        "reason": db.dumps(result["reason"]),
                        "at": ctx.at,
                    }
                )
            return result
        if outcome.store:
            self._log_op(tx, ctx, op, outcome)
        return outcome.result

    @staticmethod
    def _digest(ctx: Ctx, op: p.Op) -> str | None:
        """The op's content hash (None for base loads, whose ids name their content)."""
        if ctx.ids_name_content:
            return None
        return oplog.op_hash(op)

    def _log_op(self, tx: Tx, ctx: Ctx, op: p.Op, outcome: Outcome) -> None:
        # one op id with two contents in a batch was refused before: the id names the op
        digest = ctx.hashes.get(op.op_id) or oplog.op_hash(op)
        tx.log_op(
            {
                "op_id": op.op_id,
                "op_hash": digest,
                "device_id": ctx.device_id,
                "username": ctx.user.username,
                "record_id": outcome.result["record_id"],
                "version": outcome.version,
                "result": db.dumps(outcome.result),
                "at": ctx.at,
            }
        )

    def _apply(self, tx: Tx, ctx: Ctx, op: p.Op) -> Outcome:
        """PROTOCOL.md §5.4, steps 1-6."""
        prior = tx.op_rows.get(op.op_id) or ctx.known_ops.get(op.op_id)
        if prior is False or (
            isinstance(prior, Mapping)
            and not oplog.same_content(prior["op_hash"], self._digest(ctx, op))
        ):
            # checked for the whole request already; this is a concurrent push of the same id
            raise Reject(oplog.REUSED, retryable=True)
        if isinstance(prior, Mapping):
            original = db.loads(prior["result"])
            return Outcome(
                {**original, "status": "duplicate_op", "original_status": original["status"]},
                store=False,
            )
        form = self.formset.form(op.form)
        rid = ctx.aliases.get(op.record_id, op.record_id)
        merged_into = rid if rid != op.record_id else None
        fields = self._canonical_refs(tx, ctx, form, op.fields)
        row = tx.load(rid)
        if row is None:
            if op.kind in ("create", "update") and not op.base_version:
                return self._create(tx, ctx, op, form, fields)
            raise Reject("unknown_record", retryable=op.kind != "resolve", record_id=rid)
        if not ctx.user.in_scope(row.grid):
            # before form and version: neither may be probed outside the caller's scope
            raise Reject("out_of_scope")
        if row.form != form.id:
            raise Reject("wrong_form", record_id=rid)
        # An op naming a record merged away since (a supervisor's "same", a transfer): its
        # base version is one of that record's own versions, kept with its tombstone.
        own_base = (
            records.snapshot(tx, op.record_id, op.base_version)
            if merged_into is not None and op.base_version
            else None
        )
        if op.base_version and own_base is None and op.base_version > row.version:
            raise Reject("base_ahead", record_id=rid, version=row.version)
        if op.kind == "resolve":
            # a resolve of a record merged away since: its version and choices are that
            # record's, whatever number the held one has reached
            if op.base_version != row.version or own_base is not None:
                raise Reject("stale", record_id=rid, version=row.version)
            res = resolve(
                row.state(),
                row.conflict or [],
                fields,
                edited_at=ctx.edited_at(op),
                device=ctx.device_id,
                stamps=row.stamps,
            )
            merged = Merged(res.values, res.changed, (), res.stamps)
            return self._commit(
                tx, ctx, op, form, row, rid, merged, merged_into, open_after=res.remaining
            )
        if own_base is not None:
            base = own_base
        elif op.base_version:
            base = records.snapshot(tx, rid, op.base_version) or {}
        else:
            base = records.device_base(tx, ctx.device_id, rid)
        merged = merge(
            base,
            row.state(),
            op_changes(op.kind, fields),
            edited_at=ctx.edited_at(op),
            device=ctx.device_id,
            stamps=row.stamps,
        )
        return self._commit(tx, ctx, op, form, row, rid, merged, merged_into)

    def _create(self, tx: Tx, ctx: Ctx, op: p.Op, form: Form, fields: Mapping[str, Any]) -> Outcome:
        """A new record, or (natural key already live) a merge into the existing one + alias."""
        changes = op_changes("create", fields)
        fresh = merge_new(changes, edited_at=ctx.edited_at(op), device=ctx.device_id)
        if op.kind == "update" and not ctx.user.in_scope(records.grid_of(form, fresh.values)):
            raise Reject(
                "unknown_record", retryable=True
            )  # cannot stand alone: wait for the create
        owner = claims.owner_in_scope(tx, ctx, form, tx.derived.natural_keys(form, fresh.values))
        if owner is None:
            # also when a record outside the scope holds the key: the answer must not tell
            # (it becomes a transfer claim in _commit)
            return self._commit(tx, ctx, op, form, None, op.record_id, fresh, None)
        row = tx.load(owner)
        assert row is not None  # owner_in_scope loaded it
        server = row.state()
        # ``merge`` without reading the base first: an echo of the held values (the usual
        # create of a known record) changes nothing whatever this device saw before
        merged = unchanged(server, changes, row.stamps) or merge_fields(
            records.device_base(tx, ctx.device_id, owner),
            server,
            changes,
            edited_at=ctx.edited_at(op),
            device=ctx.device_id,
            stamps=row.stamps,
        )
        outcome = self._commit(tx, ctx, op, form, row, owner, merged, owner)
        records.add_alias(tx, op.record_id, owner, "natural_key", ctx.at)
        ctx.aliased(op.record_id, owner)
        return outcome

    def _commit(
        self,
        tx: Tx,
        ctx: Ctx,
        op: p.Op,
        form: Form,
        before: records.Row | None,
        rid: str,
        merged: Merged,
        merged_into: str | None,
        *,
        open_after: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        """Scope, natural keys and validation of the merged state; then write a version."""
        settled = settle.settle(tx, ctx, self.formset, form, before, rid, merged)
        state, data, deleted, held = settled.state, settled.data, settled.deleted, settled.held
        before_open = before.conflict or [] if before else []
        after_open = (
            open_after if open_after is not None else combine_conflicts(before_open, merged.hard)
        )
        if before is not None and settle.unwritten(merged, before_open, after_open):
            row = before
            tx.saved[rid] = (data, deleted, row.version)
        else:
            meta = records.Meta(
                kind=op.kind,
                username=ctx.user.username,
                at=ctx.at,
                op_id=op.op_id,
                device_id=ctx.device_id,
                author=op.author,
                edited_at=ctx.edited_at(op),
            )
            row = records.write(
                tx, form, before, rid, state, after_open, merged.stamps, meta, skip_keys=held
            )
            tx.saved[rid] = (data, deleted, row.version)
            claims.open_transfers(tx, ctx, form, before, rid, op, held)
            person = tx.sides[rid].person
            if person is not None and (
                before is None or tx.derived.person_of(form, before.data) != person
            ):
                reviews.add_candidates(tx, form, rid, person, ctx.at)
        status = "merged_into" if merged_into else ("conflict" if merged.hard else "applied")
        result: dict[str, Any] = {
            "op_id": op.op_id,
            "status": status,
            "record_id": rid,
            "version": row.version,
            "conflicts": [c.as_dict() for c in merged.conflicts],
        }
        if merged_into:
            result["merged_into"] = merged_into
        return Outcome(result, row.version)

    def _canonical_refs(
        self, tx: Tx, ctx: Ctx, form: Form, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Reference values naming a merged-away record now name its canonical record."""
        refs = _refs(form, fields)
        if not refs:
            return dict(fields)
        return {**fields, **{k: ctx.aliases.get(v, v) for k, v in refs.items()}}

    # -- pull --------------------------------------------------------------------------------

    def pull(
        self, user: User, since: int, limit: int, backfill: tuple[str, int] | None = None
    ) -> dict[str, Any]:
        """Changes in ``(since, cursor]`` within the caller's scope (PROTOCOL.md §8);
        ``backfill`` = (grid, upto): a grid that entered the scope (``scopes.py``)."""
        return json.loads(self.pull_json(user, since, limit, backfill))

    def pull_json(
        self, user: User | Who, since: int, limit: int, backfill: tuple[str, int] | None = None
    ) -> bytes:
        """``pull`` as the response body (see ``pulls.page_json``); ``user``: the caller, or
        how to authenticate them in the page's read transaction (``Who``)."""
        return pulls.page_json(self.engine, user, since, limit, backfill)

    def get_record(self, user: User, record_id: str) -> dict[str, Any]:
        """One record in the caller's scope, aliases followed."""
        with db.read(self.engine) as conn:
            rid = records.canonical(conn, [record_id]).get(record_id, record_id)
            row = records.load(conn, rid)
        if row is None or not user.in_scope(row.grid):
            raise ApiError(404, "not_found")
        return row.wire()


def _owners(
    tx: Tx, new: Sequence[tuple[str, str, list[str]]], taken: Container[tuple[str, str]]
) -> dict[str, str]:
    """New record id -> the record holding one of its keys (``Tx.key_owner`` of its keys:
    the first holder found), for those of ``new`` (record id, form, keys) with a key
    ``taken``; each form's keys asked as one column (``Tx.key_owners``). Why: a push of
    residents the platform knows asked ``key_owner`` per create (issue 17)."""
    picked = [(r, form, keys) for r, form, keys in new if any((form, k) in taken for k in keys)]
    by_form: dict[str, list[int]] = {}
    for at, (_r, form, _keys) in enumerate(picked):
        by_form.setdefault(form, []).append(at)
    found: list[str | None] = [None] * len(picked)
    for form, places in by_form.items():
        holders = iter(tx.key_owners(form, [k for at in places for k in picked[at][2]]))
        for at in places:
            found[at] = next(filter(None, [next(holders) for _key in picked[at][2]]), None)
    return {r: o for (r, _form, _keys), o in zip(picked, found, strict=True) if o is not None}


def _caller(user: User | Who, conn: Connection | None) -> User:
    return user if isinstance(user, User) else user(conn)


def _refs(form: Form, fields: Mapping[str, Any]) -> dict[str, str]:
    """The op's reference fields and the record ids they name."""
    return {k: v for k in form.reference_fields if isinstance(v := fields.get(k), str)}
