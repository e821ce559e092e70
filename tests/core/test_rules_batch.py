"""The import's compiled plan (``rules.FormPlan``) against the plain rules, row by row.

The plan coerces column by column and checks each distinct value once; these tests hold it to
``transfer.prepare_row`` + ``rules.validate`` on random rows of every form, wrong values
included: the same stored values, the same issues in the same order, the same messages. Also
``compile_condition`` against ``evaluate``, ``textcheck.cells_ok`` against ``plain_problem``
and the outbox op's splice against a second ``dumps``.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core import idnumber, ids, rules, textcheck
from app.core.forms import Field, FormSet, conditions, load_formset
from app.core.forms.conditions import compile_condition
from app.core.records import clean, diff, dumps
from app.core.store import writes
from app.core.store.outbox import STATUS_FIELD
from app.core.store.writes import created, encode_created, with_status
from app.core.tabular import TableError, read_table
from app.core.transfer import (
    Checked,
    Head,
    _row_errors,
    checked_stream,
    map_headers,
    prepare_row,
    validate_file,
)
from tests.factories import credit_code, id_number

# the modules, not the functions ``rules`` exports under the same names
batch_module = importlib.import_module("app.core.rules.batch")
validate = importlib.import_module("app.core.rules.validate")
coerce_module = importlib.import_module("app.core.rules.coerce")
TODAY = dt.date(2026, 11, 23)
FORMSET = load_formset()
_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_JUNK = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "\u3000", "x", "未知", "0", "1", "01", "是", "否", "2024-13-01"]),
    st.text(max_size=6),
    st.text(alphabet="测试文三路幸福号栋室 0123456789-", min_size=40, max_size=90),
    st.integers(-3, 400),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
)
_DATES = st.dates(dt.date(1870, 1, 1), dt.date(2030, 12, 31))


def _typed(fld: Field, formset: FormSet) -> st.SearchStrategy[Any]:
    """Cells a department's file holds for this field: right, nearly right and wrong."""
    if fld.codes:
        table = formset.table(fld.codes)
        codes = list(table.codes)
        spelled = [c.zh for c in table.codes.values()] + [
            f"{c.code} {c.zh}" for c in table.codes.values()
        ]
        one = st.sampled_from(codes + spelled + [c.lstrip("0") for c in codes])
        return one if fld.type == "choice" else st.lists(one, max_size=3).map("、".join)
    if fld.type == "date":
        return _DATES.map(lambda d: d.isoformat()) | _DATES.map(lambda d: f"{d:%Y/%m/%d}")
    if fld.type == "id_number":
        person = st.builds(id_number, _DATES, st.integers(0, 999))
        return person | person.map(lambda s: " " + s.lower()) | person.map(lambda s: s[:-1] + "0")
    if fld.type == "credit_code":
        return st.just(credit_code()) | st.just(credit_code()[:-1] + "0")
    if fld.type == "phone":
        return st.sampled_from(
            ["13812345678", "0571-87654321", "138 1234 5678", "12345", "+85291234567"]
        )
    if fld.type in ("integer", "decimal"):
        return st.sampled_from(["12", "3.5", "1,200", "-4", "abc", "0.125"])
    if fld.type == "boolean":
        return st.sampled_from(["是", "否", "y", "n", "也许"])
    if fld.type == "coordinates":
        return st.sampled_from(["120.15,30.28", "200,100", "东经120度"])
    return st.text(alphabet="王李张伟芳 ·ab1", max_size=8)


def _cells(fld: Field, formset: FormSet) -> st.SearchStrategy[Any]:
    return st.one_of(_typed(fld, formset), _typed(fld, formset), _JUNK)


# The fields one resident's ID number is checked against: the same number in two rows must
# still be checked against each row's own id type, birth date and gender.
_ID_BOUND = ["id_type", "id_number", "birth_date", "gender", "population_type"]


