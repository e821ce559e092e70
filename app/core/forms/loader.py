"""Form files read as YAML with line numbers, and the collector of their problems.

Every problem names its file and line, so parsing keeps lines. It uses libyaml
(``yaml.CSafeLoader``) when available: the C parser still yields nodes with marks, and the
(Python) constructor below attaches the line of every mapping key and list item.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from app.core.forms.model import Problem, Text, did_you_mean

# --------------------------------------------------------------------------- YAML with lines


class LineDict(dict[Any, Any]):
    """A mapping from YAML that remembers its own line and the line of each key."""

    __slots__ = ("line", "key_lines")
    line: int
    key_lines: dict[Any, int]


class LineList(list[Any]):
    """A sequence from YAML that remembers its own line and the line of each item."""

    __slots__ = ("line", "item_lines")
    line: int
    item_lines: list[int]


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicate_keys: list[tuple[int, object]] = []


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if isinstance(key, list | dict):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        if key in result:
            loader.duplicate_keys.append((line, key))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(item, deep=True) for item in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [item.start_mark.line + 1 for item in node.value]
    return result


def _construct_plain_string(loader: _Loader, node: yaml.ScalarNode) -> str:
    # Dates stay "YYYY-MM-DD" strings, as they are stored; the checker validates them.
    return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_plain_string)


def plain(value: object) -> object:
    """Strip line bookkeeping: what the model keeps are ordinary dicts and lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- problem collection


def zh_en(zh: str, en: str) -> str:
    """A problem message: Chinese first, then English."""
    return f"{zh} / {en}"


_ZH_NAMES = {
    "form": "表单",
    "section": "分节",
    "field": "字段",
    "code table": "代码表",
    "sidecar": "说明文件",
    "code": "代码",
    "label": "标签 label",
    "title": "标题 title",
    "help": "帮助 help",
}


def _zh(what: str) -> str:
    """The Chinese name of a part of a file, for the Chinese half of a message."""
    return _ZH_NAMES.get(what, what)


class FileProblems:
    """Problems found in one file, each with the line of the offending node."""

    def __init__(self, path: Path, sink: list[Problem]) -> None:
        self.path = str(path)
        self.sink = sink

    def add(self, line: int, reason: str) -> None:
        self.sink.append(Problem(self.path, max(line, 1), reason))

    def at(self, node: object, key: object = None) -> int:
        """Line of ``node[key]`` (or of the node itself)."""
        if key is not None and isinstance(node, LineDict):
            return node.key_lines.get(key, node.line)
        return getattr(node, "line", 1)

    def item_line(self, seq: object, index: int) -> int:
        if isinstance(seq, LineList) and index < len(seq.item_lines):
            return seq.item_lines[index]
        return getattr(seq, "line", 1)

    def keys(
        self, node: LineDict, allowed: Iterable[str], required: Iterable[str], what: str
    ) -> None:
        allowed = tuple(allowed)
        for key in node:
            if key not in allowed:
                self.add(
                    self.at(node, key),
                    zh_en(f"{_zh(what)}有未知的键 {key!r}", f"unknown key {key!r} in {what}")
                    + did_you_mean(key, allowed),
                )
        for key in required:
            if key not in node:
                self.add(
                    self.at(node),
                    zh_en(f"{_zh(what)}缺少键 {key!r}", f"{what}: missing key {key!r}"),
                )

    def mapping(self, node: object, key: object, what: str) -> LineDict | None:
        value = node.get(key) if isinstance(node, dict) else None
        if isinstance(value, LineDict):
            return value
        if value is not None or (isinstance(node, dict) and key in node):
            self.add(self.at(node, key), zh_en(f"{what}须是映射", f"{what} must be a mapping"))
        return None

    def text(self, node: LineDict, key: str, what: str) -> Text | None:
        """A ``{zh, en}`` label; both must be non-empty strings."""
        if key not in node:
            return None
        value = node[key]
        if not isinstance(value, LineDict):
            self.add(
                self.at(node, key),
                zh_en(
                    f"{_zh(what)}须写成 {{zh: ..., en: ...}}",
                    f"{what} must be {{zh: ..., en: ...}}",
                ),
            )
            return Text("", "")
        self.keys(value, ("zh", "en"), (), what)
        parts = {}
        for lang, name in (("zh", "中文"), ("en", "English")):
            text = value.get(lang)
            if not isinstance(text, str) or not text.strip():
                self.add(
                    self.at(value, lang),
                    zh_en(f"{_zh(what)}缺少{name}（{lang}）", f"{what} is missing its {lang} text"),
                )
                text = ""
            parts[lang] = text.strip()
        return Text(parts["zh"], parts["en"])

    def boolean(self, node: LineDict, key: str, default: bool = False) -> bool:
        value = node.get(key, default)
        if isinstance(value, bool):
            return value
        self.add(
            self.at(node, key), zh_en(f"{key} 须是 true 或 false", f"{key} must be true or false")
        )
        return default

    def string(self, node: LineDict, key: str, what: str) -> str | None:
        value = node.get(key)
        if value is None and key not in node:
            return None
        if isinstance(value, str) and value:
            return value
        self.add(
            self.at(node, key), zh_en(f"{what}须是非空字符串", f"{what} must be a non-empty string")
        )
        return None

    def strings(self, node: LineDict, key: str, what: str) -> tuple[str, ...] | None:
        value = node.get(key)
        if value is None and key not in node:
            return None
        if not isinstance(value, list):
            self.add(self.at(node, key), zh_en(f"{what}须是列表", f"{what} must be a list"))
            return None
        good = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item:
                good.append(item)
            else:
                self.add(
                    self.item_line(value, i),
                    zh_en(
                        f'{what}的每一项须是带引号的字符串（如 "01"）',
                        f'each item of {what} must be a quoted string (e.g. "01")',
                    ),
                )
        return tuple(good)


# --------------------------------------------------------------------------- reading files


def _read_yaml(path: Path, f: FileProblems) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        f.add(1, zh_en(f"不是 UTF-8 编码：{exc.reason}", f"not UTF-8: {exc.reason}"))
        return None
    except OSError as exc:
        f.add(1, zh_en(f"无法读取：{exc.strerror}", f"cannot read: {exc.strerror}"))
        return None
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        detail = exc.problem or exc.context or "?"
        f.add(line, zh_en(f"YAML 语法错误：{detail}", f"YAML syntax error: {detail}"))
        return None
    except yaml.YAMLError as exc:
        f.add(1, zh_en(f"YAML 错误：{exc}", f"YAML error: {exc}"))
        return None
    finally:
        loader.dispose()
    for line, key in loader.duplicate_keys:
        f.add(line, zh_en(f"键 {key!r} 重复", f"duplicate key {key!r}"))
    if data is None:
        f.add(1, zh_en("文件是空的", "the file is empty"))
    return data


def top_mapping(path: Path, f: FileProblems, what: str) -> LineDict | None:
    """The file's top-level mapping, or ``None`` once the reason is reported to ``f``."""
    data = _read_yaml(path, f)
    if data is None:
        return None
    if not isinstance(data, LineDict):
        f.add(
            getattr(data, "line", 1),
            zh_en(f"{_zh(what)}文件的顶层须是映射", f"the top of a {what} file must be a mapping"),
        )
        return None
    return data
