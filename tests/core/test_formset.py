"""The form-set loader: the shipped forms load, and broken form files are rejected with the file
and line of the mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.forms import (
    CodeTable,
    FormFileError,
    Problem,
    UnknownFormError,
    check_formset,
    conditions,
    default_forms_dir,
    load_formset,
)

# --------------------------------------------------------------------------- a small valid set

GENDER = """\
table: gender
standard: GB/T 2261.1-2003
title: {zh: 性别, en: Gender}
codes:
  - {code: "1", zh: 男, en: Male}
  - {code: "2", zh: 女, en: Female}
"""

POPULATION_TYPE = """\
table: population_type
title: {zh: 人口类型, en: Population type}
codes:
  - {code: "1", zh: 户籍人口, en: Registered}
  - {code: "2", zh: 流动人口, en: Migrant}
"""

ID_TYPE = """\
table: id_type
title: {zh: 证件类型, en: ID type}
codes:
  - {code: "111", zh: 居民身份证, en: Resident ID card}
  - {code: "414", zh: 普通护照, en: Passport}
"""

REGION_CSV = """\
code,zh,en,parent
110000,北京市,Beijing,
110100,市辖区,Districts,110000
110101,东城区,Dongcheng,110100
110102,西城区,Xicheng,110100
"""

REGION_META = """\
table: region
standard: GB/T 2260
title: {zh: 行政区划, en: Administrative division}
"""

PERSON = """\
form: person
version: 1
title: {zh: 人员, en: Person}
title_template: "{name}（{gender}）"
natural_keys:
  - [id_type, id_number]
roles:
  name: [name]
  id: [id_number]
  birth_date: birth_date
  house: home
  grid: grid
sections:
  - id: basic
    title: {zh: 基本信息, en: Basic}
    fields:
      - id: population_type
        label: {zh: 人口类型, en: Population type}
        type: choice
        codes: population_type
        required: true
      - id: id_type
        label: {zh: 证件类型, en: ID type}
        type: choice
        codes: id_type
        default: "111"
      - id: id_number
        label: {zh: 证件号码, en: ID number}
        type: id_number
        sensitive: true
        id_type_field: id_type
        gb11643_types: ["111"]
        derives: {birth_date: birth_date, gender: gender}
      - id: name
        label: {zh: 姓名, en: Name}
        type: text
        required: true
      - id: gender
        label: {zh: 性别, en: Gender}
        type: choice
        codes: gender
      - id: birth_date
        label: {zh: 出生日期, en: Birth date}
        type: date
        checks: {not_future: true, min: "1900-01-01"}
      - id: grid
        label: {zh: 网格, en: Grid}
        type: text
      - id: home
        label: {zh: 住房, en: Home}
        type: reference
        target: house
      - id: region
        label: {zh: 现住地, en: Region}
        type: choice
        codes: region
  - id: migrant
    title: {zh: 流动人口, en: Migrant}
    show_when: {field: population_type, equals: "2"}
    fields:
      - id: arrived_on
        label: {zh: 到达日期, en: Arrived on}
        type: date
      - id: permit_number
        label: {zh: 证件号, en: Permit number}
        type: text
        show_when: {field: arrived_on, filled: true}
        checks:
          pattern: '^[0-9A-Z]+$'
          pattern_message: {zh: 数字或大写字母, en: Digits or capitals}
"""

HOUSE = """\
form: house
version: 2
title: {zh: 房屋, en: House}
title_template: "{code}"
natural_keys: [[code]]
sections:
  - id: main
    title: {zh: 房屋, en: House}
    fields:
      - id: code
        label: {zh: 编号, en: Code}
        type: text
        required: true