@st.composite
def batches(
    draw: st.DrawFn, form_id: str | None = None
) -> tuple[str, dict[str, str], list[dict[str, Any]]]:
    """A form, a header mapping (header -> field id) and rows of cells by header.

    Each column's cells come from a small pool so values repeat down a column, as in files."""
    form = FORMSET.form(form_id or draw(st.sampled_from(sorted(FORMSET.forms))))
    fields = draw(st.lists(st.sampled_from(list(form.fields.values())), unique=True, max_size=16))
    if form_id:
        fields = [form.fields[f] for f in _ID_BOUND] + [f for f in fields if f.id not in _ID_BOUND]
    mapping = {f"列{fld.id}": fld.id for fld in fields}
    pools = {
        header: draw(
            st.lists(
                _cells(form.fields[fid], FORMSET),
                min_size=1,
                max_size=1 if form_id and fid == "id_number" else 4,
            )
        )
        for header, fid in mapping.items()
    }
    count = draw(st.integers(1, 12))
    rows = [
        {header: draw(st.sampled_from(pool)) for header, pool in pools.items()}
        for _ in range(count)
    ]
    return form.id, mapping, rows


@_SETTINGS
@given(batch=batches() | batches("resident"))
def test_the_plan_stores_and_reports_what_the_plain_rules_do(
    batch: tuple[str, dict[str, str], list[dict[str, Any]]],
) -> None:
    form_id, mapping, raws = batch
    form = FORMSET.form(form_id)
    plan = rules.FormPlan(form, FORMSET, TODAY)
    fast = plan.prepare(raws, mapping)
    plain = [prepare_row(form, FORMSET, raw, mapping, TODAY) for raw in raws]
    assert fast == plain
    fast_issues = plan.validate(fast)
    plain_issues = [rules.validate(form, data, FORMSET, today=TODAY) for data in plain]
    assert fast_issues == plain_issues
    columns = {fid: header for header, fid in mapping.items()}
    for lang in ("zh", "en"):
        assert [_row_errors(form, n, i, lang, columns) for n, i in enumerate(fast_issues)] == [
            _row_errors(form, n, i, lang, columns) for n, i in enumerate(plain_issues)
        ]


@_SETTINGS
@given(batch=batches() | batches("resident"))
def test_a_batch_of_columns_stores_and_reports_what_the_rules_do_row_by_row(
    batch: tuple[str, dict[str, str], list[dict[str, Any]]],
) -> None:
    """``FormPlan.run`` (cells by field, checked column by column) against ``prepare_row`` +
    ``validate`` of each row: the same stored values, the same issues in the same order and
    messages, and ``Batch.clean_rows`` is ``clean`` of those values for any rows asked."""
    form_id, mapping, raws = batch
    form = FORMSET.form(form_id)
    cells = {fid: [raw.get(h) for raw in raws] for h, fid in mapping.items()}
    checked = rules.FormPlan(form, FORMSET, TODAY).run(cells, len(raws))
    plain = [prepare_row(form, FORMSET, raw, mapping, TODAY) for raw in raws]
    assert checked.rows() == plain
    plain_issues = [rules.validate(form, data, FORMSET, today=TODAY) for data in plain]
    assert checked.issues == plain_issues
    columns = {fid: header for header, fid in mapping.items()}
    for lang in ("zh", "en"):
        assert [_row_errors(form, n, i, lang, columns) for n, i in enumerate(checked.issues)] == [
            _row_errors(form, n, i, lang, columns) for n, i in enumerate(plain_issues)
        ]
    good = [i for i, issues in enumerate(plain_issues) if not issues]
    assert list(checked.clean_rows(good)) == [clean(plain[i]) for i in good]
    assert list(checked.clean_rows(range(len(raws)))) == [clean(data) for data in plain]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    numbers=st.lists(
        st.builds(id_number, _DATES, st.integers(0, 999))
        | st.sampled_from(["", "123", "11010519491231002X", "110105194912310021"]),
        min_size=1,
        max_size=6,
    ),
    data=st.data(),
)
def test_id_numbers_checked_together_are_checked_as_each_alone(
    numbers: list[str], data: st.DataObject
) -> None:
    """``id_number_issues`` of many rows (each number parsed once, a row whose typed birth
    date and gender agree costs a comparison) against ``check_value`` of each row alone."""
    form = FORMSET.form("resident")
    fld = form.fields["id_number"]
    rows = []
    for number in numbers:
        said = validate.parse_id(number, TODAY)
        birth = said.birth_date.isoformat() if isinstance(said, idnumber.IdInfo) else "1990-01-01"
        gender = said.gender if isinstance(said, idnumber.IdInfo) else "1"
        rows.append(
            {
                "id_type": data.draw(st.sampled_from([None, "111", "112", "414", "9"])),
                "birth_date": data.draw(st.sampled_from([None, birth, "1990-01-02", "x", 7])),
                "gender": data.draw(st.sampled_from([None, gender, "1", "2", "9", 1])),
            }
        )
    together = validate.id_number_issues(
        fld, numbers, validate.IdRows.of(fld, rows), FORMSET, TODAY
    )
    assert together == [
        rules.check_value(fld, n, row, FORMSET, today=TODAY)
        for n, row in zip(numbers, rows, strict=True)
    ]


