"""Edits the platform refused that still wait on the device: which records, and why.

Part of ``sync.replica`` (import it from there). One reading of the outbox serves the headless
sync's exit code (``open_refusals``: counts) and the app's 被拒的修改 view (``refused_records``:
per record the platform's latest reason), so the two never disagree about what waits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.core.store import SETTLED, OutboxState, Store
from sync.replica.outgoing import _mends
from sync.replica.rows import _loads

OUT_OF_SCOPE = "out_of_scope"  # the refusal re-queued when the grid comes back (§11 rule 3a)

ChainRow = tuple[str, str, str | None]  # (state, kind, result) of one op, in outbox order


@dataclass(frozen=True)
class Refusals:
    """Live records with values the platform refused and has not had since (``total``); of
    those, ``out_of_scope``: refused only because their grid was not the user's, sent again
    when the grid comes back (PROTOCOL.md §11 rule 3a)."""

    total: int = 0
    out_of_scope: int = 0


@dataclass(frozen=True)
class Refused:
    """One record whose refused edits wait: the platform's latest reason for it.

    ``fields``: the fields the platform named (a whole-request 4xx names one, ``invalid`` lists
    its issues'), so a person knows where to look; ``out_of_scope``: every refusal waiting was
    the grid's, nothing to correct; ``sent_next``: an edit since the last refusal waits to be
    sent, so the next sync carries the correction (PROTOCOL.md §11 rule 3)."""

    record_id: str
    form: str
    code: str
    message_zh: str
    message_en: str
    fields: tuple[str, ...] = ()
    out_of_scope: bool = False
    sent_next: bool = False


def open_refusals(store: Store) -> Refusals:
    """The device's refused edits still waiting, whenever they were refused.

    Why records and not rejected ops: a rejected op stays ``rejected`` in the outbox for good,
    also once the person's next edit carried its values to the platform (PROTOCOL.md §11 rule
    3) — counted, it would wait for ever. A record waits while its chain is broken
    (``outgoing._chain_ok``); a record deleted on the device waits for nobody."""
    waiting = refused_records(store)
    return Refusals(len(waiting), sum(r.out_of_scope for r in waiting))


def refused_records(store: Store) -> list[Refused]:
    """Every record ``open_refusals`` counts, oldest refusal first, with its latest reason."""
    with store.transaction():
        suspects = store.outbox.live_records_refused()
        chains: dict[str, list[ChainRow]] = {r: [] for r in suspects}
        for record_id, state, kind, result in store.outbox.chains(suspects):
            chains[record_id].append((state, kind, result))
        forms = store.replica.forms_of(suspects)
    out: list[Refused] = []
    for record_id, rows in chains.items():
        refused = _waiting(record_id, forms.get(record_id, ""), rows)
        if refused is not None:
            out.append(refused)
    return out


def _waiting(record_id: str, form: str, rows: Iterable[ChainRow]) -> Refused | None:
    """The record's refusals after the last op that mended its chain, None when none is."""
    reasons = _unmended_refusals(rows)
    if not reasons:
        return None
    last, later = reasons[-1]
    codes = [str(reason.get("code") or "") for reason, _later in reasons]
    return Refused(
        record_id=record_id,
        form=form,
        code=codes[-1],
        message_zh=str(last.get("message_zh") or ""),
        message_en=str(last.get("message_en") or ""),
        fields=_fields(last),
        out_of_scope=all(code == OUT_OF_SCOPE for code in codes),
        sent_next=later,
    )


def _unmended_refusals(rows: Iterable[ChainRow]) -> list[tuple[dict[str, Any], bool]]:
    """The reasons of a record's refusals after the last op that mended its chain, each with
    whether a pending op follows it (an edit not sent yet)."""
    found: list[tuple[dict[str, Any], bool]] = []
    for state, kind, result in rows:
        if state == OutboxState.REJECTED:
            if f'"{SETTLED}":true' in (result or ""):  # the platform came to hold its values
                continue
            reason = (_loads(result) or {}).get("reason")
            found.append((reason if isinstance(reason, dict) else {}, False))
        elif _mends(state, kind, result or ""):
            found = []
        elif state == OutboxState.PENDING and found:
            found[-1] = (found[-1][0], True)
    return found


def _fields(reason: dict[str, Any]) -> tuple[str, ...]:
    """The field names a reason gives: its ``field`` (a 4xx), its issues' (``invalid``)."""
    names = [reason.get("field")]
    issues = reason.get("issues")
    if isinstance(issues, list):
        names += [i.get("field") for i in issues if isinstance(i, dict)]
    return tuple(dict.fromkeys(n for n in names if isinstance(n, str) and n))


def rejected_ops(store: Store) -> list[dict[str, Any]]:
    """Ops set aside by the server, with its reason (for a person to look at)."""
    with store.transaction():
        rows = store.outbox.rejected_ops()
    return [
        {"op_id": o, "record_id": r, "form": f, "kind": k, "result": _loads(res) or {}}
        for o, r, f, k, res in rows
    ]
