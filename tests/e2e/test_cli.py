"""The ``gridcollect`` command end to end: real files, a real store on disk, real processes.

Every test runs the installed console script in a subprocess with ``--data-dir`` in tmp_path
and looks at what a person would see (exit code, stdout/stderr) and at the SQLite file itself.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from app.core.forms import load_formset
from app.core.idnumber import check_char
from app.core.store import Store
from tests.factories import id_number as make_id

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("gridcollect")
DB = "gridcollect.sqlite"
# The headers a department's spreadsheet uses: zh labels, plus 公民身份号码 for the ID column.
FIELD_OF = {
    "人口类型": "population_type",
    "公民身份号码": "id_number",
    "姓名": "name",
    "性别": "gender",
    "出生日期": "birth_date",
    "民族": "ethnicity",
    "户籍地": "hukou_region",
    "现住地": "residence_region",
    "现住详址": "residence_address",
    "所属网格": "grid",
    "人户一致标识": "hukou_consistency",
    "联系电话": "phone",
}
HEADERS = list(FIELD_OF)


# -- helpers --------------------------------------------------------------------------------


COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "app"]


def cli_env(lang: str = "zh") -> dict[str, str]:
    """The caller's environment without GRIDCOLLECT_* settings that could redirect the data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDCOLLECT_")}
    env["GRIDCOLLECT_PASSPHRASE_FILE"] = os.environ["GRIDCOLLECT_PASSPHRASE_FILE"]  # conftest
    return env | {"GRIDCOLLECT_LANG": lang}