"""


def write_set(root: Path, person: str = PERSON) -> Path:
    codes = root / "codes"
    codes.mkdir(parents=True, exist_ok=True)
    (codes / "gender.yaml").write_text(GENDER, encoding="utf-8")
    (codes / "population_type.yaml").write_text(POPULATION_TYPE, encoding="utf-8")
    (codes / "id_type.yaml").write_text(ID_TYPE, encoding="utf-8")
    (codes / "region.csv").write_text(REGION_CSV, encoding="utf-8")
    (codes / "region.meta.yaml").write_text(REGION_META, encoding="utf-8")
    (root / "person.yaml").write_text(person, encoding="utf-8")
    (root / "house.yaml").write_text(HOUSE, encoding="utf-8")
    return root


@pytest.fixture
def good_dir(tmp_path: Path) -> Path:
    return write_set(tmp_path / "forms")


def test_small_set_loads(good_dir: Path) -> None:
    fs = load_formset(good_dir)
    assert sorted(fs.forms) == ["house", "person"]
    person = fs.form("person")
    assert person.version == 1
    assert list(person.fields)[:3] == ["population_type", "id_type", "id_number"]
    assert person.natural_keys == (("id_type", "id_number"),)
    assert person.roles.house == "home" and person.roles.name == ("name",)
    id_number = person.field("id_number")
    assert id_number.sensitive and id_number.id_type_field == "id_type"
    assert dict(id_number.derives) == {"birth_date": "birth_date", "gender": "gender"}
    assert person.field("id_type").default == "111"
    assert person.field("birth_date").checks["min"] == "1900-01-01"  # a string, not a date
    assert person.field("permit_number").checks["pattern_message"] == {
        "zh": "数字或大写字母",
        "en": "Digits or capitals",
    }
    assert person.field("home").target == "house"
    assert person.field("name").label.get("en") == "Name"
    assert person.field("name").label.get("zh") == "姓名"
    widgets = {f: f.id for f in person.fields.values()}  # the UI keys widgets by field
    assert widgets[person.field("home")] == "home"


def test_text_fields_get_the_default_max_length(good_dir: Path) -> None:
    person = load_formset(good_dir).form("person")
    assert person.field("name").checks["max_length"] == 200
    assert "max_length" not in person.field("birth_date").checks


def test_section_condition_applies_to_its_fields(good_dir: Path) -> None:
    person = load_formset(good_dir).form("person")
    arrived, permit = person.field("arrived_on"), person.field("permit_number")
    assert arrived.section == "migrant"
    assert arrived.show_when == {"field": "population_type", "equals": "2"}
    # The field's own condition is AND-ed with its section's.
    assert conditions.fields_of(permit.show_when) == {"population_type", "arrived_on"}
    shown = {"population_type": "2", "arrived_on": "2024-01-01"}
    assert conditions.evaluate(permit.show_when, shown)
    assert not conditions.evaluate(permit.show_when, {**shown, "population_type": "1"})
    assert not conditions.evaluate(permit.show_when, {**shown, "arrived_on": ""})
    assert person.field("name").show_when is None


def test_title_of_fills_the_template_and_leaves_missing_values_empty(good_dir: Path) -> None:
    person = load_formset(good_dir).form("person")
    assert person.title_of({"name": "张三", "gender": "1"}) == "张三（1）"
    assert person.title_of({"name": "张三"}) == "张三（）"
    assert person.title_of({}) == "（）"


def test_code_tables(good_dir: Path) -> None:
    fs = load_formset(good_dir)
    region = fs.table("region")
    assert isinstance(region, CodeTable)
    assert region.standard == "GB/T 2260" and region.title.get("en") == "Administrative division"
    assert "110101" in region and "999999" not in region
    assert region.label("110101") == "东城区" and region.label("110101", "en") == "Dongcheng"
    assert region.label("999999") == "999999"
    assert [c.code for c in region.children("110100")] == ["110101", "110102"]
    assert [c.code for c in region.children(None)] == ["110000"]
    assert list(fs.table("gender").codes) == ["1", "2"]  # file order
    with pytest.raises(KeyError):
        fs.table("nope")


def test_unknown_form_error_lists_known_forms(good_dir: Path) -> None:
    fs = load_formset(good_dir)
    with pytest.raises(UnknownFormError) as info:
        fs.form("resident")
    message = str(info.value)
    assert "house" in message and "person" in message and "resident" in message
    assert "现有表单" in message and "the forms are" in message
    assert isinstance(info.value, KeyError)
    assert info.value.known == ["house", "person"]


def test_unknown_field_raises_key_error(good_dir: Path) -> None:
    with pytest.raises(KeyError):
        load_formset(good_dir).form("person").field("nope")


def test_problem_str() -> None:
    assert str(Problem("forms/a.yaml", 7, "bad")) == "forms/a.yaml:7: bad"


def test_missing_directory_is_a_problem(tmp_path: Path) -> None:
    problems = check_formset(tmp_path / "absent")
    assert len(problems) == 1 and "absent" in problems[0].file


# --------------------------------------------------------------------------- broken form files

# Each variant replaces one line of PERSON (or adds lines); the offending line carries "# HERE"
# so the expected line number is read from the text, not hard-coded.
BROKEN = {
    "unknown type": (
        "        type: text\n        required: true\n",
        "        type: txt  # HERE\n        required: true\n",
        ["unknown field type 'txt'", "did you mean 'text'"],
    ),
    "unknown field in condition": (
        '    show_when: {field: population_type, equals: "2"}\n',
        '    show_when: {field: populaton_type, equals: "2"}  # HERE\n',
        ["unknown field 'populaton_type'", "did you mean 'population_type'"],
    ),
    "duplicate field id": (
        "      - id: gender\n",
        "      - id: name  # HERE\n",
        ["duplicate field id 'name'"],
    ),
    "missing en label": (
        "        label: {zh: 姓名, en: Name}\n",
        "        label: {zh: 姓名}  # HERE\n",
        ["missing its en text"],
    ),
    "yaml syntax error": (
        "        label: {zh: 姓名, en: Name}\n",
        "        label: {zh: 姓名, en: Name}}  # HERE\n",
        ["YAML syntax error"],
    ),
    "bad indentation": (
        "        type: text\n        required: true\n",
        "        type: text\n         required: true  # HERE\n",
        ["YAML syntax error"],
    ),
    "unknown key": (
        "        type: text\n        required: true\n",
        "        type: text\n        requird: true  # HERE\n",
        ["unknown key 'requird'", "did you mean 'required'"],
    ),
    "unknown code table": (
        "        codes: gender\n",
        "        codes: genders  # HERE\n",
        ["unknown code table 'genders'"],
    ),
    "malformed condition": (
        '    show_when: {field: population_type, equals: "2"}\n',
        '    show_when: {field: population_type, equal: "2"}  # HERE\n',
        ["unknown keys ['equal']"],
    ),
    "condition value not a code": (
        '    show_when: {field: population_type, equals: "2"}\n',
        '    show_when: {field: population_type, equals: "02"}  # HERE\n',
        ["'02' is not a value field population_type can hold"],
    ),
    "bad regex": (
        "          pattern: '^[0-9A-Z]+$'\n",
        "          pattern: '([0-9'  # HERE\n",
        ["not a valid regular expression"],
    ),
    "version zero": ("version: 1\n", "version: 0  # HERE\n", ["positive integer"]),
    "version text": ("version: 1\n", "version: one  # HERE\n", ["positive integer"]),
    "form id differs from file name": (
        "form: person\n",
        "form: people  # HERE\n",
        ["must equal the file name 'person'"],
    ),
    "natural key unknown field": (
        "  - [id_type, id_number]\n",
        "  - [id_type,\n     id_numbr]  # HERE\n",
        ["natural_keys refers to unknown field 'id_numbr'"],
    ),
    "role unknown field": (
        "  name: [name]\n",
        "  name: [nam]  # HERE\n",
        ["roles.name refers to unknown field 'nam'"],
    ),
    "role wrong type": (
        "  birth_date: birth_date\n",
        "  birth_date: name  # HERE\n",
        ["must be of type date"],
    ),
    "reference without target": (
        "      - id: home\n        label: {zh: 住房, en: Home}\n        type: reference\n"
        "        target: house\n",
        "      - id: home  # HERE\n        label: {zh: 住房, en: Home}\n        type: reference\n",
        ["missing target"],
    ),
    "reference unknown target": (
        "        target: house\n",
        "        target: hous  # HERE\n",
        ["unknown form 'hous'"],
    ),
    "id_type_field unknown": (
        "        id_type_field: id_type\n",
        "        id_type_field: idtype  # HERE\n",
        ["id_type_field refers to unknown field 'idtype'"],
    ),
    "derives unknown field": (
        "        derives: {birth_date: birth_date, gender: gender}\n",
        "        derives:\n          birth_date: birthday  # HERE\n",
        ["derives refers to unknown field 'birthday'"],
    ),
    "gb11643 type not in table": (
        '        gb11643_types: ["111"]\n',
        '        gb11643_types:\n          - "111"\n          - "999"  # HERE\n',
        ["id type '999' is not in table id_type"],
    ),
    "duplicate yaml key": (
        "        type: text\n        required: true\n",
        "        type: text\n        required: true\n        type: date  # HERE\n",
        ["duplicate key 'type'"],
    ),
    "show_when cycle": (
        "        show_when: {field: arrived_on, filled: true}\n",
        "        show_when: {field: permit_number, filled: true}  # HERE\n",
        ["show_when depends on itself"],
    ),
    "section shown by its own field": (
        '    show_when: {field: population_type, equals: "2"}\n',
        "    show_when: {field: arrived_on, filled: true}  # HERE\n",
        ["show_when depends on itself: arrived_on → arrived_on"],
    ),
    "unquoted code in codes_filter": (
        "        codes: gender\n",
        "        codes: gender\n        codes_filter: [1]  # HERE\n",
        ["quoted string"],
    ),
    "default not a code": (
        '        default: "111"\n',
        '        default: "112"  # HERE\n',
        ["default '112' does not suit a choice field"],
    ),
    "check for another type": (
        '        checks: {not_future: true, min: "1900-01-01"}\n',
        '        checks: {not_future: true, min: "1900-01-01", max_length: 3}  # HERE\n',
        ["check 'max_length' does not apply to date"],
    ),
    "missing type": (
        "      - id: grid\n        label: {zh: 网格, en: Grid}\n        type: text\n",
        "      - id: grid  # HERE\n        label: {zh: 网格, en: Grid}\n",
        ["missing key 'type'"],
    ),
}


def _expected_line(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if "# HERE" in line)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_form_is_rejected_with_file_and_line(tmp_path: Path, case: str) -> None:
    old, new, fragments = BROKEN[case]
    assert PERSON.count(old) == 1, "the variant must replace exactly one place"
    text = PERSON.replace(old, new)
    root = write_set(tmp_path / "forms", person=text)
    expected = (str(root / "person.yaml"), _expected_line(text))
    problems = check_formset(root)
    located = [p for p in problems if (p.file, p.line) == expected]
    assert located, f"no problem at {expected}; got: {[str(p) for p in problems]}"
    reasons = " | ".join(p.reason for p in located)
    for fragment in fragments:
        assert fragment in reasons
    with pytest.raises(FormFileError) as info:
        load_formset(root)
    assert f"person.yaml:{expected[1]}: " in str(info.value)
    assert info.value.problems == problems


def test_problem_reasons_are_chinese_first_then_english(tmp_path: Path) -> None:
    text = PERSON.replace("        codes: gender\n", "        codes: genders\n")
    problems = check_formset(write_set(tmp_path / "forms", person=text))
    (problem,) = problems
    zh, en = problem.reason.split(" / ", 1)
    assert "未知代码表" in zh and "unknown code table" in en


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    root = write_set(tmp_path / "forms", person="- just\n- a list\n")
    problems = check_formset(root)
    assert [(Path(p.file).name, p.line) for p in problems] == [("person.yaml", 1)]


def test_missing_required_form_keys(tmp_path: Path) -> None:
    text = PERSON.replace('title_template: "{name}（{gender}）"\n', "")
    problems = check_formset(write_set(tmp_path / "forms", person=text))
    assert [p.line for p in problems] == [1]
    assert "missing key 'title_template'" in problems[0].reason


@given(st.sampled_from(["name", "gender", "grid", "region"]), st.text("xyz", min_size=1))
def test_any_typo_in_a_natural_key_is_reported(field_id: str, suffix: str) -> None:
    """Whatever the typo, a natural key naming a field the form lacks is a problem."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        text = PERSON.replace("[id_type, id_number]", f"[id_type, {field_id}{suffix}]")
        root = write_set(Path(tmp) / "forms", person=text)
        problems = check_formset(root)
        assert any(f"unknown field '{field_id}{suffix}'" in p.reason for p in problems)


