"""``server-admin load-base``: a city-mirror file loaded as records the platform knows, streamed.

Base data goes through the same op pipeline as a device push, as the pseudo-device
``base-data``: a natural key the platform already has updates that record instead of adding a
person twice, and loading the same file again changes nothing (the op ids are content hashes,
so a load that was stopped half-way is finished by running it again).

Why streamed: a city's mirror holds millions of residents. The file is read twice: first only
through the reader's checks (a file refused whole stores nothing, as README promises), then a
chunk at a time into the pipeline, each chunk committed before the next is read. Memory holds
one chunk, whatever the file's length. The rows are coerced and checked through the form's
compiled plan (``rules.FormPlan``: the same rules as ``prepare_row`` + ``validate``, property-
tested against them), a chunk at a time.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core import ids, rules
from app.core.forms import Form, FormSet
from app.core.messages import lang_of
from app.core.tabular import STREAMED, stream_table
from app.core.transfer import map_headers, prepare_row
from sync import protocol as p
from sync.merge import STATUS
from sync.server import auth, checks, db, termrows
from sync.server.errors import ApiError
from sync.server.service import Service

BASE_DEVICE = "base-data"
BATCH = p.MAX_OPS  # rows per chunk: one push transaction of the service
Row = tuple[int, dict[str, Any]]


Problem = Callable[[int, str], None]


@dataclass
class LoadReport:
    """What a base-data load did; ``problems`` are (row, message) without personal data,
    kept here unless the load was given somewhere to send them (``on_problem``: a city's
    mirror may have a problem on every row, which must not pile up in memory)."""

    rows: int = 0
    created: int = 0
    merged: int = 0
    unchanged: int = 0
    drafts: int = 0
    rejected: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    on_problem: Problem | None = field(default=None, repr=False, compare=False)

    def problem(self, row: int, message: str) -> None:
        if self.on_problem is None:
            self.problems.append((row, message))
        else:
            self.on_problem(row, message)


def load_base(
    service: Service,
    form_id: str,
    path: str | Path,
    *,
    lang: str = "zh",
    progress: Callable[[int, int], None] | None = None,
    on_problem: Problem | None = None,
) -> LoadReport:
    """Load a city-mirror file (see the module doc); raises ``TableError`` (the file is
    unusable) or ``ValueError`` (unknown columns) before anything is stored.

    Rows that fail validation are loaded as drafts and listed in the report (or given to
    ``on_problem`` as they come), so the people are known to the platform and a worker
    completes them on site.
    """
    form = service.formset.form(form_id)
    report = LoadReport(rows=check_file(form, path), on_problem=on_problem)
    stream = stream_table(path, STREAMED)
    mapping, _unknown = map_headers(form, stream.headers)
    load_rows(service, form, mapping, stream.rows, report, lang=lang, progress=progress)
    # the loaded records' search terms now, in big sorted batches, not at the first search
    termrows.index_pending(service.engine, service.formset, None)
    db.analyze(service.engine, vacuum=True)  # the planner must know the tables are filled
    return report


def check_file(form: Form, path: str | Path) -> int:
    """The first reading: every row through the reader's checks, nothing kept; the rows."""
    stream = stream_table(path, STREAMED)
    _mapping, unknown = map_headers(form, stream.headers)
    if unknown:
        raise ValueError("unknown columns: " + ", ".join(unknown))
    return sum(1 for _ in stream.rows)


def load_rows(
    service: Service,
    form: Form,
    mapping: dict[str, str],
    rows: Iterable[Row],
    report: LoadReport,
    *,
    lang: str = "zh",
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Rows (number, cells by header) into the platform, a chunk at a time: a chunk is
    committed before the next one is read from ``rows``."""
    loader = _Chunks(service, form, mapping, lang)
    done = 0
    for chunk in _chunks(rows, BATCH):
        loader.store(chunk, report)
        done += len(chunk)
        if progress:
            progress(done, report.rows)


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


class _Chunks:
    """One load's settings, resolved once: the form's plan, the clock, the pseudo-user."""

    def __init__(self, service: Service, form: Form, mapping: dict[str, str], lang: str) -> None:
        self.service, self.form, self.mapping, self.lang = service, form, mapping, lang
        self.formset: FormSet = service.formset
        # a column named twice for one field: row by row, as the import does
        doubled = len(set(mapping.values())) < len(mapping)
        self.plan = None if doubled else rules.FormPlan(form, self.formset)
        self.stamp = auth.iso(auth.now()) + "#0000"
        self.user = auth.User(BASE_DEVICE, "admin", None, None, BASE_DEVICE)

    def checked(self, chunk: list[Row]) -> list[tuple[dict[str, Any], list[rules.Issue]]]:
        """(stored values, errors) of each row: ``prepare_row`` + ``validate``."""
        if self.plan is None:
            out = []
            for _, raw in chunk:
                data = prepare_row(self.form, self.formset, raw, self.mapping)
                out.append((data, rules.validate(self.form, data, self.formset)))
        else:
            prepared = self.plan.prepare([raw for _, raw in chunk], self.mapping)
            out = list(zip(prepared, self.plan.validate(prepared), strict=True))
        return [(data, [i for i in found if i.severity == "error"]) for data, found in out]

    def store(self, chunk: list[Row], report: LoadReport) -> None:
        """One chunk: ops built and shape-checked, applied in one push transaction."""
        batch: list[tuple[int, p.Op]] = []
        for (number, _), (data, issues) in zip(chunk, self.checked(chunk), strict=True):
            if issues:
                report.drafts += 1
                for issue in issues:
                    report.problem(number, issue.message(self.form, self.lang))
            op = self.op(data, "draft" if issues else "complete")
            try:
                checks.check_op_shape(self.formset, op, 0)
            except ApiError as exc:
                report.rejected += 1
                message = exc.body()["error"]["message_" + lang_of(self.lang)]
                report.problem(number, message)
                continue
            batch.append((number, op))
        if batch:
            _apply(self.service, self.user, batch, report)

    def op(self, data: dict[str, Any], status: str) -> p.Op:
        # the op id is a digest of the row: loading the same row again is a replay
        digest = hashlib.sha256(f"{self.form.id}|{db.dumps(data)}".encode()).hexdigest()[:40]
        return p.Op(
            op_id=f"base:{digest}",
            record_id=ids.uuid7(),
            form=self.form.id,
            kind="create",
            base_version=None,
            fields={**data, STATUS: status},
            edited_at=self.stamp,
            author=BASE_DEVICE,
        )


def _apply(
    service: Service, user: auth.User, batch: list[tuple[int, p.Op]], report: LoadReport
) -> None:
    results = service.apply(user, BASE_DEVICE, [op for _, op in batch], ids_name_content=True)
    for (number, _), result in zip(batch, results, strict=True):
        status = result["status"]
        if status == "merged_into":
            report.merged += 1
        elif status in ("applied", "conflict"):
            report.created += 1
        elif status == "duplicate_op":
            report.unchanged += 1
        else:
            report.rejected += 1
            reason = result.get("reason") or {}
            report.problem(number, reason.get("message_zh", ""))