def gridcollect(
    data_dir: Path, *args: str | Path, lang: str = "zh", timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the console script as a person would (no test hooks, no shared process state)."""
    return subprocess.run(
        [*COMMAND, "--data-dir", str(data_dir), *map(str, args)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=cli_env(lang),
        timeout=timeout,
        cwd=data_dir.parent,
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def id_ending_in_x(birth: dt.date = dt.date(1979, 5, 4)) -> str:
    return next(make_id(birth, s) for s in range(1000) if make_id(birth, s).endswith("X"))


def citizen(n: int, **cells: str) -> dict[str, str]:
    """A 户籍 resident keyed by HEADERS; birth date and gender come from the ID number."""
    row = {
        "人口类型": "1",
        "公民身份号码": make_id(dt.date(1960, 1, 1) + dt.timedelta(days=97 * n), n % 1000),
        "姓名": f"居民{n}",
        "民族": "01",
        "户籍地": "330106",
        "现住地": "330106",
        "现住详址": f"文三路{n}号",
        "所属网格": f"G{n % 2 + 1:02d}",
        "人户一致标识": "01",
        "联系电话": f"139{n:08d}",
    }
    row.update(cells)
    return row


def write_csv(
    path: Path,
    rows: Iterable[dict[str, Any]],
    headers: list[str] | None = None,
    encoding: str = "utf-8",
) -> Path:
    rows = list(rows)
    headers = headers or HEADERS
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        writer.writerows([[r.get(h, "") for h in headers] for r in rows])
    return path


def write_xlsx(path: Path, rows: Iterable[dict[str, Any]], headers: list[str]) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        sheet.append([row.get(h, "") for h in headers])
    book.save(path)
    return path


def store_digest(data_dir: Path) -> str:
    """A checksum of every table's contents (schema, records, history, outbox, index...)."""
    store = Store.open(data_dir)  # the store is encrypted: opened with the test passphrase
    try:
        conn = store.conn  # sqlcipher3 has no iterdump: schema, then every table's rows
        tables = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall()
        dump = repr(
            conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        )
        for name, sql in tables:
            if sql and not sql.upper().startswith("CREATE VIRTUAL"):
                rows = conn.execute(f'SELECT * FROM "{name}"').fetchall()
                dump += repr(sorted(map(repr, rows)))
    finally:
        store.close()
    return hashlib.sha256(dump.encode()).hexdigest()


def integrity(data_dir: Path) -> str:
    store = Store.open(data_dir)
    try:
        return store.conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        store.close()


def people(data_dir: Path) -> dict[str, dict[str, Any]]:
    """id_number -> stored values of every live resident."""
    store = Store.open(data_dir)
    try:
        return {r.data["id_number"]: r.data for r in store.iter_records("resident")}
    finally:
        store.close()


SEED = [citizen(n) for n in range(1, 6)]


@pytest.fixture(scope="module")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose store already holds five residents (imported by the CLI itself)."""
    root = tmp_path_factory.mktemp("seeded")
    result = gridcollect(
        root / "data", "import", "--form", "resident", write_csv(root / "seed.csv", SEED)
    )
    assert result.returncode == 0, output(result)
    return root / "data"


@pytest.fixture
def data(seeded_template: Path, tmp_path: Path) -> Path:
    """A private copy of the seeded data dir."""
    target = tmp_path / "data"
    shutil.copytree(seeded_template, target)
    return target


# -- validate -------------------------------------------------------------------------------

TODAY = dt.date.today()


def validate_rows() -> tuple[list[dict[str, str]], set[tuple[int, str, str]]]:
    """Good rows, then one wrong thing per row, and the errors expected (row, field, code)."""
    good = citizen(1)["公民身份号码"]
    feb30 = "33010619900230" + "123"
    future = f"330106{TODAY.year + 1}0101123"
    rows = [
        citizen(1),  # row 2
        citizen(2, 出生日期=citizen(2)["公民身份号码"][6:14]),  # row 3: YYYYMMDD that agrees
        citizen(3, 公民身份号码=good[:17] + ("1" if good[17] != "1" else "2")),  # row 4
        citizen(4, 公民身份号码=feb30 + check_char(feb30)),  # row 5
        citizen(5, 公民身份号码=future + check_char(future)),  # row 6
        citizen(6, 民族="99"),  # row 7
        citizen(7, 姓名=""),  # row 8
        citizen(8, 出生日期="1950-01-01"),  # row 9
    ]
    expected = {
        (4, "id_number", "id.check_digit"),
        (5, "id_number", "id.birth_date"),
        (6, "id_number", "id.future"),
        (7, "ethnicity", "code.unknown"),
        (8, "name", "required"),
        (9, "birth_date", "id.birth_mismatch"),
    }
    return rows, expected


def test_validate_prints_one_json_object_per_error(tmp_path: Path) -> None:
    rows, expected = validate_rows()
    path = write_csv(tmp_path / "people.csv", rows)
    result = gridcollect(tmp_path / "data", "validate", "--form", "resident", path, "--json")
    assert result.returncode == 1, output(result)
    errors = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(e) == {"row", "field", "code", "message"} for e in errors)
    assert {(e["row"], e["field"], e["code"]) for e in errors} == expected
    assert len(errors) == len(expected)
    labels = {f.id: f.label.zh for f in load_formset().form("resident").fields.values()}
    for error in errors:  # each message names the field it is about
        assert labels[error["field"]] in error["message"]


def test_validate_text_names_file_row_and_column(tmp_path: Path) -> None:
    rows, _ = validate_rows()
    path = write_csv(tmp_path / "people.csv", rows)
    result = gridcollect(tmp_path / "data", "validate", "--form", "resident", path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    for row, column in [(4, "公民身份号码"), (7, "民族"), (8, "姓名"), (9, "出生日期")]:
        assert any(line.startswith(f"people.csv 第{row}行 [{column}]") for line in lines), lines
    english = gridcollect(tmp_path / "data", "validate", "--form", "resident", path, lang="en")
    assert "people.csv row 7 [民族]: Ethnicity" in english.stdout


def test_validate_exit_codes(tmp_path: Path) -> None:
    rows, _ = validate_rows()
    good = write_csv(tmp_path / "good.csv", rows[:2])
    some_bad = write_csv(tmp_path / "bad.csv", rows)
    unusable = write_csv(tmp_path / "cols.csv", rows[:2], [*HEADERS, "爱好"])
    for path, code in [(good, 0), (some_bad, 1), (unusable, 2), (tmp_path / "none.csv", 2)]:
        result = gridcollect(tmp_path / "data", "validate", "--form", "resident", path)
        assert result.returncode == code, (path.name, output(result))
    assert (
        "2 行，0 行有错误"
        in gridcollect(tmp_path / "data", "validate", "--form", "resident", good).stdout
    )
    # With --json an unusable file is one JSON object too, so a script can read every outcome.
    missing = gridcollect(tmp_path / "data", "validate", "--form", "resident", "none.csv", "--json")
    assert missing.returncode == 2
    (problem,) = [json.loads(line) for line in missing.stdout.splitlines()]
    assert (problem["row"], problem["field"], problem["code"]) == (0, "", "file.missing")
    assert "none.csv" in problem["message"]


# -- bad input: clear message, exit code, store unchanged ------------------------------------


def _valid(tmp: Path, name: str = "people.csv") -> Path:
    return write_csv(tmp / name, [citizen(n) for n in range(10, 13)])


def _write(tmp: Path, name: str, content: bytes) -> Path:
    (tmp / name).write_bytes(content)
    return tmp / name


def _undecodable(t: Path) -> Path:
    return _write(
        t, "p.csv", "人口类型,姓名\n".encode() + b"\x80\xff\n"
    )  # neither UTF-8 nor GB18030


def _utf16_without_bom(t: Path) -> Path:
    return _write(t, "p.csv", _valid(t).read_text("utf-8").encode("utf-16-le"))


def _unterminated_quote(t: Path) -> Path:  # rows 2-4 are fine, row 5 opens a quote
    return _write(t, "p.csv", _valid(t).read_bytes() + '1,"330106,没有结束的引号\n'.encode())


def _shifted_columns(t: Path) -> Path:  # an unquoted comma in row 5's address
    row = citizen(13, 现住详址="文三路1号,3栋")
    line = ",".join(row.get(h, "") for h in HEADERS)
    return _write(t, "p.csv", _valid(t).read_bytes() + line.encode() + b"\n")


def _wrong_values(t: Path) -> Path:
    rows = [
        citizen(10, 联系电话="电话没有"),
        citizen(11, 人户一致标识="maybe"),
        citizen(12, 出生日期="去年"),
    ]
    return write_csv(t / "p.csv", rows)


# case -> (file builder, exit code, what the output must name); the form is resident.
BAD_INPUTS: dict[str, tuple[Callable[[Path], Path], int, list[str]]] = {
    "missing-file": (lambda t: t / "none.csv", 2, ["none.csv", "不存在"]),
    "wrong-suffix": (lambda t: _valid(t, "people.txt"), 2, ["people.txt", ".txt", ".xlsx"]),
    "undecodable": (_undecodable, 2, ["p.csv", "编码", "UTF-8"]),
    "utf16-without-bom": (_utf16_without_bom, 2, ["p.csv", "编码"]),
    "unterminated-quote": (_unterminated_quote, 2, ["p.csv", "第5行", "CSV"]),
    "shifted-columns": (_shifted_columns, 2, ["p.csv", "第5行", "第13列"]),
    "unknown-column": (
        lambda t: write_csv(t / "p.csv", [citizen(10)], [*HEADERS, "爱好"]),
        2,
        ["p.csv", "第1行", "爱好"],
    ),
    "missing-required-column": (
        lambda t: write_csv(t / "p.csv", [citizen(10)], [h for h in HEADERS if h != "现住详址"]),
        2,
        ["p.csv", "第1行", "现住详址"],
    ),
    "broken-xlsx": (lambda t: _write(t, "p.xlsx", os.urandom(2048)), 2, ["p.xlsx", "Excel"]),
    "malformed-json": (
        lambda t: _write(t, "p.json", '[{"姓名": "张三", }'.encode()),
        2,
        ["p.json", "JSON", "line 1"],
    ),
    "wrong-values": (
        _wrong_values,
        1,
        ["p.csv 第2行 [联系电话]", "p.csv 第3行 [人户一致标识]", "p.csv 第4行 [出生日期]"],
    ),
}


def _assert_refused(data: Path, args: list[str], code: int, needles: list[str]) -> None:
    before = store_digest(data)
    for command in ("import", "validate"):
        result = gridcollect(data, command, *args)
        assert result.returncode == code, (command, output(result))
        for needle in needles:
            assert needle in output(result), (command, needle, output(result))
        assert "Traceback" not in result.stderr
    assert store_digest(data) == before
    assert integrity(data) == "ok"


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_refused_clearly_and_leaves_the_store_as_it_was(
    data: Path, tmp_path: Path, case: str
) -> None:
    make_file, code, needles = BAD_INPUTS[case]
    _assert_refused(data, ["--form", "resident", str(make_file(tmp_path))], code, needles)


def test_an_unknown_form_is_refused_with_the_list_of_forms(data: Path, tmp_path: Path) -> None:
    needles = ["people", "address", "house", "resident", "unit"]
    _assert_refused(data, ["--form", "people", str(_valid(tmp_path))], 2, needles)


def test_strict_import_with_one_bad_row_changes_nothing(data: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [citizen(20), citizen(21, 民族="99"), citizen(22)])
    before = store_digest(data)
    result = gridcollect(data, "import", "--form", "resident", path, "--strict")
    assert result.returncode == 1
    assert "p.csv 第3行 [民族]" in result.stdout and "未导入任何记录" in result.stderr
    assert store_digest(data) == before


def test_a_gbk_spreadsheet_imports(data: Path, tmp_path: Path) -> None:
    rows = [
        citizen(30, 姓名="欧阳娜娜", 现住详址="西湖区文三路30号（东）"),
        citizen(31, 姓名="龚喆"),
    ]
    path = write_csv(tmp_path / "gbk.csv", rows, encoding="cp936")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # really not UTF-8
    assert gridcollect(data, "validate", "--form", "resident", path).returncode == 0
    result = gridcollect(data, "import", "--form", "resident", path)
    assert result.returncode == 0, output(result)
    stored = people(data)
    assert stored[rows[0]["公民身份号码"]]["name"] == "欧阳娜娜"
    assert stored[rows[0]["公民身份号码"]]["residence_address"] == "西湖区文三路30号（东）"
    assert stored[rows[1]["公民身份号码"]]["name"] == "龚喆"
    assert len(stored) == len(SEED) + 2


# -- import ---------------------------------------------------------------------------------


def test_xlsx_by_label_and_csv_by_field_id(tmp_path: Path) -> None:
    by_label = [citizen(40), citizen(41)]
    labels = ["★" + h if h in ("姓名", "民族") else h for h in HEADERS]  # marks people add
    xlsx = write_xlsx(
        tmp_path / "by_label.xlsx",
        [{lab: r.get(h, "") for lab, h in zip(labels, HEADERS, strict=True)} for r in by_label],
        labels,
    )
    assert gridcollect(tmp_path / "a", "import", "--form", "resident", xlsx).returncode == 0
    ids = FIELD_OF
    by_id = write_csv(
        tmp_path / "by_id.csv",
        [{ids[h]: v for h, v in r.items()} for r in by_label],
        [ids[h] for h in HEADERS],
    )
    assert gridcollect(tmp_path / "b", "import", "--form", "resident", by_id).returncode == 0
    a, b = people(tmp_path / "a"), people(tmp_path / "b")
    assert a == b
    assert set(a) == {r["公民身份号码"] for r in by_label}
    first = a[by_label[0]["公民身份号码"]]
    assert first["name"] == "居民40" and first["ethnicity"] == "01" and first["grid"] == "G01"


def test_rejected_rows_are_reported_and_valid_rows_imported(data: Path, tmp_path: Path) -> None:
    rows = [citizen(50), citizen(51, 民族="99"), citizen(52), citizen(53, 现住详址=""), citizen(54)]
    result = gridcollect(data, "import", "--form", "resident", write_csv(tmp_path / "p.csv", rows))
    assert result.returncode == 1
    assert "p.csv 第3行 [民族]" in result.stdout and "p.csv 第5行 [现住详址]" in result.stdout
    assert "新建 3" in result.stdout and "拒绝 2 行" in result.stdout
    stored = people(data)
    assert len(stored) == len(SEED) + 3
    assert {rows[i]["公民身份号码"] for i in (0, 2, 4)} <= set(stored)
    as_json = gridcollect(data, "import", "--form", "resident", tmp_path / "p.csv", "--json")
    errors = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(e["row"], e["field"]) for e in errors] == [(3, "ethnicity"), (5, "residence_address")]


def _typed_badly(number: str) -> str:
    """The same ID as a grid worker may type it: full-width digits, spaces, lowercase x."""
    wide = "".join(chr(ord(c) + 0xFEE0) for c in number[:6])
    return f" {wide} {number[6:14]}\u3000{number[14:].lower()} "


def test_a_second_import_of_the_same_people_updates_them(data: Path, tmp_path: Path) -> None:
    x_id = id_ending_in_x()
    first = [citizen(60, 公民身份号码=x_id), *SEED[:2]]
    write_csv(tmp_path / "one.csv", first)
    assert gridcollect(data, "import", "--form", "resident", tmp_path / "one.csv").returncode == 0
    count = len(people(data))
    again = [
        {**first[0], "公民身份号码": _typed_badly(x_id), "联系电话": "13700000060"},
        {**first[1], "公民身份号码": _typed_badly(first[1]["公民身份号码"]), "现住详址": "新地址"},
        first[2],
    ]
    result = gridcollect(
        data, "import", "--form", "resident", write_csv(tmp_path / "two.csv", again)
    )
    assert result.returncode == 0, output(result)
    assert "新建 0，更新 2，未变 1" in result.stdout
    stored = people(data)
    assert len(stored) == count
    assert stored[x_id]["phone"] == "13700000060"
    assert stored[first[1]["公民身份号码"]]["residence_address"] == "新地址"
    store = Store.open(data)
    try:
        (record_id,) = store.find_by_key("resident", {"id_type": "111", "id_number": x_id})
        history = store.history(record_id)
    finally:
        store.close()
    assert [h.kind for h in history] == ["create", "update"]
    assert history[-1].changes == {"phone": ["13900000060", "13700000060"]}


def test_two_rows_with_the_same_id_in_one_file_make_one_record(data: Path, tmp_path: Path) -> None:
    row = citizen(70)
    twice = [row, citizen(71), {**row, "公民身份号码": row["公民身份号码"].lower(), "姓名": "改名"}]
    result = gridcollect(data, "import", "--form", "resident", write_csv(tmp_path / "p.csv", twice))
    assert result.returncode == 0, output(result)
    stored = people(data)
    assert len(stored) == len(SEED) + 2
    assert stored[row["公民身份号码"]]["name"] == "改名"


def _varied_people() -> list[dict[str, str]]:
    """Citizens, a migrant with a permit, a foreigner (passport: no GB 11643) and flags."""
    migrant = citizen(81, 人口类型="2", 人户一致标识="")
    migrant.update(
        {
            "流入原因": "01",
            "办证类型": "01",
            "证件号码[permit_number]": "JZZ330106001",
            "住所类型": "02",
            "特殊人群": "01;03",
            "是否重点关注人员": "是",
        }
    )
    foreigner = {
        "人口类型": "3",
        "证件类型": "414",
        "公民身份号码": "E12345678",
        "姓名": "Anna",
        "外文姓": "MUELLER",
        "性别": "2",
        "出生日期": "1990-02-03",
        "国籍（地区）": "DEU",
        "来华目的": "03",
        "现住地": "330106",
        "现住详址": "留学生公寓3号",
        "所属网格": "G02",
    }
    return [citizen(80, 曾用名="小八"), migrant, foreigner, citizen(82, 联系电话="0571-87654321")]


VARIED_HEADERS = [
    *HEADERS,
    "证件类型",
    "曾用名",
    "流入原因",
    "办证类型",
    "证件号码[permit_number]",
    "住所类型",
    "特殊人群",
    "是否重点关注人员",
    "外文姓",
    "国籍（地区）",
    "来华目的",
]


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
@pytest.mark.parametrize("header", ["id", "label"])
def test_import_export_import_round_trip(tmp_path: Path, suffix: str, header: str) -> None:
    source = write_csv(tmp_path / "in.csv", _varied_people(), VARIED_HEADERS)
    result = gridcollect(tmp_path / "a", "import", "--form", "resident", source)
    assert result.returncode == 0, output(result)
    out = tmp_path / f"out.{suffix}"
    result = gridcollect(
        tmp_path / "a",
        "export",
        "--form",
        "resident",
        "--out",
        out,
        "--unmasked",
        "--header",
        header,
    )
    assert result.returncode == 0, output(result)
    assert "已导出 4 条记录" in result.stdout
    result = gridcollect(tmp_path / "b", "import", "--form", "resident", out)
    assert result.returncode == 0, output(result)
    original, copy = people(tmp_path / "a"), people(tmp_path / "b")
    assert copy == original
    assert original["E12345678"]["nationality"] == "DEU"
    migrant = next(p for p in original.values() if p["population_type"] == "2")
    assert migrant["special_group"] == ["01", "03"] and migrant["is_focus"] is True
    assert migrant["permit_number"] == "JZZ330106001"


def _file_text(path: Path) -> str:
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    return path.read_text("utf-8-sig")


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_export_masks_every_sensitive_field(tmp_path: Path, suffix: str) -> None:
    rows = _varied_people()
    write_csv(tmp_path / "in.csv", rows, VARIED_HEADERS)
    assert (
        gridcollect(tmp_path / "a", "import", "--form", "resident", tmp_path / "in.csv").returncode
        == 0
    )
    out = tmp_path / f"out.{suffix}"
    assert gridcollect(tmp_path / "a", "export", "--form", "resident", "--out", out).returncode == 0
    text = _file_text(out)
    form = load_formset().form("resident")
    secrets = [
        str(value)
        for record in people(tmp_path / "a").values()
        for field_id, value in record.items()
        if form.fields[field_id].sensitive and isinstance(value, str) and len(value) > 4
    ]
    assert len(secrets) >= 8  # ID numbers, phones and the permit number are all in the data
    for secret in secrets:
        assert secret not in text
    for row in rows:  # nor the ID numbers and phones as they were typed
        for cell in (row.get("公民身份号码"), row.get("联系电话")):
            if cell:
                assert cell not in text and cell.replace("-", "") not in text
    sheet = _read_export(out)
    masked_ids = [r["证件号码"] for r in sheet]
    assert all("*" in v for v in masked_ids)
    assert {r["姓名"] for r in sheet} == {r["姓名"] for r in rows}  # names are not sensitive


def _read_export(path: Path) -> list[dict[str, str]]:
    if path.suffix == ".xlsx":
        values = list(load_workbook(path, read_only=True).active.iter_rows(values_only=True))
        head = values[0]
        return [dict(zip(head, row, strict=True)) for row in values[1:]]
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_stats_counts_per_form_status_and_grid(data: Path, tmp_path: Path) -> None:
    expected: dict[tuple[str, str, str], int] = {}
    for row in SEED:
        key = ("resident", "complete", row["所属网格"])
        expected[key] = expected.get(key, 0) + 1
    store = Store.open(data)  # records the GUI would make: drafts, another form, a deletion
    try:
        store.save("resident", {"name": "草稿", "grid": "G01"}, status="draft")
        store.save("house", {"grid": "G02"}, status="draft")
        gone = store.save("house", {"grid": "G02"}, status="draft")
        store.delete(gone.id)
    finally:
        store.close()
    expected |= {("resident", "draft", "G01"): 1, ("house", "draft", "G02"): 1}
    as_json = gridcollect(data, "stats", "--json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == [
        {"form": f, "status": s, "grid": g, "count": n} for (f, s, g), n in sorted(expected.items())
    ]
    text = gridcollect(data, "stats")
    assert text.returncode == 0
    lines = [line.split() for line in text.stdout.splitlines()]
    for (form, status, grid), n in expected.items():
        assert [form, status, grid, str(n)] in lines, text.stdout
    assert f"合计 {sum(expected.values())} 条" in text.stdout
    assert "total" in gridcollect(data, "stats", lang="en").stdout


# -- a killed import ------------------------------------------------------------------------


def _big_csv(path: Path, count: int) -> Path:
    start = dt.date(1950, 1, 1)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADERS)
        for i in range(count):
            number = make_id(start + dt.timedelta(days=i // 900), 100 + i % 900, area="330106")
            writer.writerow(
                [
                    "1",
                    number,
                    f"批量{i}",
                    "",
                    "",
                    "01",
                    "330106",
                    "330106",
                    f"路{i}号",
                    f"G{i % 7:02d}",
                    "01",
                    f"137{i:08d}",
                ]
            )
    return path


def test_a_process_killed_mid_import_leaves_the_store_as_it_was(data: Path, tmp_path: Path) -> None:
    big = _big_csv(tmp_path / "big.csv", 30_000)
    before, before_people = store_digest(data), people(data)
    wal = data / f"{DB}-wal"
    proc = subprocess.Popen(
        [*COMMAND, "--data-dir", str(data), "import", "--form", "resident", str(big)],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 600
        # Inside the transaction the page cache spills uncommitted pages into the WAL.
        while not (wal.exists() and wal.stat().st_size > 1_000_000):
            assert proc.poll() is None, (
                f"import ended before it could be killed: {proc.communicate()}"
            )
            assert time.monotonic() < deadline, "the import never started writing"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert integrity(data) == "ok"
    assert store_digest(data) == before
    assert people(data) == before_people


# -- packaging ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_non_editable_install_finds_its_forms(tmp_path: Path) -> None:
    """Build a wheel from a copy of the sources and install it into a fresh venv, offline."""
    from importlib.metadata import version

    major, minor = (int(p) for p in version("setuptools").split(".")[:2])
    assert (major, minor) >= (77, 0), (
        "an offline wheel build needs setuptools >= 77 (bdist_wheel built in, an SPDX licence) "
        "in this venv; install the dev extras"
    )
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("app", "sync", "forms"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    built = subprocess.run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("gridcollect-*.whl")
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300
    )
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # Dependencies come from the dev venv's site-packages as a plain path entry: its .pth files
    # (the editable install's finder) are not run, so app/ and forms/ can only come from the wheel.
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (site / "zz_dev_deps.pth").write_text(deps + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    probe = (
        "import app, forms; from app.core.forms import load_formset; "
        "print(len(load_formset().forms)); print(forms.__file__); print(app.__file__)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    ran = subprocess.run(
        [str(python), "-c", probe],
        capture_output=True,
        text=True,
        cwd=outside,
        env=env,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    count, forms_file, app_file = ran.stdout.split()
    assert count == "4"
    assert Path(forms_file).is_relative_to(site) and Path(app_file).is_relative_to(site)
    # The installed console script works on a file too.
    write_csv(outside / "p.csv", [citizen(1)])
    script = subprocess.run(
        [
            str(venv / "bin" / "gridcollect"),
            "--data-dir",
            str(outside / "d"),
            "validate",
            "--form",
            "resident",
            "p.csv",
        ],
        capture_output=True,
        text=True,
        cwd=outside,
        env=env,
        timeout=300,
    )
    assert script.returncode == 0, script.stdout + script.stderr
    # The platform's schema revisions ship in the wheel: upgrade replays them from empty.
    upgraded = subprocess.run(
        [
            str(venv / "bin" / "gridcollect"),
            "--lang",
            "en",
            "server-admin",
            "--db",
            f"sqlite:///{outside / 'platform.db'}",
            "upgrade",
        ],
        capture_output=True,
        text=True,
        cwd=outside,
        env=env,
        timeout=300,
    )
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert "schema upgraded from empty to" in upgraded.stdout
