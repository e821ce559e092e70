"""UI strings in Chinese and English, and the runtime language switch.

Field labels, help and code names come from the form files (``Text.get(lang)``); this table
holds only the words of the app itself (buttons, banners, dialogs). It is a plain dict so a
missing translation is a one-line fix, and other UI modules can add their own keys with
``register`` instead of editing this file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QObject, QTranslator, Signal

from app.core.messages import COMMON, lang_of, pick

LANGS = ("zh", "en")

STRINGS: dict[str, tuple[str, str]] = {
    **COMMON.texts,  # yes/no, statuses, (empty): one spelling everywhere
    # Editor actions
    "save_draft": ("保存草稿", "Save draft"),
    "complete": ("完成", "Complete"),
    "close": ("关闭", "Close"),
    "history": ("历史", "History"),
    "save_draft_tip": (
        "随时可保存，即使还有错误（Ctrl+S）",
        "Always saves, even with errors (Ctrl+S)",
    ),
    "complete_tip": ("检查并标记为完成（Ctrl+Enter）", "Check and mark complete (Ctrl+Enter)"),
    "close_tip": ("关闭（Esc）", "Close (Esc)"),
    # Editor header and status
    "new_record": ("新记录", "New record"),
    "unsaved": ("有未保存的更改", "Unsaved changes"),
    "saved_draft": ("已保存草稿", "Draft saved"),
    "completed": ("已完成并保存", "Completed and saved"),
    "unstorable": (
        "“{field}”{why}，平台不会接受，未保存；请改正后再保存（已输入的内容仍在表单中）。",
        "{field}: {why}, which the platform refuses; not saved. Correct it and save again "
        "(what you typed is still in the form).",
    ),
    "unstorable_too_long": ("超过 {limit} 个字符的上限", "more than {limit} characters"),
    "unstorable_nul_char": ("含有不可见的空字符（\\u0000）", "holds a NUL character (\\u0000)"),
    "unstorable_bad_text": ("含有无效字符", "holds an invalid character"),
    "unstorable_bad_value": ("数值无效", "holds a value that is not valid"),
    "complete_blocked": (
        "还有 {n} 处需要改正，已定位到第一处",
        "{n} problem(s) to fix; the first one is selected",
    ),
    "required_mark_tip": ("必填", "Required"),
    # Close confirmation
    "confirm_close_title": ("未保存的更改", "Unsaved changes"),
    "confirm_close_text": (
        "这条记录有未保存的更改。要保存为草稿吗？",
        "This record has unsaved changes. Save them as a draft?",
    ),
    "discard": ("放弃", "Discard"),
    "cancel": ("取消", "Cancel"),
    # Duplicate guard
    "dup_exact": (
        "该{label}已登记：{title}（网格 {grid}）",
        "This {label} is already registered: {title} (grid {grid})",
    ),
    "dup_open_existing": ("打开已有记录", "Open existing record"),
    "dup_create_anyway": ("仍要新建", "Create anyway"),
    "dup_ignore": ("忽略", "Ignore"),
    "dup_fuzzy_head": ("可能是同一人：", "Possibly the same person:"),
    "dup_fuzzy_item": ("{title}（{reason}）", "{title} ({reason})"),
    "dup_same": ("是同一人，打开", "Same person, open"),
    "dup_different": ("不是同一人", "Not the same"),
    "dup_decide_first": (
        "完成前请先确认：是否为同一人？",
        "Before completing, please decide: is this the same person?",
    ),
    "no_grid": ("未分网格", "no grid"),
    # History
    "history_when": ("时间", "When"),
    "history_who": ("人员", "Who"),
    "history_field": ("字段", "Field"),
    "history_old": ("原值", "Old"),
    "history_new": ("新值", "New"),
    "history_none": ("尚无历史（记录未保存）", "No history yet (the record is not saved)"),
    "history_created": ("新建", "created"),
    "history_deleted": ("删除", "deleted"),
    "status_field": ("状态", "Status"),
    "history_revert_tip": (
        "双击或回车：把这个字段恢复为原值（保存后生效）",
        "Double-click or Enter: put this field back to the old value (saved with the record)",
    ),
    "history_reverted": (
        "已把“{field}”恢复为原值，保存后生效",
        "{field} is back to its earlier value; save to keep it",
    ),
    # Voiding (作废) a record: it leaves the lists, stays in history, syncs as a delete
    "void": ("作废…", "Void…"),
    "void_tip": (
        "记录错了或重复了：作废后不再出现在列表中，历史保留",
        "A wrong or duplicate record: it leaves the lists; its history stays",
    ),
    "void_title": ("作废记录", "Void the record"),
    "void_prompt": ("为什么作废“{title}”？", "Why void “{title}”?"),
    "void_need_reason": ("请选择作废原因。", "Choose why the record is voided."),
    "void_reason": ("作废原因", "Voided because"),
    "void.duplicate": ("重复登记", "Registered twice"),
    "void.mistake": ("录入有误（应重新录入）", "Entered by mistake"),
    "void.not_found": ("查无此人/此房", "Does not exist"),
    "void.test": ("测试数据", "Test data"),
    "void.other": ("其他", "Other"),
    # Field widgets
    "picker_placeholder": ("输入代码、名称或拼音首字母", "Type a code, a name or pinyin initials"),
    "ref_placeholder": ("输入名称、地址或编号搜索", "Type a name, address or number to search"),
    "ref_search": ("搜索", "Search"),
    "ref_create": ("新建", "Create new"),
    "ref_missing": ("（记录不存在）", "(record not found)"),
    "create_title": ("新建{form}", "New {form}"),
    "date_placeholder": ("如 1985-06-15", "e.g. 1985-06-15"),
    "date_calendar": ("从日历选择", "Pick from a calendar"),
    "lon": ("经度", "Longitude"),
    "lat": ("纬度", "Latitude"),
    "coords_paste": ("粘贴坐标，如 116.39, 39.90", "Paste a point, e.g. 116.39, 39.90"),
    "coords_datum_tip": (
        "粘贴的坐标来自哪里（自动换算为 WGS84）",
        "Where the pasted point comes from (converted to WGS84)",
    ),
    "datum_wgs84": ("GPS / WGS84", "GPS / WGS84"),
    "datum_gcj02": ("高德/腾讯", "Amap/Tencent (GCJ-02)"),
    "datum_bd09": ("百度", "Baidu (BD-09)"),
    "photo_choose": ("选择照片…", "Choose photo…"),
    "photo_filter": (
        "图片 (*.jpg *.jpeg *.png *.bmp *.heic)",
        "Images (*.jpg *.jpeg *.png *.bmp *.heic)",
    ),
    "unknown_code": ("{code}（不在代码表中）", "{code} (not in the code table)"),
    # App-wide
    "store_unusable": (
        "数据文件无法打开：可能正被其他程序（如定时同步）使用，或已损坏。\n"
        "请关闭其他正在使用该数据目录的程序后重试；仍无法打开时，请联系管理员从备份恢复。",
        "The data file cannot be opened: another program (such as the scheduled sync) may be "
        "using it, or it is damaged.\nClose other programs using the data dir and retry; if it "
        "still fails, ask your administrator to restore it from a backup.",
    ),
    "opening_store": (
        "正在打开并整理本机数据，请稍候…\n（升级后的第一次打开会久一些，只需一次）",
        "Opening and tidying the data on this computer, please wait…\n"
        "(the first open after an update takes longer, once)",
    ),
    "touch_mode": ("触屏模式", "Touch mode"),
    "language": ("语言", "Language"),
    "lang_zh": ("中文", "Chinese"),
    "lang_en": ("English", "English"),
}


def tr(key: str, lang: str = "zh", **params: Any) -> str:
    """The UI string ``key`` in ``lang``, formatted with ``params``; the key itself if unknown."""
    pair = STRINGS.get(key)
    if pair is None:
        return key
    text = pick(lang, *pair)
    return text.format(**params) if params else text


def without_mnemonic(text: str) -> str:
    """A menu text as a tooltip or message shows it: "新建记录(&N)" -> "新建记录"."""
    return re.sub(r"\(&(\w)\)", "", text).replace("&&", "\0").replace("&", "").replace("\0", "&")


def register(strings: Mapping[str, tuple[str, str]]) -> None:
    """Add (or override) UI strings from another module, e.g. the main window's."""
    STRINGS.update(strings)


