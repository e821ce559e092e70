"""Files that used to get through or take the machine down (issue 10, items 9 and 10).

Every case runs the real ``gridcollect`` command in a subprocess and checks what a person sees
(exit code, one line naming the file, row and column) and that the store, or the platform
database for ``server-admin load-base``, is byte for byte as before. Files that once ate all
memory run with an address-space limit, so a regression fails the test instead of the machine,
and their peak memory is measured in a fresh process (``resource.getrusage``).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from app.core.tabular import TableError, read_table
from sync.protocol import MAX_VALUE_CHARS
from sync.server import checks
from tests.e2e.test_cli import (
    COMMAND,
    HEADERS,
    SEED,
    cli_env,
    gridcollect,
    integrity,
    output,
    people,
    store_digest,
    write_csv,
)
from tests.e2e.test_cli import citizen as _citizen

MIB = 1024 * 1024
# The child may map this much address space: enough for the app (about 150 MB resident), far
# below what the old reader took (a MemoryError within it, not a machine out of memory).
ADDRESS_LIMIT = 3 * 1024 * MIB
# A generous bound on peak resident memory while a file is refused or read.
PEAK_RSS_LIMIT = 400 * MIB


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose store holds five residents (imported by the CLI itself)."""
    root = tmp_path_factory.mktemp("seeded")
    result = gridcollect(
        root / "data", "import", "--form", "resident", write_csv(root / "seed.csv", SEED)
    )
    assert result.returncode == 0, output(result)
    return root / "data"


@pytest.fixture
def data(seeded: Path, tmp_path: Path) -> Path:
    """A private copy of the seeded data dir."""
    target = tmp_path / "data"
    shutil.copytree(seeded, target)
    return target


def citizen(n: int, **cells: str) -> dict[str, str]:
    return _citizen(n, **cells)


def csv_bytes(rows: list[dict[str, str]], headers: list[str] | None = None) -> str:
    headers = headers or HEADERS
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows([[r.get(h, "") for h in headers] for r in rows])
    return out.getvalue()


def rows3(**cells: str) -> list[dict[str, str]]:
    """Three good residents; ``cells`` change the second (spreadsheet row 3)."""
    return [citizen(30), citizen(31, **cells), citizen(32)]


# -- measuring a run ------------------------------------------------------------------------

_MEASURE = """
import json, resource, subprocess, sys
limit = int(sys.argv[1])
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
r = subprocess.run(sys.argv[2:], capture_output=True, text=True, encoding="utf-8",
                   preexec_fn=cap, timeout=600)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps([r.returncode, r.stdout, r.stderr, peak]))
"""


def measured(data_dir: Path, *args: str | Path) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run the command under ``ADDRESS_LIMIT`` in a fresh process; (result, peak RSS bytes)."""
    argv = [*COMMAND, "--data-dir", str(data_dir), *map(str, args)]
    wrapper = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(ADDRESS_LIMIT), *argv],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=cli_env(),
        timeout=900,
        cwd=data_dir.parent,
    )
    assert wrapper.returncode == 0, wrapper.stderr
    code, stdout, stderr, peak = json.loads(wrapper.stdout)
    return subprocess.CompletedProcess(argv, code, stdout, stderr), peak


def assert_refused_once(result: subprocess.CompletedProcess[str], needles: list[str]) -> None:
    """Exit 2, no traceback, one line on stderr that names what is wrong."""
    assert result.returncode == 2, output(result)
    assert "Traceback" not in output(result), output(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# -- building workbooks byte by byte --------------------------------------------------------


def cells(row: dict[str, str]) -> list[str]:
    return [row.get(h, "") for h in HEADERS]


def small_xlsx(path: Path, rows: list[list[str]]) -> Path:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def rewrite_sheet(src: Path, dst: Path, change: Callable[[bytes], bytes]) -> Path:
    """Copy a workbook, passing its sheet XML through ``change``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            content = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = change(content)
            zout.writestr(item, content)
    return dst


