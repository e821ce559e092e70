"""The compiled row projectors of department takings (``sync.server.dept.project``) against
the plain meaning (``Shaper.values``, ``Shaper.labels`` + ``neutralise``), over every form,
random grants (fields, full or masked) and random stored values — codes and labels, lists,
flags, numbers, blank and formula-like text — and the fast JSON parse against the standard
module. Under a grant that masks an ID number, both reduce the birth date and area codes as a
masked export does (``mask_record``). ``GC_PROJECT_EXAMPLES`` sets how many examples (default
300)."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.display import masked_part
from app.core.forms import Field, FormSet, load_formset
from app.core.masking import mask_record, revealing
from app.core.records import is_empty
from app.core.tabular.formula import DANGEROUS_FIRST, neutralise
from sync.server.dept.grants import Grant
from sync.server.dept.project import parse
from sync.server.dept.shape import Shaper

EXAMPLES = int(os.environ.get("GC_PROJECT_EXAMPLES", "300"))
FORMS = load_formset()

texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "  ", "\t", "'", "''=1", "=SUM(A1)", "+86", "-3", "@x", "\r1", "王𠮷"]),
    st.builds(lambda a, b: a + b, st.sampled_from([*DANGEROUS_FIRST, "'"]), st.text(max_size=6)),
)
scalars = st.one_of(
    texts,
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(),
)


def value_for(fld: Field) -> st.SearchStrategy[Any]:
    """Stored values a field may hold: its codes when it has a table, and anything else."""
    anything = st.one_of(scalars, st.lists(scalars, max_size=3), st.just([]), st.just({}))
    if fld.codes:
        codes = list(FORMS.table(fld.codes).codes)[:40] or ["x"]
        code = st.sampled_from(codes)
        return st.one_of(code, st.lists(code, max_size=3, unique=True), anything)
    return anything


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, dict[str, str], dict[str, Any], str]:
    form = FORMS.form(draw(st.sampled_from(sorted(FORMS.forms))))
    names = list(form.fields)
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=12, unique=True))
    modes = {n: draw(st.sampled_from(["full", "masked"])) for n in chosen}
    data = {}
    for name in draw(st.lists(st.sampled_from(names), max_size=len(names), unique=True)):
        data[name] = draw(value_for(form.fields[name]))
    return form.id, modes, data, draw(st.sampled_from(["zh", "en"]))


def shaper(formset: FormSet, form: str, modes: dict[str, str]) -> Shaper:
    grant = Grant(
        1, "mz", "p", "b", {form: modes}, (), (), "", "2020", "2099", "root", "2020", None, 1
    )
    return Shaper(grant, formset, frozenset(), {}, dt.date(2026, 1, 1), True)


@settings(max_examples=EXAMPLES, deadline=None)
@given(cases())
def test_the_compiled_projectors_give_what_the_plain_shaper_gives(
    case: tuple[str, dict[str, str], dict[str, Any], str],
) -> None:
    form, modes, data, lang = case
    one = shaper(FORMS, form, modes)
    assert one.projector(form).values(data) == one.values(form, data)
    plain = [neutralise(c) for c in shaper(FORMS, form, modes).labels(form, data, lang)]
    assert one.row_writer(form, lang).cells(data) == plain
    assert one.row_writer(form, lang).cells(data) == plain  # again, from its remembered labels


IDS = {
    form.id: [n for n, f in form.fields.items() if f.type == "id_number" and f.sensitive]
    for form in FORMS.forms.values()
}


@st.composite
def masked_id_cases(draw: st.DrawFn) -> tuple[str, dict[str, str], dict[str, Any], str]:
    """A grant of a form with a sensitive ID number (masked or not) and the fields that would
    give it back, over random values (ISO dates among them) and random other fields."""
    form = FORMS.form(draw(st.sampled_from(sorted(f for f, ids in IDS.items() if ids))))
    names = list(form.fields)
    chosen = draw(st.lists(st.sampled_from(names), max_size=8, unique=True))
    chosen += [draw(st.sampled_from(IDS[form.id])), *revealing(form, FORMS)]
    modes = {n: draw(st.sampled_from(["full", "masked"])) for n in dict.fromkeys(chosen)}
    data = {}
    for name in draw(st.lists(st.sampled_from(names), max_size=len(names), unique=True)) + chosen:
        fld = form.fields[name]
        dates = st.dates().map(dt.date.isoformat) if fld.type == "date" else st.nothing()
        data[name] = draw(st.one_of(dates, value_for(fld)))
    return form.id, modes, data, draw(st.sampled_from(["zh", "en"]))


@settings(max_examples=EXAMPLES, deadline=None)
@given(masked_id_cases())
def test_a_grant_masking_an_id_number_reduces_what_gives_it_back_as_mask_record_does(
    case: tuple[str, dict[str, str], dict[str, Any], str],
) -> None:
    """Fast path = plain path = ``mask_record``'s treatment of each granted field: sensitive
    ones masked unless granted in full; the birth date and area codes reduced when the grant
    masks an ID number of the form, as stored when it gives them all in full."""
    form_id, modes, data, lang = case
    form = FORMS.form(form_id)
    one = shaper(FORMS, form_id, modes)
    got = one.projector(form_id).values(data)
    assert got == one.values(form_id, data)
    assert set(got) == {n for n in modes if not is_empty(data.get(n))}
    masked_id = any(modes.get(n) == "masked" for n in IDS[form_id])
    record = mask_record(form, FORMS, data)
    for name, value in got.items():
        fld = form.fields[name]
        if fld.sensitive:
            assert value == (data[name] if modes[name] == "full" else record[name])
        else:
            assert value == (record[name] if masked_id else data[name])
    cells = one.row_writer(form_id, lang).cells(data)
    assert cells == [neutralise(c) for c in one.labels(form_id, data, lang)]
    parts = revealing(form, FORMS) if masked_id else {}
    for (name, _mode), cell in zip(one.granted(form_id), cells, strict=True):
        if name in parts and not is_empty(data.get(name)):
            fld = form.fields[name]
            assert cell == neutralise(masked_part(FORMS, fld, parts[name], data[name], lang))


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8),
        st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6),
        max_size=6,
    )
)
def test_the_fast_parse_reads_what_the_standard_module_reads(data: dict[str, Any]) -> None:
    for text in (json.dumps(data), json.dumps(data, ensure_ascii=False)):
        assert parse(text) == json.loads(text)
    assert parse(None) == {} and parse("") == {}
