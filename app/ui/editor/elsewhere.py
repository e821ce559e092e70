"""The editor's part that takes in changes saved elsewhere while it is open (``merge``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.core import rules
from app.core.records import DELETED_KEY, Record, clean
from app.core.store import STATUS_FIELD
from app.ui.editor.merge import (
    MINE,
    StoredMerge,
    local_changes,
    merge_stored,
    record_state,
    same_state,
)
from app.ui.i18n import tr

__all__ = ["ChangedElsewhere"]


class ChangedElsewhere:
    """The editor's part that takes in changes saved elsewhere while it is open (``merge``).

    A part of ``RecordEditor`` (it reads and writes the editor's state); kept apart so the
    rule is read in one place."""

    _conflicts: dict[str, dict[str, Any]]
    _stored: dict[str, Any] | None

    def check_stored(self) -> bool:
        """Learn of changes to this record saved elsewhere (household view, sync, another tab,
        a conflict resolved, another process) and take them in (``merge``).

        Cheap when nothing changed (one read). True when a newer stored state came in."""
        if self.record_id is None or self._closed or not hasattr(self, "_stored"):
            return False
        record = self.store.get(self.record_id) or self._merged_record()
        if record is None:
            return False
        theirs = record_state(record)
        if self._stored is not None and same_state(theirs, self._stored):
            return False
        base = self._stored if self._stored is not None else theirs
        mine = local_changes(self._baseline, self.values())
        self._take_stored(record, theirs, merge_stored(base, mine, theirs), mine)
        return True

    def _merged_record(self) -> Record | None:
        """The record is gone because a sync merged it into one the platform holds (its id
        changed): follow it, so the typing is saved there and not under the old id as a
        second record. None when it was not merged."""
        new_id = self.store.merged_into(self.record_id)
        record = self.store.get(new_id) if new_id is not None else None
        if record is None or record.form != self.form.id:
            return None
        self.record_id = record.id
        return record

    def conflicts(self) -> dict[str, dict[str, Any]]:
        """Fields changed here and elsewhere, waiting for a choice: field -> {base, mine,
        theirs}."""
        return {k: dict(v) for k, v in self._conflicts.items()}

    def choose_conflict(self, field_id: str, side: str) -> None:
        """Keep the person's value (``mine``) or take the one from elsewhere (``theirs``)."""
        entry = self._conflicts.pop(field_id, None)
        if entry is None:
            return
        if side != MINE and field_id == DELETED_KEY:  # accept the deletion: nothing to keep
            self._conflicts.clear()
            self._load(self._baseline, clear=True)
            self._closing = True
            self.close()
            return
        if side != MINE and field_id in self.form.fields:
            self.body.widget(field_id).set_value(entry["theirs"])
        self._render_conflicts()
        self._update_header()

    def _start_from(self, base: dict[str, Any]) -> None:
        """Show an older stored state as the one the editor started from (crash restore)."""
        if same_state(base, self._stored or {}):
            return
        data = {k: v for k, v in base.items() if k not in (STATUS_FIELD, DELETED_KEY)}
        self._loading = True
        self._load({fid: data.get(fid) for fid in self.form.fields}, clear=True)
        self._loading = False
        self._extra = {k: v for k, v in data.items() if k not in self.form.fields}
        self._baseline = self.values()
        self._stored = base

    def _take_stored(
        self, record: Record, theirs: dict[str, Any], merged: StoredMerge, mine: dict[str, Any]
    ) -> None:
        """Show the fields that came in, keep the person's own, list the conflicts."""
        shown = {k: v for k, v in merged.incoming.items() if k in self.form.fields}
        self._show_values(shown)
        self._extra = {k: v for k, v in record.data.items() if k not in self.form.fields}
        baseline = dict(self.values())
        for name in mine:
            baseline[name] = record.data.get(name)
        self._baseline = clean(baseline)
        self._record, self._stored = record, theirs
        self._conflicts.update(merged.conflicts)
        self._render_conflicts()
        self._update_header()
        if merged.deleted and not merged.conflicts:
            self._status(tr("elsewhere_deleted", self.lang), error=True)
        elif merged.incoming or merged.conflicts:
            self._status(tr("elsewhere_merged", self.lang, n=len(merged.incoming)))
        if self._history_shown():
            self.refresh_history()

    def _show_values(self, values: Mapping[str, Any]) -> None:
        """Put stored values into fields without counting them as typed."""
        if not values:
            return
        was_loading, self._loading = self._loading, True
        for fid, value in values.items():
            self._put(fid, value)
        self._loading = was_loading
        for fid in values:
            self._values[fid] = rules.coerce(self.form.fields[fid], self._raw(fid), self.formset)
        self._apply_conditions(self.form.fields)
        self._refresh_messages()

    def _render_conflicts(self) -> None:
        self.conflict_panel.show_conflicts(
            self._conflicts, self._field_label, self.format_value, self.lang
        )
