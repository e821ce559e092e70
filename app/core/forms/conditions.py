"""Conditions: the small data language forms use for ``show_when`` and ``required_when``.

A condition is data, never code (see ``forms/FORMAT.md``)::

    {field: population_type, equals: "2"}
    {field: population_type, in: ["1", "2"]}
    {field: phone, filled: true}
    {all: [cond, ...]}   {any: [cond, ...]}   {not: cond}

Keeping it data lets the loader check every field a condition reads, lets the UI know which
fields to re-evaluate after an edit, and keeps form files safe to share.

Values of ``multi_choice`` fields are lists: ``equals`` then holds when the list contains the
value and ``in`` when any chosen code is in the list, which is what "shown when 特殊人群 includes
X" means to a form author.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

__all__ = [
    "evaluate",
    "compile_condition",
    "fields_of",
    "check_condition",
    "leaves",
    "condition_problems",
]

Predicate = Callable[[Mapping[str, object]], bool]

_LEAF_OPS = ("equals", "in", "filled")
_BRANCH_OPS = ("all", "any", "not")
_SCALARS = (str, int, float, bool)


def is_filled(value: object) -> bool:
    """A value counts as filled unless it is None, "" or an empty list."""
    return not (value is None or value == "" or value == [] or value == ())


def _same(a: object, b: object) -> bool:
    """Equality that does not let ``True`` equal ``1`` (a boolean answer is not a count)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    return a == b


def _equals(value: object, wanted: object) -> bool:
    if isinstance(value, list | tuple):
        return any(_same(item, wanted) for item in value)
    return _same(value, wanted)


def _in(value: object, options: Sequence[object]) -> bool:
    if isinstance(value, list | tuple):
        return any(_equals(item, option) for item in value for option in options)
    return any(_same(value, option) for option in options)


def evaluate(cond: Mapping | None, values: Mapping[str, object]) -> bool:
    """Evaluate a (well-formed) condition against field values; ``None`` always holds.

    A field missing from ``values`` reads as None (empty). Malformed conditions raise
    ``ValueError``; the loader rejects them long before a form is shown.
    """
    if cond is None:
        return True
    if "all" in cond:
        return all(evaluate(c, values) for c in cond["all"])
    if "any" in cond:
        return any(evaluate(c, values) for c in cond["any"])
    if "not" in cond:
        return not evaluate(cond["not"], values)
    value = values.get(cond.get("field", ""))
    if "equals" in cond:
        return _equals(value, cond["equals"])
    if "in" in cond:
        return _in(value, cond["in"])
    if "filled" in cond:
        return is_filled(value) == bool(cond["filled"])
    raise ValueError(f"malformed condition: {sorted(cond)!r}")


def _always(values: Mapping[str, object]) -> bool:
    return True


def compile_condition(cond: Mapping | None) -> Predicate:
    """``evaluate`` with the condition's shape resolved once: a batch of 20 000 imported rows
    asks each field's condition per row, and re-reading the condition's keys was most of it.

    Same leaves (``_equals``, ``_in``, ``is_filled``) as ``evaluate``; tests hold the two
    against each other on random conditions and values."""
    if cond is None:
        return _always
    if "all" in cond:
        parts = [compile_condition(c) for c in cond["all"]]
        return lambda values: all(p(values) for p in parts)
    if "any" in cond:
        options = [compile_condition(c) for c in cond["any"]]
        return lambda values: any(p(values) for p in options)
    if "not" in cond:
        inner = compile_condition(cond["not"])
        return lambda values: not inner(values)
    name = cond.get("field", "")
    if "equals" in cond:
        wanted = cond["equals"]
        return lambda values: _equals(values.get(name), wanted)
    if "in" in cond:
        choices = cond["in"]
        return lambda values: _in(values.get(name), choices)
    if "filled" in cond:
        filled = bool(cond["filled"])
        return lambda values: is_filled(values.get(name)) == filled
    raise ValueError(f"malformed condition: {sorted(cond)!r}")


def leaves(cond: object) -> Iterator[Mapping]:
    """Yield every leaf condition (the ones with ``field``) of a condition tree."""
    if not isinstance(cond, Mapping):
        return
    if "field" in cond:
        yield cond
    for op in ("all", "any"):
        items = cond.get(op)
        if isinstance(items, list | tuple):
            for item in items:
                yield from leaves(item)
    if "not" in cond:
        yield from leaves(cond["not"])


