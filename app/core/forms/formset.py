"""The form set: form files and code tables loaded from ``forms/`` and checked.

Forms are data (``forms/FORMAT.md``): code knows field *types*, never field *names*. This module
turns the YAML/CSV files into frozen objects and refuses a form set with any problem, naming the
file and line of every one, so a mistake in a form file is caught by ``gridcollect check-forms``
and by CI instead of surfacing as a confusing widget or a wrong export in the field.

This is the public API; import from here. The work is split by concern: ``formmodel`` (the
objects), ``formyaml`` (YAML with line numbers, problem collection), ``formcodes`` (code tables),
``formfield`` (one field) and ``formcheck`` (a whole form).
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from app.core.forms.check import parse_form
from app.core.forms.codes import load_tables
from app.core.forms.field import DEFAULT_TEXT_MAX_LENGTH as DEFAULT_TEXT_MAX_LENGTH
from app.core.forms.field import DERIVE_KINDS as DERIVE_KINDS
from app.core.forms.loader import FileProblems, top_mapping, zh_en
from app.core.forms.model import (
    FIELD_TYPES,
    Code,
    CodeTable,
    Field,
    Form,
    FormFileError,
    FormSet,
    Problem,
    Roles,
    Section,
    Text,
    UnknownFormError,
)

__all__ = [
    "Text",
    "Field",
    "Section",
    "Code",
    "CodeTable",
    "Roles",
    "Form",
    "FormSet",
    "Problem",
    "FormFileError",
    "UnknownFormError",
    "FIELD_TYPES",
    "default_forms_dir",
    "check_formset",
    "load_formset",
]


# --------------------------------------------------------------------------- entry points


def default_forms_dir() -> Path:
    """The packaged ``forms/`` directory (works from a checkout and from an installed wheel)."""
    root = resources.files("forms")
    if isinstance(root, Path):
        return root
    return Path(str(root))  # a namespace package's MultiplexedPath; zip installs are unsupported


def _build(directory: Path) -> tuple[FormSet, list[Problem]]:
    problems: list[Problem] = []
    directory = Path(directory)
    if not directory.is_dir():
        problems.append(
            Problem(str(directory), 1, zh_en("找不到表单目录", "no such form directory"))
        )
        return FormSet(directory, MappingProxyType({}), MappingProxyType({})), problems
    tables = load_tables(directory / "codes", problems)
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        problems.append(
            Problem(
                str(directory),
                1,
                zh_en("目录中没有表单文件（*.yaml）", "no form files (*.yaml) in the directory"),
            )
        )
    form_ids = tuple(p.stem for p in paths)
    forms: dict[str, Form] = {}
    for path in paths:
        node = top_mapping(path, FileProblems(path, problems), "form")
        if node is not None:
            forms[path.stem] = parse_form(path, node, tables, form_ids, problems)
    problems.sort(key=lambda p: (p.file, p.line))
    return FormSet(directory, MappingProxyType(forms), MappingProxyType(tables)), problems


def check_formset(directory: Path | None = None) -> list[Problem]:
    """Every problem in a form set (empty: the set loads). Never raises for bad files."""
    return _build(directory if directory is not None else default_forms_dir())[1]


@functools.lru_cache(maxsize=1)
def _load_default() -> FormSet:
    return _load(default_forms_dir())


def _load(directory: Path) -> FormSet:
    formset, problems = _build(directory)
    if problems:
        raise FormFileError(problems)
    return formset


def load_formset(directory: Path | None = None) -> FormSet:
    """Load and check a form set; raises ``FormFileError`` listing every problem.

    The packaged set (``directory=None``) is loaded once per process and cached.
    """
    if directory is None:
        return _load_default()
    return _load(Path(directory))
