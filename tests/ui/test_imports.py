"""The screens use other packages through their public names only: no private helper of the
CLI (``sync.cli._summary_line`` was one) and no display helper taken from printing."""

from __future__ import annotations

import ast
from pathlib import Path

UI = Path(__file__).resolve().parents[2] / "app" / "ui"


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from module import name`` in a file, nested ones too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.module or "", alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0
        for alias in node.names
    ]


def test_the_ui_imports_no_private_name_from_another_package() -> None:
    bad = [
        f"{path.relative_to(UI)}: from {module} import {name}"
        for path in sorted(UI.rglob("*.py"))
        for module, name in _imports(path)
        if name.startswith("_") and not module.startswith("app.ui")
    ]
    assert bad == []


def test_the_ui_takes_no_display_helper_from_printing() -> None:
    display = {"display_value", "code_text", "coordinates_text", "text", "masked_data"}
    bad = [
        f"{path.relative_to(UI)}: from {module} import {name}"
        for path in sorted(UI.rglob("*.py"))
        for module, name in _imports(path)
        if module.startswith("app.printing") and name in display
    ]
    assert bad == []