# --------------------------------------------------------------------------- broken code tables


def _table_problems(tmp_path: Path, name: str, text: str) -> tuple[Path, list[Problem]]:
    root = write_set(tmp_path / "forms")
    path = root / "codes" / name
    path.write_text(text, encoding="utf-8")
    return path, [p for p in check_formset(root) if p.file == str(path)]


def test_csv_without_header(tmp_path: Path) -> None:
    _path, problems = _table_problems(tmp_path, "region.csv", "110000,北京市,Beijing,\n")
    assert [p.line for p in problems] == [1]
    assert "missing header" in problems[0].reason


def test_csv_duplicate_code_names_both_lines(tmp_path: Path) -> None:
    text = REGION_CSV + "110101,东城区,Dongcheng again,110100\n"
    _path, problems = _table_problems(tmp_path, "region.csv", text)
    assert [p.line for p in problems] == [6]
    assert "duplicate code '110101'" in problems[0].reason and "line 4" in problems[0].reason


def test_csv_empty_label_and_unknown_parent(tmp_path: Path) -> None:
    text = REGION_CSV + "110105,朝阳区,,110100\n120101,和平区,Heping,120100\n"
    _path, problems = _table_problems(tmp_path, "region.csv", text)
    assert [(p.line, "empty en label" in p.reason) for p in problems if "label" in p.reason] == [
        (6, True)
    ]
    assert any(p.line == 7 and "parent '120100'" in p.reason for p in problems)


