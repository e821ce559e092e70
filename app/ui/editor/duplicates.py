"""The editor's part that asks the duplicate guard and records the worker's answers."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtWidgets import QPushButton

from app.core import dedup
from app.core.dedup import Candidate, DuplicateDecision
from app.core.forms import Form
from app.core.records import is_empty
from app.core.store import browse
from app.ui.i18n import tr

__all__ = ["DuplicateGuard"]


class DuplicateGuard:
    """The duplicate guard of a ``RecordEditor``: its answer, shown in the ``DuplicateBanner``,
    and the worker's decisions (recorded in the store, or kept until a new record is saved)."""

    _candidates: list[Candidate]
    _decided: dict[str, str]
    _pending_decisions: list[tuple[str, str]]

    def duplicate_candidates(self) -> list[Candidate]:
        """The last duplicate-guard result (exact matches first)."""
        return list(self._candidates)

    def banner_button(self, action: str, other_id: str) -> QPushButton:
        """A duplicate-banner button: action 'open', 'different' or 'same' for a candidate."""
        return self.banner.button(action, other_id)

    def run_duplicate_check(self) -> list[Candidate]:
        """Ask the duplicate guard about the current values and update the banner."""
        self._dedup_timer.stop()
        self._candidates = dedup.check(
            self.store, self.form.id, self.values(), exclude_id=self.record_id
        )
        self._render_banner()
        return list(self._candidates)

    def decide_duplicate(self, other_id: str, decision: DuplicateDecision | str) -> None:
        """Record the worker's answer about a candidate ('same', 'different', 'open_existing')."""
        self._decided[other_id] = decision
        if self.record_id is not None:
            self.store.decide_duplicate(self.record_id, other_id, decision, self.author)
        elif decision in (DuplicateDecision.SAME, DuplicateDecision.OPEN_EXISTING):
            # The draft may never be saved: keep the audit trail under the id it would get.
            self.store.decide_duplicate(self.slot, other_id, decision, self.author)
        else:
            self._pending_decisions.append((other_id, decision))
        self._render_banner()

    def open_existing(
        self, other_id: str, decision: DuplicateDecision | str = DuplicateDecision.OPEN_EXISTING
    ) -> None:
        """Keep what was typed (autosave) and ask the host to open ``other_id``."""
        self.decide_duplicate(other_id, decision)
        self.autosave_now()
        self.openRecordRequested.emit(other_id)

    def _undecided(self, candidates: Iterable[Candidate]) -> list[Candidate]:
        return [c for c in candidates if c.record_id not in self._decided]

    def _render_banner(self) -> None:
        self.banner.show_candidates(
            self._undecided(self._candidates),
            self.lang,
            is_new=self.record_id is None,
            key_label=self._key_label,
            grid_of=self._grid_of,
        )

    def _banner_clicked(self, action: str, other_id: str) -> None:
        if action == "open":
            self.open_existing(other_id, "open_existing")
        elif action == "same":
            self.open_existing(other_id, "same")
        else:
            self.decide_duplicate(other_id, "different")

    def _key_label(self) -> str:
        """The label of the natural key that is filled (e.g. 证件号码, 统一社会信用代码)."""
        data = self._data()
        for key in self.form.natural_keys:
            if all(not is_empty(data.get(f)) for f in key):
                return self.form.fields[key[-1]].label.get(self.lang)
        return (
            self.form.fields[self.form.natural_keys[0][-1]].label.get(self.lang)
            if self.form.natural_keys
            else ""
        )

    def _grid_of(self, cand: Candidate) -> str:
        """The candidate's grid by its name (its code only when this device has no name)."""
        record = self.store.get(cand.record_id)
        code = record.grid if record is not None else None
        if not code:
            return tr("no_grid", self.lang)
        return browse.grid_names(self.store).get(code, code)


def dedup_fields(form: Form) -> set[str]:
    """Fields whose change can change the duplicate guard's answer (from the form's roles)."""
    fields = {f for key in form.natural_keys for f in key} | set(form.roles.name)
    fields |= {f for f in (form.roles.birth_date, form.roles.house) if f}
    return fields
