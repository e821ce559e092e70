"""The editor's part that keeps what was typed in the store's autosave table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

from PySide6.QtWidgets import QWidget

from app.core.records import is_empty
from app.core.store import Store

AUTOSAVE_BASE = "_autosave_base"  # autosave key: the stored state the typing started from

__all__ = ["AUTOSAVE_BASE", "AutosaveSlot"]


class AutosaveSlot:
    """Autosave for a ``RecordEditor``: nothing typed is lost to a crash (``RecordEditor.restore``
    reopens a slot through ``resume``)."""

    _autosaved: bool
    slot: str

    def autosave_now(self) -> None:
        """Write the typed values to the autosave slot (or clear it when nothing is unsaved)."""
        self._autosave_timer.stop()
        if self._closed:
            return
        if self.is_dirty():
            data = self.raw_values()
            if self._stored is not None:  # what the typing started from, for ``restore``
                data[AUTOSAVE_BASE] = self._stored
            self.store.autosave_put(self.slot, self.form.id, self.record_id, data)
            self._autosaved = True
        elif self._autosaved:
            self.store.autosave_clear(self.slot)
            self._autosaved = False

    def resume(self, slot: str, data: Mapping[str, Any]) -> None:
        """Take up an autosave slot: show what was typed there, over the stored state it
        started from, and rebase it onto what was saved since (``restore``)."""
        self.slot = slot
        self._autosaved = True
        base = data.get(AUTOSAVE_BASE)
        if isinstance(base, dict) and self._stored is not None:
            self._start_from(base)  # the record as it was when the typing began
        self._loading = True
        self._load({fid: data.get(fid) for fid in self.form.fields}, clear=True)
        self._loading = False
        self._touched.update(
            k for k, v in data.items() if not is_empty(v) and k in self.form.fields
        )
        self.check_stored()  # saved since (a sync, another tab): rebase the typing onto it
        self._refresh_messages()
        if any(not is_empty(data.get(f)) for f in self._dedup_fields):
            self.run_duplicate_check()
        self._update_header()

    @classmethod
    def restore(
        cls,
        store: Store,
        slot_row: Sequence[Any] | Mapping[str, Any],
        *,
        lang: str = "zh",
        author: str = "",
        parent: QWidget | None = None,
    ) -> Self:
        """Reopen an autosaved editor (a row of ``store.autosaves()``) with what was typed."""
        if isinstance(slot_row, Mapping):
            slot, form_id = slot_row["slot"], slot_row["form"]
            record_id, data = slot_row.get("record_id"), slot_row["data"]
        else:
            slot, form_id, record_id, data = slot_row[0], slot_row[1], slot_row[2], slot_row[3]
        if record_id and store.get(record_id) is None:
            # merged by a sync since (its new id), else gone: the typing becomes a new record
            record_id = store.merged_into(record_id)
        editor = cls(store, form_id, record_id, lang=lang, author=author, parent=parent)
        editor.resume(slot, data)
        return editor