def test_csv_without_sidecar(tmp_path: Path) -> None:
    root = write_set(tmp_path / "forms")
    (root / "codes" / "region.meta.yaml").unlink()
    problems = check_formset(root)
    assert any("missing sidecar region.meta.yaml" in p.reason for p in problems)


def test_yaml_table_code_must_be_quoted(tmp_path: Path) -> None:
    text = GENDER.replace('{code: "2"', "{code: 2")
    _path, problems = _table_problems(tmp_path, "gender.yaml", text)
    assert [p.line for p in problems] == [6]
    assert "quoted string" in problems[0].reason


def test_yaml_table_duplicate_code(tmp_path: Path) -> None:
    text = GENDER + '  - {code: "1", zh: 男性, en: Male again}\n'
    _path, problems = _table_problems(tmp_path, "gender.yaml", text)
    assert [p.line for p in problems] == [7]
    assert "duplicate code '1'" in problems[0].reason


def test_yaml_table_id_must_match_file(tmp_path: Path) -> None:
    _path, problems = _table_problems(
        tmp_path, "gender.yaml", GENDER.replace("table: gender", "table: sex")
    )
    assert [p.line for p in problems] == [1]


# --------------------------------------------------------------------------- the shipped forms


def _shipped_tables() -> list[Path]:
    codes = default_forms_dir() / "codes"
    return [p for p in codes.iterdir() if p.suffix in (".yaml", ".csv")]


