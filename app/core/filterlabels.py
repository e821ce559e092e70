"""A record filter as people read it: field and code labels instead of ids and codes.

The canonical text (``RecordFilter.text``) is what is stored and compared; a supervisor reading
a task or a grant wants ``人口类型 = 流动人口``, not ``population_type = 2``. The labelled text
parses back to the same filter (``parse_filter`` reads labels), so it can be copied into a new
task's form.
"""

from __future__ import annotations

from app.core.forms import Form, FormSet
from app.core.recordfilter import (
    _KEYWORDS,
    AGE,
    And,
    Node,
    Not,
    RecordFilter,
    Scalar,
    Term,
    _is_bare,
    _quote,
)

_AGE_LABEL = {"zh": "年龄", "en": "age"}
_WORDS = {"zh": (" 且 ", " 或 ", "非 "), "en": (" and ", " or ", "not ")}


def labelled_text(flt: RecordFilter, form: Form, formset: FormSet, lang: str = "zh") -> str:
    """``flt`` with the form's labels in ``lang`` ("zh" or "en")."""
    lang = "en" if lang.startswith("en") else "zh"
    return _node(flt.root, form, formset, lang, top=True)


def _node(node: Node, form: Form, formset: FormSet, lang: str, top: bool = False) -> str:
    and_word, or_word, not_word = _WORDS[lang]
    if isinstance(node, Term):
        return _term(node, form, formset, lang)
    if isinstance(node, Not):
        return f"{not_word}{_node(node.item, form, formset, lang)}"
    word = and_word if isinstance(node, And) else or_word
    body = word.join(_node(item, form, formset, lang) for item in node.items)
    return body if top else f"({body})"


def _term(term: Term, form: Form, formset: FormSet, lang: str) -> str:
    name = _field_label(term.field, form, lang)
    if term.op in ("is empty", "is filled"):
        return f"{name} {term.op}"
    if term.op == "in":
        values = term.value if isinstance(term.value, tuple) else ()
        shown = ", ".join(_value(term, v, form, formset, lang) for v in values)
        return f"{name} in ({shown})"
    value = term.value if not isinstance(term.value, tuple) and term.value is not None else ""
    return f"{name} {term.op} {_value(term, value, form, formset, lang)}"


def _field_label(field: str, form: Form, lang: str) -> str:
    if field == AGE:
        return _AGE_LABEL[lang]
    fld = form.fields.get(field)
    if fld is None:
        return field
    label = fld.label.get(lang)
    words = label.split(" ")
    if all(_is_bare(w) and w.lower() not in _KEYWORDS for w in words):
        return label
    return _quote(label, "text")


def _value(term: Term, value: Scalar, form: Form, formset: FormSet, lang: str) -> str:
    fld = form.fields.get(term.field)
    table = formset.tables.get(fld.codes) if fld is not None and fld.codes else None
    if term.kind in ("code", "codes") and table is not None:
        code = table.codes.get(str(value))
        if code is not None:
            return _quote(code.label(lang), "text")
    return _quote(value, term.kind)
