"""The editor's save path: draft and complete, never over a newer stored version, and never a
value the platform would refuse (``textcheck``)."""

from __future__ import annotations

from typing import Any

from app.core import textcheck
from app.core.display import field_label
from app.core.records import Record
from app.ui.editor.merge import record_state
from app.ui.i18n import tr

__all__ = ["Saving"]


class Saving:
    """The editor's part that saves. A part of ``RecordEditor`` (it reads and writes the
    editor's state and signals); kept apart so the save rules are read in one place."""

    _conflicts: dict[str, dict[str, Any]]
    _stored: dict[str, Any] | None

    def save_draft(self) -> str | None:
        """Save as a draft, whatever the errors; returns the record id.

        None only while fields changed both here and elsewhere wait for the person's choice
        (the values stay in the form and in the autosave)."""
        record = self._save("draft")
        return record.id if record is not None else None

    def complete(self) -> bool:
        """Validate; when clean (and duplicates answered) save as complete. False otherwise."""
        self._commit_all()
        self.check_stored()  # validate what will be saved: the values from elsewhere too
        self._show_all = True
        issues = self._refresh_messages()
        if issues:
            first = min((i.field for i in issues), key=self.body.position)
            self._focus_field(first)
            self._status(tr("complete_blocked", self.lang, n=len(issues)), error=True)
            return False
        if self.record_id is None and self._undecided(self.run_duplicate_check()):
            self.banner.show_decide_first()
            self.banner.focus_first_button()
            self._status(tr("dup_decide_first", self.lang), error=True)
            return False
        record = self._save("complete")
        if record is None:
            return False
        self._status(tr("completed", self.lang))
        self.completed.emit(record.id)
        return True

    def _save(self, status: str) -> Record | None:
        """Save the values; never blindly over a newer stored version: in one transaction the
        stored record is read again and rebased onto first (``check_stored``). None when
        fields changed on both sides wait for the person's choice."""
        self._commit_all()
        if self._unstorable():
            return None
        is_new = self.record_id is None
        with self.store.transaction():
            self.check_stored()
            if self._conflicts:
                self._status(tr("elsewhere_choose_first", self.lang), error=True)
                self.conflict_panel.focus_first()
                return None
            data = self.values()
            record = self.store.save(
                self.form.id,
                data,
                record_id=self.record_id or self.slot,
                status=status,
                author=self.author,
            )
        self._record, self.record_id = record, record.id
        self._stored = record_state(record)
        if is_new:
            for other, decision in self._pending_decisions:
                self.store.decide_duplicate(record.id, other, decision, self.author)
            self._pending_decisions.clear()
        self._autosave_timer.stop()
        self.store.autosave_clear(self.slot)
        self._autosaved = False
        self._baseline = data
        self._update_header()
        self._status(tr("saved_draft", self.lang))
        if self._history_shown():
            self.refresh_history()
        self.saved.emit(record.id)
        return record

    def _unstorable(self) -> bool:
        """A value the platform would refuse (over 10 000 characters, a NUL) is said, with its
        field, and nothing is saved: the typing stays in the form and its autosave."""
        found = textcheck.first_unstorable(self.values())
        if found is None:
            return False
        field_id, code = found
        label = field_label(self.form.fields.get(field_id), field_id, self.lang)
        why = tr(f"unstorable_{code}", self.lang, limit=textcheck.MAX_VALUE_CHARS)
        self._status(tr("unstorable", self.lang, field=label, why=why), error=True)
        self._focus_field(field_id)
        return True