def fields_of(cond: Mapping | None) -> set[str]:
    """The field ids a condition reads (what the UI must watch to re-evaluate it)."""
    return {leaf["field"] for leaf in leaves(cond) if isinstance(leaf.get("field"), str)}


def _at(where: str) -> str:
    return f"{where}: " if where else ""


def _join(where: str, step: str) -> str:
    return f"{where}.{step}" if where else step


def _leaf_problems(cond: Mapping, where: str) -> list[tuple[object, str]]:
    problems: list[tuple[object, str]] = []
    ops = [op for op in _LEAF_OPS if op in cond]
    extra = sorted(str(k) for k in cond if k != "field" and k not in _LEAF_OPS)
    if not isinstance(cond["field"], str) or not cond["field"]:
        problems.append(
            (cond, f"{_at(where)}条件的 field 必须是字段 id / condition field must be a field id")
        )
    if extra:
        problems.append(
            (cond, f"{_at(where)}条件有未知键 {extra} / condition has unknown keys {extra}")
        )
    if len(ops) != 1:
        problems.append(
            (
                cond,
                f"{_at(where)}条件须恰有 equals、in、filled 之一 / "
                "condition needs exactly one of equals, in, filled",
            )
        )
        return problems
    op = ops[0]
    arg = cond[op]
    if op == "equals" and not isinstance(arg, _SCALARS):
        problems.append(
            (
                cond,
                f"{_at(where)}equals 须是字符串、数字或布尔值（判空请用 filled）/ "
                "equals needs a string, number or boolean (use filled for empty)",
            )
        )
    elif op == "in" and (
        not isinstance(arg, list) or not arg or not all(isinstance(a, _SCALARS) for a in arg)
    ):
        problems.append(
            (cond, f"{_at(where)}in 须是非空的值列表 / in needs a non-empty list of values")
        )
    elif op == "filled" and not isinstance(arg, bool):
        problems.append(
            (cond, f"{_at(where)}filled 须是 true 或 false / filled needs true or false")
        )
    return problems


def _branch_problems(cond: Mapping, where: str) -> list[tuple[object, str]]:
    ops = [op for op in _BRANCH_OPS if op in cond]
    if len(ops) != 1 or len(cond) != 1:
        keys = sorted(str(k) for k in cond)
        return [
            (
                cond,
                f"{_at(where)}组合条件只能有一个键（all、any 或 not），实有 {keys} / "
                f"a combined condition has exactly one key (all, any or not), got {keys}",
            )
        ]
    op = ops[0]
    arg = cond[op]
    if op == "not":
        return condition_problems(arg, _join(where, "not"))
    if not isinstance(arg, list) or not arg:
        return [
            (
                cond,
                f"{_at(where)}{op} 须是非空的条件列表 / {op} needs a non-empty list of conditions",
            )
        ]
    problems: list[tuple[object, str]] = []
    for i, item in enumerate(arg):
        problems.extend(condition_problems(item, _join(where, f"{op}[{i}]")))
    return problems


def condition_problems(cond: object, where: str = "") -> list[tuple[object, str]]:
    """Structural problems as (offending node, reason): the loader uses the node's line."""
    if not isinstance(cond, Mapping):
        return [
            (
                cond,
                f"{_at(where)}条件须是映射，如 {{field: x, equals: y}} / "
                "a condition must be a mapping such as {field: x, equals: y}",
            )
        ]
    if "field" in cond:
        return _leaf_problems(cond, where)
    if any(op in cond for op in _BRANCH_OPS):
        return _branch_problems(cond, where)
    keys = sorted(str(k) for k in cond)
    return [
        (
            cond,
            f"{_at(where)}无法识别的条件 {keys}：需要 field 或 all/any/not / "
            f"unrecognised condition {keys}: needs field or all/any/not",
        )
    ]


def check_condition(cond: object) -> list[str]:
    """Structural errors of a condition, as human-readable reasons (empty list: well formed)."""
    return [reason for _node, reason in condition_problems(cond)]