class Language(QObject):
    """Holds the current UI language; ``changed(lang)`` fires when it is switched at runtime."""

    changed = Signal(str)

    def __init__(self, lang: str = "zh", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lang = lang_of(lang)

    @property
    def lang(self) -> str:
        return self._lang

    def set_lang(self, lang: str) -> None:
        """Switch the language; widgets listening to ``changed`` retranslate themselves."""
        lang = lang_of(lang)
        install_qt_translations(lang)
        if lang != self._lang:
            self._lang = lang
            self.changed.emit(lang)

    def tr(self, key: str, **params: Any) -> str:
        return tr(key, self._lang, **params)


_qt_translators: list[QTranslator] = []


def install_qt_translations(lang: str) -> bool:
    """Qt's own words (OK, Cancel, Show Details…, the file dialog) in ``lang``.

    They come from the ``qtbase_*.qm`` catalogs shipped in PySide6's translations directory;
    English needs none. Returns whether a catalog is installed.
    """
    app = QCoreApplication.instance()
    if app is None:
        return False
    for old in _qt_translators:
        app.removeTranslator(old)
    _qt_translators.clear()
    if lang_of(lang) != "zh":
        return False
    translator = QTranslator(app)
    folder = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    if not translator.load("qtbase_zh_CN", folder):
        return False
    app.installTranslator(translator)
    _qt_translators.append(translator)
    return True


_language: Language | None = None


def language() -> Language:
    """The app-wide language holder (created on first use)."""
    global _language
    if _language is None:
        _language = Language()
    return _language