needs_tables = pytest.mark.skipif(
    not _shipped_tables(), reason="forms/codes has no code tables yet (written by another helper)"
)


def test_default_forms_dir_is_the_packaged_forms() -> None:
    directory = default_forms_dir()
    assert (directory / "FORMAT.md").is_file()
    assert {p.stem for p in directory.glob("*.yaml")} >= {"address", "house", "resident", "unit"}


@needs_tables
def test_shipped_forms_load_without_problems() -> None:
    problems = check_formset()
    assert problems == [], "\n".join(str(p) for p in problems)


@needs_tables
def test_shipped_forms_resolve_every_reference() -> None:
    fs = load_formset()
    assert load_formset() is fs  # the packaged set is cached
    assert set(fs.forms) == {"address", "house", "resident", "unit"}
    for form in fs.forms.values():
        assert form.version == 1
        for fld in form.fields.values():
            assert fld.label.zh and fld.label.en, (form.id, fld.id)
            if fld.type in ("choice", "multi_choice"):
                table = fs.table(fld.codes)  # type: ignore[arg-type]
                assert len(table) > 0, (form.id, fld.id)
            if fld.type == "reference":
                assert fs.form(fld.target)  # type: ignore[arg-type]


RESIDENT_IDS = [
    "id_type",
    "id_number",
    "name",
    "former_name",
    "gender",
    "birth_date",
    "ethnicity",
    "native_place",
    "marital_status",
    "political_status",
    "education",
    "religion",
    "occupation_code",
    "occupation",
    "workplace",
    "phone",
    "hukou_region",
    "hukou_address",
    "residence_region",
    "residence_address",
    "population_type",
    "grid",
    "house_ref",
    "hukou_consistency",
    "household_number",
    "head_id_number",
    "head_name",
    "household_relation",
    "head_phone",
    "inflow_reason",
    "permit_type",
    "permit_number",
    "registered_on",
    "permit_expires",
    "residence_type",
    "is_focus",
    "foreign_surname",
    "foreign_given_name",
    "nationality",
    "id_valid_until",
    "visit_purpose",
    "arrived_on",
    "expected_departure",
    "left_behind",
    "special_group",
    "moved_out_on",
]


