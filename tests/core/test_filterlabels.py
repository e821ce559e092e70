"""Filters shown with labels (``人口类型 = 流动人口``) read back to the same filter, in both
languages, so what a supervisor reads on a task page can be typed into a new task."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.filterlabels import labelled_text
from app.core.forms import FormSet
from app.core.recordfilter import RecordFilter, parse_filter
from tests.core.test_recordfilter import _normal, _tree


@pytest.fixture(scope="module")
def fs() -> FormSet:
    from app.core.forms import load_formset

    return load_formset()


def test_codes_and_fields_are_shown_by_their_labels(fs: FormSet) -> None:
    form = fs.form("resident")
    flt = parse_filter("population_type = 2 and age >= 60", form, fs)
    assert labelled_text(flt, form, fs) == "人口类型 = 流动人口 且 年龄 >= 60"
    assert labelled_text(flt, form, fs, "en").startswith("Population type = ")


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["resident", "house"]), st.sampled_from(["zh", "en"]), st.data())
def test_labelled_text_parses_back_to_the_same_filter(
    fs: FormSet, form_id: str, lang: str, data: Any
) -> None:
    flt = RecordFilter(form_id, _normal(data.draw(_tree(form_id))))
    form = fs.form(form_id)
    assert parse_filter(labelled_text(flt, form, fs, lang), form, fs) == flt