class _Counted:
    """A compiled condition that counts the rows it is asked about."""

    calls = 0

    def __init__(self, test: Any) -> None:
        self.test = test

    def __call__(self, values: Any) -> bool:
        _Counted.calls += 1
        return bool(self.test(values))


def test_a_batch_asks_each_condition_once_per_distinct_value_it_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Conditions (on population type here) are asked once per distinct combination of the
    values they read, not once per row: 300 rows of two types cost a handful of calls (a
    mask per row before: hundreds), and the issues are still those of ``validate``."""
    monkeypatch.setattr(batch_module, "compile_condition", lambda c: _Counted(compile_condition(c)))
    form = FORMSET.form("resident")
    plan = rules.FormPlan(form, FORMSET, TODAY)
    raws = [
        {
            "population_type": "1" if i % 2 else "2",
            "id_number": id_number(dt.date(1980, 1, 1) + dt.timedelta(days=i)),
            "name": "王芳",
            "ethnicity": "01" if i % 7 else "99",
            "residence_region": "330106",
            "residence_address": "幸福路1号",
            "grid": "G1",
        }
        for i in range(300)
    ]
    _Counted.calls = 0
    checked = plan.run({f: [raw.get(f) for raw in raws] for f in raws[0]}, len(raws))
    assert _Counted.calls < 60
    plain = [prepare_row(form, FORMSET, raw, {f: f for f in raws[0]}, TODAY) for raw in raws]
    assert checked.issues == [rules.validate(form, data, FORMSET, today=TODAY) for data in plain]


def test_names_within_their_length_are_not_checked_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A text field that declares only its length is checked by the length of each
    distinct text: the text check runs for the one name over it, not for every name."""
    form = FORMSET.form("resident")
    asked: list[object] = []
    text_check = validate._TYPE_CHECKS["text"]

    def spy(fld: Field, value: object, *args: Any) -> list[rules.Issue]:
        if fld.id == "name":
            asked.append(value)
        return text_check(fld, value, *args)

    monkeypatch.setitem(validate._TYPE_CHECKS, "text", spy)
    names = [f"王{i}" for i in range(200)] + ["长" * 51]
    found = rules.FormPlan(form, FORMSET, TODAY).run({"name": names}, len(names)).issues
    assert asked == ["长" * 51]
    assert [i.code for i in found[-1] if i.field == "name"] == ["max_length"]
    assert not any(i.field == "name" for issues in found[:-1] for i in issues)


def test_the_plan_finds_the_usual_mistakes_of_a_file() -> None:
    form = FORMSET.form("resident")
    good = {"population_type": "1", "id_number": id_number(), "name": "王芳", "ethnicity": "01"}
    rows = [good, {**good, "ethnicity": "汉"}, {**good, "ethnicity": "99"}, {**good, "name": ""}]
    plan = rules.FormPlan(form, FORMSET, TODAY)
    issues = plan.validate(plan.prepare(rows, {k: k for k in good}))
    codes = [{(i.field, i.code) for i in found if i.field in good} for found in issues]
    assert codes == [set(), set(), {("ethnicity", "code.unknown")}, {("name", "required")}]