@needs_tables
def test_resident_form_has_the_agreed_ids_and_meanings() -> None:
    resident = load_formset().form("resident")
    assert set(RESIDENT_IDS) <= set(resident.fields)
    assert resident.natural_keys == (("id_type", "id_number"),)
    assert resident.title_template == "{name}"
    id_number = resident.field("id_number")
    assert id_number.type == "id_number" and id_number.id_type_field == "id_type"
    assert id_number.gb11643_types == ("111", "112")
    assert dict(id_number.derives) == {
        "birth_date": "birth_date",
        "gender": "gender",
        "region": "hukou_region",
    }
    assert resident.field("id_type").default == "111"
    assert resident.field("name").required and resident.field("name").show_when is None
    assert resident.field("house_ref").target == "house"
    for fid in ("id_number", "phone", "head_id_number", "head_phone", "permit_number"):
        assert resident.field(fid).sensitive, fid
    for fid in ("special_group", "left_behind", "is_focus"):
        assert resident.field(fid).sensitive, fid
    roles = resident.roles
    assert (roles.id, roles.phone, roles.address) == (
        ("id_number",),
        ("phone",),
        ("residence_address",),
    )
    assert (roles.birth_date, roles.house, roles.grid) == ("birth_date", "house_ref", "grid")


@needs_tables
@pytest.mark.parametrize(
    ("population_type", "shown", "hidden"),
    [
        ("1", "hukou_consistency", "inflow_reason"),
        ("2", "inflow_reason", "nationality"),
        ("3", "nationality", "ethnicity"),
        ("4", "unregistered_reason", "hukou_consistency"),
    ],
)
def test_resident_type_blocks_follow_population_type(
    population_type: str, shown: str, hidden: str
) -> None:
    resident = load_formset().form("resident")
    values = {"population_type": population_type}
    assert conditions.evaluate(resident.field(shown).show_when, values)
    assert not conditions.evaluate(resident.field(hidden).show_when, values)


@needs_tables
def test_house_and_unit_blocks_follow_their_switches() -> None:
    fs = load_formset()
    rent = fs.form("house").field("rental_use")
    assert conditions.evaluate(rent.show_when, {"is_rental": True})
    assert not conditions.evaluate(rent.show_when, {"is_rental": False})
    reg = fs.form("unit").field("registration_number")
    assert conditions.evaluate(reg.show_when, {"unit_kind": "3"})
    assert not conditions.evaluate(reg.show_when, {"unit_kind": "1"})
    assert fs.form("unit").natural_keys == (("credit_code",),)
    assert fs.form("house").natural_keys == (("house_code",),)
    assert fs.form("address").natural_keys == (("address_code",),)
    assert fs.form("house").roles.id == ("house_code", "owner_id_number")


@given(
    st.lists(
        st.tuples(st.sampled_from(["1", "2", "10", "11"]), st.sampled_from([None, "", "1", "10"])),
        max_size=6,
    )
)
def test_a_table_is_a_tree_when_some_code_has_a_parent(rows: list[tuple[str, str | None]]) -> None:
    """``is_tree`` (read from the parent index) says what a scan of every code says."""
    from app.core.forms.model import Code, Text

    codes = {code: Code(code, code, code, parent) for code, parent in rows}
    table = CodeTable("t", "", Text("表", "table"), codes)
    assert table.is_tree == any(c.parent for c in codes.values())
