"""The record editor (``RecordEditor``) and the widgets it is built from.

``record_editor`` builds, types and saves; its behaviour is read per concern in ``autosave``,
``checks``, ``duplicates``, ``elsewhere`` (with ``merge``) and ``history_panel``; the widgets
``FormBody``, ``DuplicateBanner``, ``HistoryPanel`` and ``ConflictPanel`` have
their own modules and public methods.
"""

from app.ui.editor.dialogs import CloseChoice, EditorDialog, ask_close
from app.ui.editor.duplicate_banner import DuplicateBanner
from app.ui.editor.form_body import FormBody
from app.ui.editor.history_panel import HistoryPanel
from app.ui.editor.merge import ConflictPanel
from app.ui.editor.record_editor import AUTOSAVE_BASE, RecordEditor

__all__ = [
    "AUTOSAVE_BASE",
    "CloseChoice",
    "ConflictPanel",
    "DuplicateBanner",
    "EditorDialog",
    "FormBody",
    "HistoryPanel",
    "RecordEditor",
    "ask_close",
]