class _Asked(dict):  # type: ignore[type-arg]
    """A row that notes which fields were asked of it (by ``get`` or ``in``)."""

    asked: set[str] = set()

    def get(self, key: Any, default: Any = None) -> Any:
        _Asked.asked.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        _Asked.asked.add(str(key))
        return super().__contains__(key)


def test_the_checks_never_ask_a_row_for_an_always_shown_field_no_row_holds() -> None:
    """A column pass (``FormPlan._check_column``): a field always shown that no row of the
    batch holds is blank everywhere, so no row is asked for it (each of the resident form's
    ~30 optional fields was asked of every row). Fields a condition or an ID number reads
    are still asked."""
    form = FORMSET.form("resident")
    good = {"population_type": "1", "id_number": id_number(), "name": "王芳", "ethnicity": "01"}
    plan = rules.FormPlan(form, FORMSET, TODAY)
    rows = [_Asked(row) for row in plan.prepare([good] * 5, {k: k for k in good})]
    _Asked.asked = set()
    issues = plan.validate(rows)
    assert issues == [rules.validate(form, dict(row), FORMSET, today=TODAY) for row in rows]
    absent = {
        f.id
        for f in form.fields.values()
        if f.show_when is None and f.required_when is None and f.type != "id_number"
    } - set().union(*rows)
    conditions_read = {
        name
        for f in form.fields.values()
        for cond in (f.show_when, f.required_when)
        if cond is not None
        for name in conditions.fields_of(cond)
    }
    assert "workplace" in absent and "religion" in absent
    assert _Asked.asked & absent <= conditions_read


@settings(max_examples=300, deadline=None)
@given(first17=st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_the_tight_check_character_is_check_char(first17: str) -> None:
    """``parse_id_number`` skips the digit check ``check_char`` makes (its pattern matched
    them already): the same character for every 17 digits."""
    assert idnumber._check_char_of(first17) == idnumber.check_char(first17)


@settings(max_examples=300, deadline=None)
@given(
    born=_DATES,
    seq=st.integers(0, 999),
    last=st.sampled_from("0123456789X"),
    area=st.sampled_from(["330106", "110101", "999999", "830000"]),
)
def test_a_number_is_accepted_exactly_when_its_check_character_is_check_char(
    born: dt.date, seq: int, last: str, area: str
) -> None:
    first17 = f"{area}{born:%Y%m%d}{seq:03d}"
    number = first17 + last
    try:
        idnumber.parse_id_number(number, TODAY)
        accepted = True
    except idnumber.IdNumberError as exc:
        accepted = False
        code = exc.code
    if area != "999999" and dt.date(1900, 1, 1) <= born <= TODAY:
        assert accepted == (last == idnumber.check_char(first17))
        if not accepted:
            assert code == "id.check_digit"


_LEAF = st.fixed_dictionaries(
    {"field": st.sampled_from(["a", "b"])},
    optional={},
).flatmap(
    lambda base: st.one_of(
        st.builds(lambda v: {**base, "equals": v}, st.sampled_from(["1", "2", 1, True])),
        st.builds(
            lambda v: {**base, "in": v}, st.lists(st.sampled_from(["1", "2", 0]), min_size=1)
        ),
        st.builds(lambda v: {**base, "filled": v}, st.booleans()),
    )
)
_CONDITION = st.recursive(
    _LEAF,
    lambda inner: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, inner),
    ),
    max_leaves=6,
)
_VALUE = st.one_of(
    st.none(),
    st.sampled_from(["", "1", "2", 0, 1, True, False]),
    st.lists(st.sampled_from(["1", "2"])),
)


@settings(max_examples=200, deadline=None)
@given(cond=st.none() | _CONDITION, values=st.dictionaries(st.sampled_from(["a", "b"]), _VALUE))
def test_a_compiled_condition_holds_exactly_when_evaluate_says(
    cond: dict[str, Any] | None, values: dict[str, Any]
) -> None:
    assert conditions.compile_condition(cond)(values) is conditions.evaluate(cond, values)


