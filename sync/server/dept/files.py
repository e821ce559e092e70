"""Downloads of a grant's records for people: CSV (UTF-8 with BOM, or GBK for old Excel/WPS)
and XLSX, labels as headers, codes as their labels, every cell formula-safe.

Both stream: records are read a batch at a time in id order (``take.scan``), so the server never
holds the whole result. Every row ends with the export id, so even rows copied out of a leaked
file lead back to their download. GBK cannot hold every character (rare name characters such as
𠮷); those become "?" and the file's last line says how many, asking for the UTF-8 file.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from openpyxl import Workbook
from sqlalchemy import Engine

from app.core.forms import FormSet
from app.core.masking import AREA, BIRTH
from app.core.tabular.formula import neutralise
from sync.server import db
from sync.server.dept import trace
from sync.server.dept.grants import Grant
from sync.server.dept.shape import Shaper
from sync.server.dept.take import scan

BATCH = 10_000  # rows read, shaped and marked received (one commit) at a time
FORMATS = ("csv", "csv-gbk", "xlsx")
EXPORT_ID = ("导出编号", "Export id")
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "csv-gbk": "text/csv; charset=gbk",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass
class Download:
    """One download being written: what, for whom, and how many rows so far."""

    engine: Engine
    formset: FormSet
    grant: Grant
    taker: trace.Taker
    form: str
    fmt: str
    lang: str = "zh"
    export_id: str = ""
    rows: int = 0
    replaced: int = 0  # characters GBK could not hold

    def filename(self) -> str:
        ext = "xlsx" if self.fmt == "xlsx" else "csv"
        return f"grant{self.grant.id}-{self.form}-{self.export_id}.{ext}"

    def start(self) -> None:
        with db.write(self.engine) as conn:
            self.export_id = trace.begin(conn, self.taker, self.grant, "download", self.fmt)

    def header(self) -> list[str]:
        """The header row, formula-safe like every other row."""
        with db.read(self.engine) as conn:
            shaper = Shaper.of(conn, self.formset, self.grant)
        labels = [*shaper.headers(self.form, self.lang), EXPORT_ID[0 if self.lang == "zh" else 1]]
        return [neutralise(c) for c in labels]

    def batches(self) -> Iterator[list[list[str]]]:
        """The rows (cells as people read them, already formula-safe), a batch at a time; each
        batch is marked received before it is handed on."""
        after = ""
        with db.read(self.engine) as conn:
            shaper = Shaper.of(conn, self.formset, self.grant)  # one for the whole download
        writer = shaper.row_writer(self.form, self.lang)
        tail = [self.export_id]
        while True:
            with db.read(self.engine) as conn:
                got = list(scan(conn, shaper, after, BATCH, [self.form]))
            rows, ids = [], []
            for rid, form, grid, _version, data in got:
                if shaper.takes(form, grid, False, data):  # scan reads live records only
                    rows.append(writer.cells(data) + tail)
                    ids.append(rid)
            if ids:
                with db.write(self.engine) as conn:
                    trace.received(conn, self.grant, self.export_id, ids)
            self.rows += len(rows)
            if rows:
                yield rows
            if len(got) < BATCH:
                return
            after = got[-1][0]

    def finish(self) -> None:
        with db.write(self.engine) as conn:
            trace.finish(conn, self.taker, self.grant, self.export_id, "download", self.rows)


def _gbk_cell(text: str, counter: Download) -> str:
    try:
        text.encode("gbk")
        return text
    except UnicodeEncodeError:
        out = []
        for ch in text:
            try:
                ch.encode("gbk")
                out.append(ch)
            except UnicodeEncodeError:
                out.append("?")
                counter.replaced += 1
        return "".join(out)


def csv_stream(job: Download) -> Iterator[bytes]:
    """The CSV file, a batch of rows per chunk; the trace is finished even if the client goes."""
    gbk = job.fmt == "csv-gbk"
    encoding = "gbk" if gbk else "utf-8"

    def encode(rows: list[list[str]]) -> bytes:
        """Rows of safe cells as bytes; GBK cell by cell only when the batch needs it."""
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows(rows)
        text = buf.getvalue()
        if gbk:
            try:
                return text.encode(encoding)
            except UnicodeEncodeError:
                return encode_gbk(rows)
        return text.encode(encoding)

    def encode_gbk(rows: list[list[str]]) -> bytes:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows(
            [[_gbk_cell(c, job) for c in row] for row in rows]
        )
        return buf.getvalue().encode(encoding)

    try:
        yield (b"" if gbk else "\ufeff".encode()) + encode([job.header()])
        for rows in job.batches():
            yield encode(rows)
        if job.replaced:
            note = (
                f"注意：{job.replaced} 个字符无法用 GBK 表示，已替换为“?”；需要原字符请下载 UTF-8 版本。"
                if job.lang == "zh"
                else f"Note: {job.replaced} characters cannot be written in GBK and became '?'; "
                "download the UTF-8 file for them."
            )
            yield encode([[neutralise(note)]])
    finally:
        job.finish()


def xlsx_file(job: Download) -> str:
    """Write the XLSX (openpyxl write-only: rows go to disk as written) to a temporary file;
    returns its path (the caller streams and deletes it)."""
    wb = Workbook(write_only=True)
    sheet = wb.create_sheet("数据 Data")
    sheet.append(job.header())
    try:
        for rows in job.batches():
            for row in rows:
                sheet.append(row)  # cells are formula-safe already
        about = wb.create_sheet("说明 About")
        for key, value in _about(job):
            about.append([key, neutralise(value)])
        wb.properties.identifier = job.export_id
        wb.properties.title = f"GridCollect grant {job.grant.id} export {job.export_id}"
        fd, path = tempfile.mkstemp(suffix=".xlsx", prefix="gc-dept-")
        os.close(fd)
        wb.save(path)
    finally:
        job.finish()
    return path


def _about(job: Download) -> list[tuple[str, str]]:
    g = job.grant
    return [
        ("导出编号 Export id", job.export_id),
        ("部门 Department", g.department),
        ("授权 Grant", str(g.id)),
        ("用途 Purpose", g.purpose),
        ("法律依据 Legal basis", g.legal_basis),
        ("字段 Fields", ", ".join(g.field_names())),
        *_reduced_row(job),
        ("记录数 Records", str(job.rows)),
        ("取数人 Taken by", job.taker.actor),
    ]


def _reduced_row(job: Download) -> list[tuple[str, str]]:
    """The fields the file gives reduced beside a masked ID number (none: no row), so a
    reader of "1950-**-**" knows it is the grant, not missing data."""
    kept = {BIRTH: "仅年份 year only", AREA: "仅省级 province only"}
    found = [
        f"{form}.{name}: {kept[kind]}"
        for form, parts in job.grant.reduced(job.formset).items()
        for name, kind in parts.items()
    ]
    return [("因证件号码脱敏而简化 Reduced (ID number masked)", "; ".join(found))] if found else []
