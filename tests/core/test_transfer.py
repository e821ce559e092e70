"""Reading, mapping, validating, importing and exporting files of records (in process).

The command-line behaviour (exit codes, messages, the store on disk) is in tests/e2e/test_cli.py;
here are the pieces: header mapping (with Hypothesis), encodings, malformed files, row numbers,
the import's duplicate handling and its all-or-nothing transaction.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from app.core import transfer
from app.core.forms import FormSet
from app.core.idnumber import check_char
from app.core.store import Store
from app.core.tabular import TableError, decode, read_table, write_table
from app.core.transfer import (
    Cancelled,
    export_headers,
    import_file,
    map_headers,
    validate_file,
)
from tests.factories import id_number

TODAY = dt.date(2024, 6, 1)
HEADERS = [
    "人口类型",
    "公民身份号码",
    "姓名",
    "民族",
    "户籍地",
    "现住地",
    "现住详址",
    "所属网格",
    "人户一致标识",
    "联系电话",
]


def person(seq: int, **cells: str) -> dict[str, str]:
    """One 户籍 resident row keyed by the zh headers a department would use."""
    row = {
        "人口类型": "1",
        "公民身份号码": id_number(dt.date(1980, 1, 1) + dt.timedelta(days=seq), seq % 1000),
        "姓名": f"测试{seq}",
        "民族": "01",
        "户籍地": "330106",
        "现住地": "330106",
        "现住详址": f"文三路{seq}号",
        "所属网格": "G01",
        "人户一致标识": "01",
        "联系电话": f"138{seq:08d}",
    }
    row.update(cells)
    return row


def write_csv(
    path: Path,
    rows: list[dict[str, str]],
    headers: list[str] | None = None,
    encoding: str = "utf-8",
) -> Path:
    headers = headers or list(rows[0])
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        writer.writerows([[r.get(h, "") for h in headers] for r in rows])
    return path


def canon(text: str) -> str:
    """What a header means regardless of width, case and spacing (the test's own definition)."""
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


# -- header mapping -------------------------------------------------------------------------

_NOISE = st.sampled_from(["", " ", "\u3000", "\t", "★", "*", "＊"])
_SUFFIX = st.sampled_from(["", "（必填）", "(必填)", ":", "：", " ", "(Required)"])


@st.composite
def decorated(draw: st.DrawFn, name: str) -> str:
    """``name`` as it arrives from spreadsheets: marks, spaces, full width, mixed case."""
    out = []
    for ch in name:
        if ch.isascii() and ch.isprintable() and ch != " " and draw(st.booleans()):
            ch = chr(ord(ch) + 0xFEE0)  # the IME's full-width form
        if ch.isalpha() and ch.isascii():
            ch = ch.upper() if draw(st.booleans()) else ch.lower()
        out.append(ch + draw(st.sampled_from(["", "", " ", "\u3000"])))
    return draw(_NOISE) + "".join(out) + draw(_SUFFIX)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_field_id_or_label_maps_back_to_a_field_of_that_name(
    formset: FormSet, data: st.DataObject
) -> None:
    form = formset.form(data.draw(st.sampled_from(sorted(formset.forms)), label="form"))
    fld = data.draw(st.sampled_from(list(form.fields.values())), label="field")
    name = data.draw(st.sampled_from([fld.id, fld.label.zh, fld.label.en]), label="name")
    header = data.draw(decorated(name), label="header")
    mapping, unknown = map_headers(form, [header])
    assert unknown == []
    target = form.fields[mapping[header]]
    # Labels may be shared (证件号码), so the header maps to *a* field with that name.
    assert canon(name) in {canon(target.id), canon(target.label.zh), canon(target.label.en)}


def test_headers_departments_use_map_by_type(formset: FormSet) -> None:
    resident = formset.form("resident")
    mapping, unknown = map_headers(
        resident, ["公民身份号码", "身份证号", "联系电话", "序号", "备注"]
    )
    assert mapping == {"公民身份号码": "id_number", "身份证号": "id_number", "联系电话": "phone"}
    assert unknown == []
    # The form's own label wins over an alias: 户主公民身份号码 is the head's number.
    assert map_headers(resident, ["户主公民身份号码"])[0] == {"户主公民身份号码": "head_id_number"}
    # A unit has no citizen ID number among its identifiers: the alias is not invented.
    assert map_headers(formset.form("unit"), ["公民身份号码"])[1] == ["公民身份号码"]


def test_shared_labels_are_told_apart_by_field_id(formset: FormSet) -> None:
    resident = formset.form("resident")
    # Labels may repeat across a form (they did here before 居住证件号码); label[id] disambiguates.
    mapping, _ = map_headers(resident, ["证件号码", "证件号码[permit_number]", "姓名（name）"])
    assert mapping == {
        "证件号码": "id_number",
        "证件号码[permit_number]": "permit_number",
        "姓名（name）": "name",
    }
    assert map_headers(resident, ["姓名[no_such_field]"])[1] == ["姓名[no_such_field]"]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("header", ["label", "id"])
def test_export_headers_are_unique_and_map_back_to_every_field(
    formset: FormSet, lang: str, header: str
) -> None:
    for form in formset.forms.values():
        headers = export_headers(form, lang=lang, header=header)
        assert len(set(headers)) == len(headers)
        mapping, unknown = map_headers(form, headers)
        assert unknown == []
        assert [mapping[h] for h in headers] == list(form.fields)


# -- reading files --------------------------------------------------------------------------


def test_gbk_and_utf16_with_bom_decode(tmp_path: Path) -> None:
    text = "姓名,民族\n张三,汉族\n"
    assert decode(text.encode("gbk"), "x.csv") == text
    assert decode(codecs.BOM_UTF8 + text.encode(), "x.csv") == text
    assert decode(text.encode("utf-16"), "x.csv") == text  # Excel's "Unicode text" has a BOM


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\x80\xff", "encoding"),
        ("姓名,民族\n".encode("utf-16-le"), "encoding_nobom"),
        (b"a,b\n\x00\x01\x02\x00\n", "encoding_nobom"),
        (codecs.BOM_UTF16_LE + b"\x00\xd8", "encoding_bom"),  # a lone surrogate in UTF-16
    ],
    ids=["not-gb18030", "utf16-without-bom", "binary", "bad-utf16"],
)
def test_undecodable_bytes_are_refused_not_guessed(raw: bytes, code: str) -> None:
    with pytest.raises(TableError) as info:
        decode(raw, "x.csv")
    assert info.value.code == code
    assert "x.csv" in info.value.message("zh") and "编码" in info.value.message("zh")


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_csv_separator_comes_from_the_header_line(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "people.csv"
    path.write_text(f"姓名{sep}现住详址\n张三{sep}文三路1号, 3栋\n", encoding="utf-8")
    if sep == ",":  # a comma inside a cell must then be quoted
        path.write_text('姓名,现住详址\n张三,"文三路1号, 3栋"\n', encoding="utf-8")
    table = read_table(path)
    assert table.headers == ["姓名", "现住详址"]
    assert table.rows == [(2, {"姓名": "张三", "现住详址": "文三路1号, 3栋"})]


def test_rows_are_numbered_as_a_spreadsheet_shows_them(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text('姓名,现住详址\n张三,"两行\n地址"\n\n李四,x\n', encoding="utf-8")
    assert [n for n, _ in read_table(path).rows] == [2, 4]  # a cell with a line break is one row
    book = Workbook()
    book.active.append(["姓名"])
    book.active.append(["张三"])
    book.active.append([None])
    book.active.append(["李四"])
    book.save(tmp_path / "people.xlsx")
    assert [n for n, _ in read_table(tmp_path / "people.xlsx").rows] == [2, 4]
    (tmp_path / "people.json").write_text('[{"姓名": "张三"}, {"姓名": "李四"}]', encoding="utf-8")
    table = read_table(tmp_path / "people.json")
    assert [n for n, _ in table.rows] == [1, 2] and table.header_row == 0


def test_blank_and_title_lines_above_the_table_are_skipped(tmp_path: Path) -> None:
    book = Workbook()
    book.active["A3"] = "XX社区实有人口登记表"
    book.active.append(["姓名", "民族"])
    book.active.append(["张三", "01"])
    book.save(tmp_path / "titled.xlsx")
    table = read_table(tmp_path / "titled.xlsx")
    assert table.headers == ["姓名", "民族"]
    assert table.rows == [(5, {"姓名": "张三", "民族": "01"})]
    (tmp_path / "titled.csv").write_text("标题,,\n姓名,民族,\n张三,01,\n", encoding="utf-8")
    assert read_table(tmp_path / "titled.csv").rows == [(3, {"姓名": "张三", "民族": "01"})]
    one_column = tmp_path / "one.csv"
    one_column.write_text("姓名\n张三\n", encoding="utf-8")  # not a title: the table has one column
    assert read_table(one_column).rows == [(2, {"姓名": "张三"})]


@pytest.mark.parametrize(
    ("name", "content", "code", "row"),
    [
        ("bad.csv", '姓名,现住详址\n张三,x\n李四,"没有结束的引号\n王五,y\n', "csv", 3),
        ("dup.csv", "姓名,姓名\n张三,李四\n", "duplicate_header", None),
        ("shifted.csv", "姓名,现住详址\n张三,x\n李四,文三路1号,3栋\n", "unnamed_cell", 3),
        ("gap.csv", "姓名,,民族\n张三,x,01\n", "unnamed_cell", 2),
        ("empty.csv", "\n\n", "empty", None),
        ("bad.xlsx", b"PK\x03\x04 not really a zip", "xlsx", None),
        ("bad.json", '[{"姓名": "张三"},', "json", None),
        ("object.json", '{"姓名": "张三"}', "json", None),
        ("people.xls", b"\xd0\xcf\x11\xe0", "suffix", None),
    ],
)
def test_unusable_files_raise_with_file_and_reason(
    tmp_path: Path, name: str, content: str | bytes, code: str, row: int | None
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(TableError) as info:
        read_table(path)
    assert info.value.code == code
    assert info.value.row == row
    for lang in ("zh", "en"):
        assert name in info.value.message(lang)
    if row:
        assert f"第{row}行" in info.value.message("zh") and f"row {row}" in info.value.message("en")


def test_a_damaged_sheet_inside_a_valid_zip_is_unusable(tmp_path: Path) -> None:
    import zipfile

    good = tmp_path / "good.xlsx"
    book = Workbook()
    book.active.append(["姓名"])
    book.save(good)
    bad = tmp_path / "bad.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.startswith("xl/worksheets/"):
                data = data[: len(data) // 2]  # truncated XML
            dst.writestr(item, data)
    with pytest.raises(TableError) as info:
        read_table(bad)
    assert info.value.code == "xlsx"


def test_missing_file_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TableError) as info:
        read_table(tmp_path / "nope.csv")
    assert info.value.code == "missing"
    with pytest.raises(TableError) as info:
        read_table(tmp_path)  # a directory is not a file
    assert info.value.code == "missing"


# -- writing files --------------------------------------------------------------------------


def test_xlsx_cells_are_text_never_formulas(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    rows = [['=HYPERLINK("http://x")', "007", "a\x01b"]]
    assert write_table(path, ["a", "b", "c"], iter(rows)) == 1
    sheet = load_workbook(path).active
    cells = [c for c in next(sheet.iter_rows(min_row=2, max_row=2))]
    assert [c.data_type for c in cells] == ["s", "s", "s"]
    assert [c.value for c in cells] == ['=HYPERLINK("http://x")', "007", "ab"]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_failed_export_keeps_the_previous_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out{suffix}"
    write_table(path, ["a"], iter([["old"]]))
    before = path.read_bytes()

    def rows():
        yield ["new"]
        raise RuntimeError("store went away")

    with pytest.raises(RuntimeError):
        write_table(path, ["a"], rows())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_export_into_a_missing_folder_is_a_table_error(tmp_path: Path) -> None:
    with pytest.raises(TableError) as info:
        write_table(tmp_path / "no" / "out.csv", ["a"], iter([]))
    assert info.value.code == "write"


# -- validation -----------------------------------------------------------------------------


def _codes(errors: list[transfer.RowError]) -> set[tuple[int, str, str]]:
    return {(e.row, e.field, e.code) for e in errors}


def test_birth_date_and_gender_columns_are_optional_when_the_id_gives_them(
    tmp_path: Path, formset: FormSet
) -> None:
    form = formset.form("resident")
    path = write_csv(tmp_path / "p.csv", [person(1), person(2)])
    report = validate_file(path, form, formset, today=TODAY)
    assert report.errors == [] and report.rows == 2 and report.ok


def test_a_bad_id_number_is_one_error_not_three(tmp_path: Path, formset: FormSet) -> None:
    good = person(1)["公民身份号码"]
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    path = write_csv(tmp_path / "p.csv", [person(1, 公民身份号码=wrong)])
    report = validate_file(path, formset.form("resident"), formset, today=TODAY)
    assert _codes(report.errors) == {(2, "id_number", "id.check_digit")}
    assert report.errors[0].column == "公民身份号码"  # as the file spells it
    assert report.rejected_rows == [2]


def test_column_problems_are_reported_at_the_header(tmp_path: Path, formset: FormSet) -> None:
    rows = [{**person(1), "证件号码": person(1)["公民身份号码"], "爱好": "x"}]
    headers = [h for h in rows[0] if h != "现住详址"]
    path = write_csv(tmp_path / "p.csv", rows, headers)
    report = validate_file(path, formset.form("resident"), formset, today=TODAY)
    assert _codes(report.errors) == {
        (1, "", "column.unknown"),
        (1, "id_number", "column.duplicate"),
        (1, "residence_address", "column.missing"),
    }
    assert report.column_problems and report.rejected_rows == []
    messages = " ".join(e.message for e in report.errors)
    assert "爱好" in messages and "现住详址" in messages and "公民身份号码" in messages


def test_json_records_count_from_one_and_columns_from_zero(
    tmp_path: Path, formset: FormSet
) -> None:
    records = [person(1), person(2, 民族="99")]
    records[0]["爱好"] = "x"
    path = tmp_path / "p.json"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    report = validate_file(path, formset.form("resident"), formset, today=TODAY)
    assert _codes(report.errors) == {(0, "", "column.unknown"), (2, "ethnicity", "code.unknown")}
    assert report.rejected_rows == [2]


# -- import ---------------------------------------------------------------------------------


def _people(store: Store) -> dict[str, dict[str, Any]]:
    return {r.data["id_number"]: r.data for r in store.iter_records("resident")}


def test_import_creates_valid_rows_and_reports_rejected_ones(
    tmp_path: Path, store: Store, formset: FormSet
) -> None:
    path = write_csv(tmp_path / "p.csv", [person(1), person(2, 民族="99"), person(3)])
    report = import_file(path, formset.form("resident"), store, today=TODAY)
    assert report.imported and (report.created, report.updated) == (2, 0)
    assert report.rejected_rows == [3]
    assert _codes(report.errors) == {(3, "ethnicity", "code.unknown")}
    people = _people(store)
    assert set(people) == {person(1)["公民身份号码"], person(3)["公民身份号码"]}
    born = dt.date(1980, 1, 1) + dt.timedelta(days=1)
    assert people[person(1)["公民身份号码"]]["birth_date"] == born.isoformat()  # derived


def test_strict_import_of_a_file_with_a_bad_row_imports_nothing(
    tmp_path: Path, store: Store, formset: FormSet
) -> None:
    path = write_csv(tmp_path / "p.csv", [person(1), person(2, 姓名="")])
    report = import_file(path, formset.form("resident"), store, strict=True, today=TODAY)
    assert not report.imported and report.rejected_rows == [3]
    assert store.count("resident") == 0


@pytest.mark.parametrize("batch", [2000, 2], ids=["one-batch", "across-batches"])
def test_the_same_person_twice_in_one_file_is_one_record(
    tmp_path: Path, store: Store, formset: FormSet, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(transfer, "BATCH", batch)
    first = person(1)
    again = person(1, 联系电话="13900000001", 公民身份号码=" " + first["公民身份号码"].lower())
    path = write_csv(tmp_path / "p.csv", [first, person(2), person(3), again])
    report = import_file(path, formset.form("resident"), store, today=TODAY)
    assert store.count("resident") == 3
    assert report.created == 3 and report.updated == 1
    assert _people(store)[first["公民身份号码"]]["phone"] == "13900000001"  # the later row wins


def test_reimporting_unchanged_people_changes_nothing(
    tmp_path: Path, store: Store, formset: FormSet
) -> None:
    path = write_csv(tmp_path / "p.csv", [person(1), person(2)])
    import_file(path, formset.form("resident"), store, today=TODAY)
    ops = len(store.pending_ops())
    report = import_file(path, formset.form("resident"), store, today=TODAY)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 2)
    assert len(store.pending_ops()) == ops  # nothing to send to the platform either


def test_a_cancelled_import_rolls_everything_back(
    tmp_path: Path, store: Store, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "BATCH", 2)
    write_csv(tmp_path / "first.csv", [person(1)])
    import_file(tmp_path / "first.csv", formset.form("resident"), store, today=TODAY)
    rows = [person(1, 姓名="改名")] + [person(i) for i in range(2, 8)]
    path = write_csv(tmp_path / "p.csv", rows)
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) == 2  # after two batches are written

    with pytest.raises(Cancelled):
        import_file(path, formset.form("resident"), store, today=TODAY, cancel=cancel)
    assert set(_people(store)) == {person(1)["公民身份号码"]}
    assert _people(store)[person(1)["公民身份号码"]]["name"] == "测试1"


def test_an_import_writes_with_the_bulk_page_cache_and_gives_it_back(
    tmp_path: Path, store: Store, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inserts land at random places of the store's indexes: on a populated device the default
    8 MB cache re-read their pages all through an import. The import writes with the pull's
    cache (checked between its batches) and the connection gets its own back, even when the
    import is cancelled."""
    monkeypatch.setattr(transfer, "BATCH", 2)
    bulk = -65536  # KiB, as a pull writes (sync.replica.bulk_writes)
    cache = store.conn.execute("PRAGMA cache_size").fetchone()[0]
    assert cache != bulk
    seen: list[int] = []

    def progress(_done: int, _total: int) -> None:
        seen.append(store.conn.execute("PRAGMA cache_size").fetchone()[0])

    path = write_csv(tmp_path / "p.csv", [person(i) for i in range(1, 6)])
    report = import_file(path, formset.form("resident"), store, today=TODAY, progress=progress)
    assert report.created == 5 and seen == [bulk] * 3
    assert store.conn.execute("PRAGMA cache_size").fetchone()[0] == cache
    with pytest.raises(Cancelled):
        import_file(path, formset.form("resident"), store, today=TODAY, cancel=lambda: True)
    assert store.conn.execute("PRAGMA cache_size").fetchone()[0] == cache


def test_an_import_looks_up_natural_keys_per_batch_not_per_row(
    tmp_path: Path, store: Store, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The duplicate guard asks the store once per batch of rows (it asked once per row)."""
    monkeypatch.setattr(transfer, "BATCH", 20)
    write_csv(tmp_path / "old.csv", [person(i) for i in range(0, 60, 3)])
    import_file(tmp_path / "old.csv", formset.form("resident"), store, today=TODAY)
    statements: list[str] = []
    store.writes.conn.set_trace_callback(statements.append)
    path = write_csv(tmp_path / "p.csv", [person(i) for i in range(60)])
    report = import_file(path, formset.form("resident"), store, today=TODAY)
    store.writes.conn.set_trace_callback(None)
    assert (report.created, report.unchanged) == (40, 20)
    lookups = [s for s in statements if s.startswith("SELECT") and "record_keys" in s]
    assert len(lookups) == 3  # 60 rows in batches of 20
    assert store.count("resident") == 60


def test_an_id_ending_in_x_typed_in_lowercase_finds_the_same_record(
    tmp_path: Path, store: Store, formset: FormSet
) -> None:
    first17 = next(
        f"33010619800101{seq:03d}"
        for seq in range(1000)
        if check_char(f"33010619800101{seq:03d}") == "X"
    )
    upper = first17 + "X"
    write_csv(tmp_path / "a.csv", [person(1, 公民身份号码=upper)])
    import_file(tmp_path / "a.csv", formset.form("resident"), store, today=TODAY)
    typed = "".join(chr(ord(c) + 0xFEE0) for c in first17[:6]) + " " + first17[6:] + "x"
    write_csv(tmp_path / "b.csv", [person(1, 公民身份号码=typed, 姓名="新名字")])
    report = import_file(tmp_path / "b.csv", formset.form("resident"), store, today=TODAY)
    assert report.updated == 1 and store.count("resident") == 1
    assert _people(store)[upper]["name"] == "新名字"


def test_an_import_derives_each_row_once(
    tmp_path: Path, store: Store, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row's keys, terms and person row are worked out once: the duplicate check and the
    insert share them (the import normalised every natural key twice)."""
    from app.core.store import derive

    form = formset.form("resident")
    normalised: list[object] = []  # each natural key made (``naturalkeys.key_of``)
    plain = derive.key_of
    monkeypatch.setattr(derive, "key_of", lambda g, p: normalised.append(p) or plain(g, p))
    path = write_csv(tmp_path / "p.csv", [person(i) for i in range(1, 31)])
    report = import_file(path, form, store, today=TODAY)
    assert report.created == 30
    during_import = len(normalised)
    normalised.clear()
    for record in store.iter_records("resident"):
        derive.derive(form, record.data)
    assert during_import == len(normalised) > 0


@pytest.mark.parametrize("batch", [2000, 2], ids=["one-batch", "across-batches"])
def test_a_row_merged_with_a_later_row_is_indexed_with_the_merged_values(
    tmp_path: Path, store: Store, formset: FormSet, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """The same person twice in a file: the record is keyed and searchable by what the later
    row added, not only by the first row's values."""
    monkeypatch.setattr(transfer, "BATCH", batch)
    first = person(1)
    again = person(1, 姓名="改了名字", 联系电话="13900000001")
    path = write_csv(tmp_path / "p.csv", [first, person(2), again])
    report = import_file(path, formset.form("resident"), store, today=TODAY)
    assert (report.created, report.updated) == (2, 1)
    [found] = store.search("00000001")  # the phone's tail: only in the later row
    assert found.title == "改了名字"
    assert [s.title for s in store.search("改了名字")] == ["改了名字"]
    assert store.search("测试1") == []