@settings(max_examples=300, deadline=None)
@given(
    cells=st.lists(
        st.one_of(
            st.text(alphabet=st.characters(codec=None, exclude_categories=())),
            st.sampled_from(["\x00", "a\ud800b", "x" * (textcheck.MAX_VALUE_CHARS + 1)]),
            st.integers(),
            st.floats(),
            st.none(),
        ),
        max_size=5,
    )
)
def test_a_line_passes_cells_ok_only_when_every_cell_passes_the_text_checks(
    cells: list[Any],
) -> None:
    if textcheck.cells_ok(cells):
        assert all(textcheck.plain_problem(c) is None for c in cells)
    elif all(isinstance(c, str) for c in cells):
        assert any(textcheck.plain_problem(c) for c in cells)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.text(alphabet=st.characters(codec=None, exclude_categories=())),
            st.sampled_from(["\x00", "a\ud800b", "x" * (textcheck.MAX_VALUE_CHARS + 1)]),
            st.lists(st.sampled_from(["ok", "\x00", float("inf")]), max_size=3),
            st.integers(),
            st.floats(),
            st.none(),
        ),
        max_size=5,
    )
)
def test_the_editor_finds_the_first_value_the_push_would_refuse(values: list[Any]) -> None:
    """``first_unstorable`` (the editor's save) names the first field ``plain_problem`` (the
    push's check) finds a problem in, with that problem, and nothing when there is none."""
    data = {f"f{n}": v for n, v in enumerate(values)}
    expected = next(((f, p) for f, v in data.items() if (p := textcheck.plain_problem(v))), None)
    assert textcheck.first_unstorable(data) == expected


_FIELD_ID = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_STORED = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=5,
)


@settings(max_examples=300, deadline=None)
@given(
    values=st.dictionaries(_FIELD_ID | st.sampled_from(["A", "_a", "0"]), _STORED, max_size=6),
    status=st.sampled_from(["draft", "complete"]),
)
def test_a_bulk_create_writes_the_json_a_save_writes(values: dict[str, Any], status: str) -> None:
    values = clean(values)
    assert with_status(values, dumps(values), status) == dumps({**values, STATUS_FIELD: status})
    assert dumps(created(values)) == dumps(diff({}, values))
    assert encode_created(values) == (dumps(values), dumps(diff({}, values)))


@settings(max_examples=300, deadline=None)
@given(
    values=st.dictionaries(
        _FIELD_ID,
        st.text(alphabet=st.characters(codec=None, exclude_categories=())) | st.just('a"\\\n'),
        max_size=8,
    )
)
def test_text_records_are_encoded_byte_for_byte_as_dumps_does(values: dict[str, str]) -> None:
    """Through orjson, and the plain way (no orjson, or a text it refuses), byte for byte what
    the json module writes."""
    values = clean(values)
    plain = (_json_text(values), _json_text(diff({}, values)))
    assert encode_created(values) == (dumps(values), dumps(diff({}, values))) == plain
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(writes, "_orjson", None)
        assert encode_created(values) == plain


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def test_record_ids_are_canonical_increasing_uuid7() -> None:
    made = [ids.uuid7() for _ in range(3000)]
    assert all(str(uuid.UUID(x)) == x and uuid.UUID(x).version == 7 for x in made)
    assert made == sorted(made) and len(set(made)) == len(made)


@pytest.mark.parametrize("form_id", sorted(FORMSET.forms))
def test_every_form_compiles(form_id: str) -> None:
    rules.FormPlan(FORMSET.form(form_id), FORMSET, TODAY)


@given(counts=st.lists(st.integers(0, 5000), min_size=1, max_size=4))
@settings(max_examples=10, deadline=None)
def test_ids_made_in_bulk_are_those_one_at_a_time_would_be(counts: list[int]) -> None:
    """``uuid7_many``: canonical UUIDv7 text, ascending within a batch and after the ids made
    before it, one at a time or in bulk (an import makes its ids a batch at a time)."""
    made = [ids.uuid7()]
    for count in counts:
        batch = list(ids.uuid7_many(count))
        assert len(batch) == count
        made += batch + [ids.uuid7()]
    assert all(str(uuid.UUID(x)) == x and uuid.UUID(x).version == 7 for x in made)
    assert uuid.UUID(made[0]).variant == uuid.RFC_4122
    assert made == sorted(made) and len(set(made)) == len(made)