def streamed_sheet(src: Path, dst: Path, pieces: Callable[[], Iterator[bytes]]) -> Path:
    """Copy a workbook whose sheetData is replaced by ``pieces`` (written without holding them)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            content = zin.read(item.filename)
            if item.filename != "xl/worksheets/sheet1.xml":
                zout.writestr(item, content)
                continue
            head, tail = re.split(rb"<sheetData>.*</sheetData>", content, flags=re.S)
            with zout.open(item.filename, "w", force_zip64=True) as fh:
                fh.write(head + b"<sheetData>")
                for piece in pieces():
                    fh.write(piece)
                fh.write(b"</sheetData>" + tail)
    return dst


def declared_size(path: Path, member: str, size: int) -> Path:
    """Make the central directory claim ``size`` unzipped bytes for ``member`` (a lying zip)."""
    raw = bytearray(path.read_bytes())
    name = member.encode()
    at = raw.find(b"PK\x01\x02")
    while at != -1:
        name_len = struct.unpack_from("<H", raw, at + 28)[0]
        if raw[at + 46 : at + 46 + name_len] == name:
            struct.pack_into("<I", raw, at + 24, size)
            path.write_bytes(bytes(raw))
            return path
        at = raw.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{member} not in {path}")


def _header_xlsx(tmp: Path) -> Path:
    return small_xlsx(tmp / "base.xlsx", [HEADERS, cells(citizen(40))])


def dimension_bomb(tmp: Path) -> Path:
    """4.9 KB: the whole sheet declared as its dimension and one value in its last cell."""

    def change(sheet: bytes) -> bytes:
        sheet = re.sub(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:XFD1048576"/>', sheet)
        last = b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
        return sheet.replace(b"</sheetData>", last + b"</sheetData>")

    return rewrite_sheet(_header_xlsx(tmp), tmp / "p.xlsx", change)


def dimension_only(tmp: Path) -> Path:
    """A good sheet that merely declares A1:XFD1048576: it is read as the rows it has."""
    src = small_xlsx(tmp / "base.xlsx", [HEADERS, *[cells(citizen(n)) for n in (41, 42)]])
    return rewrite_sheet(
        src,
        tmp / "p.xlsx",
        lambda s: re.sub(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:XFD1048576"/>', s),
    )


def many_rows_xlsx(tmp: Path, count: int = 2_000_000) -> Path:
    def pieces() -> Iterator[bytes]:
        for n in range(2, count + 2):
            yield b'<row r="%d"><c r="C%d" t="inlineStr"><is><t>x</t></is></c></row>' % (n, n)

    return streamed_sheet(_header_xlsx(tmp), tmp / "p.xlsx", pieces)


def wide_row_xlsx(tmp: Path) -> Path:
    """One row of ten million empty cells: 60 MB of XML in 60 KB of zip."""

    def pieces() -> Iterator[bytes]:
        yield b'<row r="1">'
        for _ in range(1000):
            yield b"<c/>" * 10_000
        yield b"</row>"

    return streamed_sheet(_header_xlsx(tmp), tmp / "p.xlsx", pieces)


def long_cell_xlsx(tmp: Path, size: int = 100 * MIB) -> Path:
    """One cell of 100 million characters: within the unzipped-size limit, over the cell limit."""

    def pieces() -> Iterator[bytes]:
        yield b'<row r="2"><c r="A2" t="inlineStr"><is><t>'
        for _ in range(size // MIB):
            yield b"A" * MIB
        yield b"</t></is></c></row>"

    return streamed_sheet(_header_xlsx(tmp), tmp / "p.xlsx", pieces)


def zip_bomb(tmp: Path, size: int = 513 * MIB) -> Path:
    """A 0.5 MB workbook whose sheet unzips to 513 MB (beyond the 512 MB a sheet may have)."""

    def pieces() -> Iterator[bytes]:
        yield b'<row r="2"><c r="A2"><v>1</v></c></row>'
        for _ in range(size // MIB):
            yield b" " * MIB

    return streamed_sheet(_header_xlsx(tmp), tmp / "p.xlsx", pieces)


def lying_zip(tmp: Path) -> Path:
    """The sheet claims 2 KB in the zip directory and inflates to 100 MB."""
    return declared_size(long_cell_xlsx(tmp), "xl/worksheets/sheet1.xml", 2048)


def many_rows_csv(tmp: Path, count: int = 2_000_000) -> Path:
    path = tmp / "p.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(HEADERS) + "\n")
        fh.writelines(f"1,,居民{n}\n" for n in range(count))
    return path


# case -> (file builder, text the one line must hold)
MEMORY_CASES: dict[str, tuple[Callable[[Path], Path], list[str]]] = {
    "dimension-bomb": (dimension_bomb, ["p.xlsx 第1048576行", "100000"]),
    "2M-rows-xlsx": (many_rows_xlsx, ["p.xlsx 第100003行", "100000 条记录"]),
    "2M-rows-csv": (many_rows_csv, ["p.csv 第100003行", "100000 条记录"]),
    "wide-row": (wide_row_xlsx, ["p.xlsx 第1行", "16384"]),
    "long-cell": (long_cell_xlsx, ["p.xlsx 第2行 [A]", "10000"]),
    "zip-bomb": (zip_bomb, ["p.xlsx", "解压后的内容过大", "sheet1.xml"]),
    "lying-zip": (lying_zip, ["p.xlsx", "Excel"]),
}


@pytest.mark.parametrize("case", sorted(MEMORY_CASES))
def test_huge_or_bombed_files_are_refused_in_bounded_memory(
    data: Path, tmp_path: Path, case: str
) -> None:
    make, needles = MEMORY_CASES[case]
    path = make(tmp_path)
    before = store_digest(data)
    for command in ("validate", "import"):
        result, peak = measured(data, command, "--form", "resident", path)
        assert_refused_once(result, needles)
        assert peak < PEAK_RSS_LIMIT, (command, peak // MIB)
    assert store_digest(data) == before
    assert integrity(data) == "ok"


def test_a_declared_dimension_is_ignored(data: Path, tmp_path: Path) -> None:
    path = dimension_only(tmp_path)
    result, peak = measured(data, "import", "--form", "resident", path)
    assert result.returncode == 0, output(result)
    assert peak < PEAK_RSS_LIMIT
    assert {citizen(n)["公民身份号码"] for n in (41, 42)} <= set(people(data))


def test_load_base_refuses_a_bomb_and_bad_text_and_leaves_the_platform_as_it_was(
    tmp_path: Path,
) -> None:
    db = tmp_path / "platform.db"
    url = f"sqlite:///{db}"
    assert gridcollect(tmp_path / "d", "server-admin", "--db", url, "init").returncode == 0
    before = "\n".join(sqlite3.connect(db).iterdump())
    nul_csv = _write(tmp_path, "p.csv", BOM8 + csv_bytes(rows3(姓名="张\x00三")).encode())
    for path, needles in (
        # load-base streams, so no record limit below Excel's own: the bomb's far cell is
        # refused by the column limit, in bounded memory as before
        (dimension_bomb(tmp_path), ["p.xlsx 第1048576行 [XFD]", "200"]),
        (nul_csv, ["p.csv 第3行 [姓名]", "空字符"]),
    ):
        result, peak = measured(tmp_path / "d", "server-admin", "--db", url, "load-base", path)
        assert_refused_once(result, needles)
        assert peak < PEAK_RSS_LIMIT
    assert "\n".join(sqlite3.connect(db).iterdump()) == before


# -- text: one decoding path, the server's checks -------------------------------------------


def _write(tmp: Path, name: str, content: bytes) -> Path:
    (tmp / name).write_bytes(content)
    return tmp / name


def _json(records: list[dict[str, str]]) -> str:
    return json.dumps(records, ensure_ascii=True)


def _lone_surrogate_json() -> bytes:
    text = _json(rows3(姓名="SURROGATE"))
    return text.replace("SURROGATE", "\\ud800").encode()


def _nul_key_json() -> bytes:
    """JSON whose key "联系电话" holds a NUL ("\\u0000" in the file)."""
    records = [{k.replace("联系", "联\x00系"): v for k, v in r.items()} for r in rows3()]
    return json.dumps(records, ensure_ascii=True).encode()


def _nan_json() -> bytes:
    records: list[dict[str, object]] = list(rows3())
    records[1] = {**records[1], "现住详址": float("nan")}
    return json.dumps(records, ensure_ascii=False).encode()


def _xlsx_with(tmp: Path, old: str, new: bytes) -> Path:
    """Three good residents in an XLSX whose text ``old`` is replaced by raw sheet XML ``new``."""
    src = small_xlsx(tmp / "base.xlsx", [HEADERS, *[cells(r) for r in rows3()]])
    return rewrite_sheet(src, tmp / "p.xlsx", lambda s: s.replace(old.encode(), new))


def _xlsx_long_cell(tmp: Path) -> Path:
    return _xlsx_with(tmp, citizen(31)["现住详址"], "路".encode() * 10_001)


def _xlsx_nul_reference(tmp: Path) -> Path:
    """XML cannot hold NUL: "&#0;" is a broken file, never a NUL in a value."""
    return _xlsx_with(tmp, citizen(31)["姓名"], b"&#0;")


BOM8 = codecs.BOM_UTF8
# case -> ((file name, bytes) or builder, text the one line must hold); all refused with exit 2.
TEXT_CASES: dict[str, tuple[object, list[str]]] = {
    "utf8-bom-nul": (
        ("p.csv", BOM8 + csv_bytes(rows3(姓名="张\x00三")).encode()),
        ["p.csv 第3行 [姓名]", "空字符"],
    ),
    "utf8-nul": (
        ("p.csv", csv_bytes(rows3(现住详址="文三路\x001号")).encode()),
        ["p.csv 第3行 [现住详址]", "空字符"],
    ),
    "utf16-bom-nul": (
        ("p.csv", csv_bytes(rows3(姓名="张\x00三")).encode("utf-16")),
        ["p.csv 第3行 [姓名]", "空字符"],
    ),
    "xlsx-too-long-cell": (_xlsx_long_cell, ["p.xlsx 第3行 [现住详址]", "10000"]),
    "xlsx-nul-reference": (_xlsx_nul_reference, ["p.xlsx", "Excel", "XML"]),
    "json-lone-surrogate": (("p.json", _lone_surrogate_json()), ["p.json 第2行 [姓名]", "代理项"]),
    "json-nan": (("p.json", _nan_json()), ["p.json 第2行 [现住详址]", "NaN"]),
    "json-nul-key": (("p.json", _nul_key_json()), ["p.json [联\\x00系电话]", "空字符"]),
    "json-huge-number": (
        ("p.json", _json(rows3(现住地="HUGE")).replace('"HUGE"', "1" * 5000).encode()),
        ["p.json", "JSON", "digits"],
    ),
    "too-long-cell": (
        ("p.csv", csv_bytes(rows3(现住详址="路" * 10_001)).encode()),
        ["p.csv 第3行 [现住详址]", "10000"],
    ),
    "nul-in-header": (
        ("p.csv", csv_bytes(rows3(), [*HEADERS[:-1], "联系\x00电话"]).encode()),
        ["p.csv 第1行 [L]", "空字符"],
    ),
    "utf16-broken": (
        ("p.csv", codecs.BOM_UTF16_LE + csv_bytes(rows3()).encode("utf-16-le") + b"\x00\xd8"),
        ["p.csv", "UTF-16", "编码"],
    ),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_text_the_platform_refuses_is_refused_with_row_and_column(
    data: Path, tmp_path: Path, case: str
) -> None:
    spec, needles = TEXT_CASES[case]
    path = spec(tmp_path) if callable(spec) else _write(tmp_path, *spec)  # type: ignore[misc]
    before = store_digest(data)
    for command in ("validate", "import"):
        result = gridcollect(data, command, "--form", "resident", path)
        assert_refused_once(result, needles)
    assert store_digest(data) == before
    english = gridcollect(data, "import", "--form", "resident", path, lang="en")
    assert_refused_once(english, [needles[0].replace(" 第", ", row ").replace("行", "")])


# Encodings that are accepted: the file imports as if it were UTF-8.
def _gb18030_rare() -> list[dict[str, str]]:
    """Names with characters GBK lacks (four-byte GB18030), as offices type them."""
    return [citizen(50, 姓名="王䶮"), citizen(51, 姓名="李𠀾"), citizen(52)]


ACCEPTED: dict[str, tuple[bytes, list[dict[str, str]]]] = {
    "utf-32-bom": (csv_bytes(rows3()).encode("utf-32"), rows3()),
    "utf-32-be-bom": (codecs.BOM_UTF32_BE + csv_bytes(rows3()).encode("utf-32-be"), rows3()),
    "utf-16-be-bom": (codecs.BOM_UTF16_BE + csv_bytes(rows3()).encode("utf-16-be"), rows3()),
    "gb18030": (csv_bytes(_gb18030_rare()).encode("gb18030"), _gb18030_rare()),
    "gb18030-bom": (b"\x84\x31\x95\x33" + csv_bytes(rows3()).encode("gb18030"), rows3()),
    "double-utf8-bom": (BOM8 + BOM8 + csv_bytes(rows3()).encode(), rows3()),
    "utf16-bom-then-feff": (("\ufeff" + csv_bytes(rows3())).encode("utf-16"), rows3()),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_every_accepted_encoding_imports_exactly(data: Path, tmp_path: Path, case: str) -> None:
    content, rows = ACCEPTED[case]
    path = _write(tmp_path, "p.csv", content)
    result = gridcollect(data, "import", "--form", "resident", path)
    assert result.returncode == 0, output(result)
    stored = people(data)
    for row in rows:
        assert stored[row["公民身份号码"]]["name"] == row["姓名"]


# -- the same checks as the server ----------------------------------------------------------

_VALUES = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=()), max_size=12),  # surrogates, NUL
    st.sampled_from(["a" * MAX_VALUE_CHARS, "a" * (MAX_VALUE_CHARS + 1), "\x00", "\udfff"]),
    st.floats(),
    st.integers(),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_VALUES, _VALUES), min_size=1, max_size=3))
def test_a_file_is_refused_exactly_when_the_server_would_refuse_a_value(
    cells: list[tuple[object, object]],
) -> None:
    """A JSON file (the one format that can carry every string) is read iff every key and
    value passes the server's push checks (``sync.server.checks``)."""
    records = [{"姓名": value, str(key): 1} for key, value in cells]
    server_refuses = any(not checks._plain_ok(r) for r in records)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.json"
        path.write_text(json.dumps(records, ensure_ascii=True), encoding="ascii")
        try:
            read_table(path)
        except TableError as exc:
            assert server_refuses, exc.message("en")
            assert exc.code in {"nul_char", "too_long", "bad_text", "bad_value"}
        else:
            assert not server_refuses


def test_the_record_limit_is_100000_records_under_a_title_and_a_header(tmp_path: Path) -> None:
    """What ``tests/bench/bench_import.py`` imports (100 000 rows) still fits, with a title."""
    path = tmp_path / "p.csv"
    lines = ["XX社区实有人口登记表\n", "姓名,现住详址\n"]
    path.write_text("".join(lines + [f"居民{n},文三路{n}号\n" for n in range(100_000)]), "utf-8")
    table = read_table(path)
    assert (len(table.rows), table.rows[-1][0]) == (100_000, 100_002)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("one,more\n")
    with pytest.raises(TableError) as info:
        read_table(path)
    assert (info.value.code, info.value.row) == ("too_many_rows", 100_003)
