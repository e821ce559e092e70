"""The grammar of record filters (see ``recordfilter``): tokens, then a recursive descent.

``a or b``, ``a and b``, ``not a``, parentheses; a term is ``<field> <op> <value>`` with the
field by id or label and the value typed by the field, so errors name what to fix and where.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from app.core.forms import Field, Form, FormSet
from app.core.forms.model import did_you_mean
from app.core.phone import PhoneError, parse_phone
from app.core.recordfilter import (
    AGE,
    KIND_OF_TYPE,
    ORDERED_KINDS,
    STOP_CHARS,
    And,
    FilterError,
    Kind,
    Node,
    Not,
    Or,
    Scalar,
    Term,
)
from app.core.textnorm import normalize_key


def parse_root(text: str, form: Form, formset: FormSet | None) -> Node:
    """The tree of a filter text over ``form``; ``FilterError`` when it cannot be read."""
    return _Parser(text, form, formset).parse()


# ---------------------------------------------------------------------------- tokens

_TokenKind = Literal["word", "quoted", "op", "(", ")", ","]


@dataclass(frozen=True)
class _Token:
    kind: _TokenKind
    text: str
    pos: int


_SYMBOLS = (
    ("!=", "!="),
    ("<=", "<="),
    (">=", ">="),
    ("！=", "!="),
    ("≠", "!="),
    ("≤", "<="),
    ("≥", ">="),
    ("=", "="),
    ("＝", "="),
    ("<", "<"),
    (">", ">"),
    ("＜", "<"),
    ("＞", ">"),
)
_PUNCT = {"(": "(", "（": "(", ")": ")", "）": ")", ",": ",", "，": ",", "、": ","}
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’"}


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        symbol = next(((s, op) for s, op in _SYMBOLS if text.startswith(s, i)), None)
        if symbol is not None:
            out.append(_Token("op", symbol[1], i))
            i += len(symbol[0])
        elif ch in _PUNCT:
            out.append(_Token(_PUNCT[ch], _PUNCT[ch], i))  # type: ignore[arg-type]
            i += 1
        elif ch in _QUOTES:
            i = _quoted(text, i, out)
        elif ch in "!！":
            raise FilterError("“!” 后须跟 “=”", "'!' must be followed by '='", i)
        else:
            start = i
            while i < len(text) and text[i] not in STOP_CHARS and not text[i].isspace():
                i += 1
            out.append(_Token("word", text[start:i], start))
    return out


def _quoted(text: str, start: int, out: list[_Token]) -> int:
    close = _QUOTES[text[start]]
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            chars.append(text[i + 1])
            i += 2
            continue
        if ch == close:
            out.append(_Token("quoted", "".join(chars), start))
            return i + 1
        chars.append(ch)
        i += 1
    raise FilterError("引号没有闭合", "a quoted value is not closed", start)


# ---------------------------------------------------------------------------- parsing

_AND = frozenset({"and", "且", "并且"})
_OR = frozenset({"or", "或", "或者"})
_NOT = frozenset({"not", "非"})
_IN = frozenset({"in", "属于"})
_CONTAINS = frozenset({"contains", "包含"})
_EMPTY = {"为空": "is empty", "非空": "is filled"}
_TRUE_WORDS = frozenset({"true", "是", "yes", "1"})
_FALSE_WORDS = frozenset({"false", "否", "no", "0"})
_RELATIVE = re.compile(r"^today(?:([+-]\d{1,4})([dwmy]))?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Parser:
    def __init__(self, text: str, form: Form, formset: FormSet | None) -> None:
        self.text = text
        self.form = form
        self.formset = formset
        self.toks = _tokens(text)
        self.i = 0

    # -- token helpers
    def peek(self, ahead: int = 0) -> _Token | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def end(self) -> int:
        return len(self.text)

    def is_word(self, tok: _Token | None, words: frozenset[str]) -> bool:
        return tok is not None and tok.kind == "word" and tok.text.lower() in words

    def fail(self, zh: str, en: str, tok: _Token | None) -> FilterError:
        return FilterError(zh, en, tok.pos if tok is not None else self.end())

    # -- grammar
    def parse(self) -> Node:
        if not self.toks:
            raise FilterError(
                "条件为空：请写出至少一个条件", "the filter is empty: write a condition", 0
            )
        node = self.parse_or()
        tok = self.peek()
        if tok is not None:
            raise self.fail(
                f"多余的 “{tok.text}”：条件之间请用 and/or（且/或）连接",
                f"unexpected {tok.text!r}: join conditions with and/or",
                tok,
            )
        return node

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while self.is_word(self.peek(), _OR):
            self.i += 1
            items.append(self.parse_and())
        return _flat(Or, items)

    def parse_and(self) -> Node:
        items = [self.parse_not()]
        while self.is_word(self.peek(), _AND):
            self.i += 1
            items.append(self.parse_not())
        return _flat(And, items)

    def parse_not(self) -> Node:
        tok = self.peek()
        if self.is_word(tok, _NOT):
            self.i += 1
            return Not(self.parse_not())
        if tok is not None and tok.kind == "(":
            self.i += 1
            node = self.parse_or()
            close = self.peek()
            if close is None or close.kind != ")":
                raise self.fail("缺少右括号 “)”", "a ')' is missing", close)
            self.i += 1
            return node
        return self.parse_term()

    def parse_term(self) -> Term:
        start = self.peek()
        if start is None:
            raise self.fail("这里缺少条件", "a condition is missing here", None)
        field, kind, source = self.parse_field()
        op_tok = self.peek()
        op = self.parse_op()
        if op in ("is empty", "is filled"):
            return Term(field, kind, op, None, source)
        self.check_op(op, kind, field, op_tok)
        if op == "in":
            return Term(field, kind, op, self.parse_list(field, kind), source)
        return Term(field, kind, op, self.parse_value(field, kind, op), source)

    def parse_field(self) -> tuple[str, Kind, str | None]:
        first = self.peek()
        assert first is not None
        if first.kind == "quoted":
            self.i += 1
            return self.lookup(first.text, first)
        if first.kind != "word":
            raise self.fail(
                f"这里应是字段名，而不是 “{first.text}”",
                f"a field name is expected here, not {first.text!r}",
                first,
            )
        words: list[str] = []
        while True:
            tok = self.peek()
            if tok is None or tok.kind != "word":
                break
            if words and self.starts_op(tok) and not self.label_goes_on(words, tok):
                break
            words.append(tok.text)
            self.i += 1
        return self.lookup(" ".join(words), first)

    def starts_op(self, tok: _Token) -> bool:
        word = tok.text.lower()
        return word in _IN or word in _CONTAINS or word in _EMPTY or word == "is"

    def label_goes_on(self, words: list[str], tok: _Token) -> bool:
        """Whether an operator-like word continues a label ("House lived in")."""
        head = " ".join([*words, tok.text]).lower()
        labels = [f.label.en.lower() for f in self.form.fields.values()]
        return any(label == head or label.startswith(head + " ") for label in labels)

    def lookup(self, name: str, tok: _Token) -> tuple[str, Kind, str | None]:
        fld = _find_field(self.form, name)
        if fld is not None:
            return fld.id, KIND_OF_TYPE.get(fld.type, "text"), None
        birth = self.form.roles.birth_date
        if birth is not None and name.lower() in (AGE, "年龄"):
            return AGE, "age", birth
        known = [f.label.zh for f in self.form.fields.values()] + list(self.form.fields)
        raise self.fail(
            f"表单 {self.form.id} 没有字段 “{name}”{did_you_mean(name, known)}",
            f"form {self.form.id} has no field {name!r}",
            tok,
        )

    def parse_op(self) -> str:
        tok = self.peek()
        if tok is None:
            raise self.fail(
                "字段后缺少比较符（= != < <= > >= in contains 为空 非空）",
                "an operator is missing after the field (= != < <= > >= in contains is empty)",
                None,
            )
        self.i += 1
        if tok.kind == "op":
            return tok.text
        word = tok.text.lower() if tok.kind == "word" else ""
        if word in _IN:
            return "in"
        if word in _CONTAINS:
            return "contains"
        if word in _EMPTY:
            return _EMPTY[word]
        if word == "is":
            nxt = self.peek()
            what = nxt.text.lower() if nxt is not None and nxt.kind == "word" else ""
            if what in ("empty", "filled"):
                self.i += 1
                return f"is {what}"
            raise self.fail(
                "“is” 后须是 empty 或 filled", "'is' must be followed by empty or filled", nxt
            )
        raise self.fail(
            f"“{tok.text}” 不是比较符：请用 = != < <= > >= in contains 为空 非空",
            f"{tok.text!r} is not an operator: use = != < <= > >= in contains is empty/filled",
            tok,
        )

    def check_op(self, op: str, kind: Kind, field: str, tok: _Token | None) -> None:
        if kind == "any":
            raise self.fail(
                f"字段 {field} 只能用 为空/非空",
                f"field {field} only takes is empty / is filled",
                tok,
            )
        if op in ("<", "<=", ">", ">=") and kind not in ORDERED_KINDS:
            raise self.fail(
                f"“{op}” 只能用于数字、日期和年龄，字段 {field} 请用 = 或 in",
                f"{op!r} only compares numbers, dates and age; use = or in for field {field}",
                tok,
            )
        if op == "contains" and kind not in ("text", "id", "codes"):
            raise self.fail(
                f"“包含” 只能用于文本和多选字段，字段 {field} 请用 = 或 in",
                f"contains only applies to text and multiple-choice fields; use = or in for {field}",
                tok,
            )

    def parse_list(self, field: str, kind: Kind) -> tuple[Scalar, ...]:
        tok = self.peek()
        if tok is None or tok.kind != "(":
            raise self.fail("in 后须跟括号列表，如 in (1, 2)", "in takes a list: in (a, b)", tok)
        self.i += 1
        values = [self.parse_value(field, kind, "in")]
        while (tok := self.peek()) is not None and tok.kind == ",":
            self.i += 1
            values.append(self.parse_value(field, kind, "in"))
        if tok is None or tok.kind != ")":
            raise self.fail("列表缺少右括号 “)”", "the list is missing its ')'", tok)
        self.i += 1
        return tuple(values)

    def parse_value(self, field: str, kind: Kind, op: str) -> Scalar:
        tok = self.peek()
        if tok is None or tok.kind not in ("word", "quoted"):
            raise self.fail(
                f"字段 {field} 后缺少要比较的值", f"a value is missing for {field}", tok
            )
        self.i += 1
        return self.typed(tok, field, kind, op)

    def typed(self, tok: _Token, field: str, kind: Kind, op: str) -> Scalar:
        raw = tok.text.strip()
        if kind in ("number", "age"):
            return self.number(raw, field, tok, whole=kind == "age")
        if kind == "date":
            return self.date(raw, field, tok)
        if kind == "bool":
            if raw.lower() in _TRUE_WORDS:
                return True
            if raw.lower() in _FALSE_WORDS:
                return False
            raise self.fail(
                f"字段 {field} 是是否项：请写 是 或 否",
                f"field {field} is yes/no: write true or false",
                tok,
            )
        if kind in ("code", "codes"):
            return self.code(raw, field, tok)
        if not raw and op != "=":
            raise self.fail("值不能为空", "the value must not be empty", tok)
        fld = self.form.fields.get(field)
        if fld is None or op == "contains":
            return raw
        if fld.type in ("id_number", "credit_code"):
            return normalize_key(raw)
        if fld.type == "phone":
            try:
                return parse_phone(raw)
            except PhoneError:
                return raw
        return raw

    def number(self, raw: str, field: str, tok: _Token, whole: bool) -> int | float:
        try:
            value = float(raw) if not whole else int(raw)
        except ValueError:
            what = "整数" if whole else "数字"
            raise self.fail(
                f"字段 {field} 须与{what}比较，“{raw}” 不是{what}",
                f"field {field} compares with a {'whole ' if whole else ''}number; {raw!r} is not one",
                tok,
            ) from None
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            raise self.fail(f"“{raw}” 不是有效数字", f"{raw!r} is not a finite number", tok)
        return int(value) if isinstance(value, float) and value.is_integer() else value

    def date(self, raw: str, field: str, tok: _Token) -> str:
        spec = "today" + raw[2:] if raw.startswith("今天") else raw.lower()
        m = _RELATIVE.match(spec)
        if m:
            return f"today{int(m[1]):+d}{m[2]}" if m[1] and int(m[1]) else "today"
        if _ISO_DATE.match(raw):
            try:
                return date.fromisoformat(raw).isoformat()
            except ValueError:
                pass
        raise self.fail(
            f"字段 {field} 须与日期比较：写 YYYY-MM-DD、today、today+30d 或 today-1y",
            f"field {field} compares with a date: write YYYY-MM-DD, today, today+30d or today-1y",
            tok,
        )

    def code(self, raw: str, field: str, tok: _Token) -> str:
        fld = self.form.fields[field]
        table = None
        if self.formset is not None and fld.codes and fld.codes in self.formset.tables:
            table = self.formset.tables[fld.codes]
        if table is None or raw in table:
            return raw
        for code in table.codes.values():
            if raw == code.zh or raw.lower() == code.en.lower():
                return code.code
        labels = [c.zh for c in table.codes.values()]
        raise self.fail(
            f"“{raw}” 不是字段 {field} 的代码或名称{did_you_mean(raw, labels)}",
            f"{raw!r} is not a code or label of field {field}",
            tok,
        )


def _find_field(form: Form, name: str) -> Field | None:
    if name in form.fields:
        return form.fields[name]
    lowered = name.lower()
    for fld in form.fields.values():
        if name == fld.label.zh or lowered == fld.label.en.lower():
            return fld
    return None


def _flat(cls: type[And] | type[Or], items: Sequence[Node]) -> Node:
    """One item stays itself; nested nodes of the same kind merge (a and (b and c))."""
    if len(items) == 1:
        return items[0]
    out: list[Node] = []
    for item in items:
        out.extend(item.items if isinstance(item, cls) else (item,))
    return cls(tuple(out))