@st.composite
def files(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    """A resident file as a department sends it: some of the form's columns (labels), rows of
    good, nearly good and wrong cells, values repeating down a column."""
    form = FORMSET.form("resident")
    needed = [f for f in form.fields.values() if f.required and f.show_when is None]
    fields = (
        [form.fields[f] for f in _ID_BOUND]
        + needed
        + draw(st.lists(st.sampled_from(list(form.fields.values())), unique=True, max_size=10))
    )
    fields = list({f.id: f for f in fields}.values())
    pools = [
        draw(st.lists(_cells(fld, FORMSET).map(_as_cell), min_size=1, max_size=4)) for fld in fields
    ]
    rows = draw(
        st.lists(st.tuples(*(st.sampled_from(pool) for pool in pools)), min_size=1, max_size=15)
    )
    return [fld.label.zh for fld in fields], [list(row) for row in rows]


def _as_cell(value: Any) -> str:
    return "" if value is None else str(value).replace("\x00", "")


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(file=files())
def test_a_file_is_checked_as_its_rows_are_one_by_one(
    tmp_path: Path, file: tuple[list[str], list[list[str]]]
) -> None:
    """``validate_file`` and ``checked_stream`` (lines read as columns, checked a batch at a
    time) against the rules row by row on the same file (``read_table``, ``prepare_row``,
    ``validate``, ``_row_errors``): the same errors with the same rows, columns and
    messages, and the good rows' clean values at their positions."""
    header, rows = file
    path = tmp_path / "f.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    form = FORMSET.form("resident")
    try:
        table = read_table(path)
    except TableError:
        return  # a cell the reader refuses: both ways refuse the file alike (test_tabular_stream)
    mapping, _ = map_headers(form, table.headers)
    columns = {fid: h for h, fid in mapping.items()}
    errors, good = [], []
    for position, (number, raw) in enumerate(table.rows, 1):
        data = prepare_row(form, FORMSET, raw, mapping, TODAY)
        issues = rules.validate(form, data, FORMSET, today=TODAY)
        found = _row_errors(form, number, issues, "zh", columns)
        errors += found
        if not found:
            good.append((position, clean(data)))
    report = validate_file(path, form, FORMSET, today=TODAY)
    assert [e for e in report.errors if not e.is_column] == errors
    head, *batches = checked_stream(path, form, FORMSET, "zh", TODAY, 4)
    assert isinstance(head, Head) and not head.errors  # every column the form needs
    assert [g for m in batches if isinstance(m, Checked) for g in m.good] == good
    assert [e for m in batches if isinstance(m, Checked) for e in m.errors] == errors


def _date_by_its_forms(raw: str) -> str | None:
    """``_parse_date_text`` as it was, every text through the date forms' patterns."""
    text = raw.strip()
    if " " in text:
        text = text.split(" ", 1)[0]
    for pattern in coerce_module._DATE_FORMS:
        m = pattern.match(text)
        if m:
            try:
                return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
            except ValueError:
                return None
    return None


@settings(max_examples=400, deadline=None)
@given(
    text=_DATES.map(dt.date.isoformat)
    | st.from_regex(r"\s?\d{4}-\d{2}-\d{2}( 00:00:00)?\s?", fullmatch=True)
    | st.text(alphabet="0123456789-/.年月日W ", max_size=12)
)
def test_an_iso_date_read_in_c_is_the_date_its_forms_read(text: str) -> None:
    """The ISO fast path (``date.fromisoformat``) reads every text as the date forms do:
    the same stored date, or None (full-width digits, week dates, day 30 of February)."""
    assert coerce_module._parse_date_text.__wrapped__(text) == _date_by_its_forms(text)
