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
    _decided: dict[tuple[str, bool], str]  # (other id, answered as an exact match) -> decision
    _pending_decisions: list[tuple[str, str]]
    _dedup_asked: bool  # the guard has been asked (the banner shows its answer)
    _dedup_source: str | None  # the guard's field typed last: the banner's buttons follow it

    def duplicate_candidates(self) -> list[Candidate]:
        """The last duplicate-guard result (exact matches first)."""
        return list(self._candidates)

    def banner_button(self, action: str, other_id: str) -> QPushButton:
        """A duplicate-banner button: action 'open', 'different' or 'same' for a candidate."""
        return self.banner.button(action, other_id)

    def run_duplicate_check(self) -> list[Candidate]:
        """Ask the duplicate guard about the current values and update the banner."""
        self._dedup_timer.stop()
        self._dedup_asked = True
        self._candidates = dedup.check(
            self.store, self.form.id, self.values(), exclude_id=self.record_id
        )
        self._render_banner()
        return list(self._candidates)

    def recheck_duplicates(self) -> None:
        """Records changed elsewhere (saved in another tab, voided, a sync, an import): ask
        again, so the banner names the records registered now. Only an editor that has asked
        already (something it holds was typed): one just opened shows no banner it did not.
        The answers are read again too: a sync may bring a supervisor's "different"."""
        if self._dedup_asked and not self._closed and not self._dedup_timer.isActive():
            self._recall_decisions()
            self.run_duplicate_check()

    def decide_duplicate(self, other_id: str, decision: DuplicateDecision | str) -> None:
        """Record the worker's answer about a candidate ('same', 'different', 'open_existing')."""
        exact = any(c.exact for c in self._candidates if c.record_id == other_id)
        self._decided[(other_id, exact)] = decision
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

    def _recall_decisions(self) -> None:
        """Take in the answers given before about this record's pairs, in any editor of
        either record (``dedup_decisions``), the later one winning. A "different" answers the
        guess again, not a certain match: the table does not say which one it answered, and a
        shared ID number must still be seen."""
        if self.record_id is None:
            return
        for other_id, decision in self.store.pair_decisions(self.record_id):
            if decision == DuplicateDecision.DIFFERENT:
                self._decided[(other_id, False)] = decision
            else:
                self._decided.pop((other_id, False), None)

    def _undecided(self, candidates: Iterable[Candidate]) -> list[Candidate]:
        """The candidates not answered yet. An answer to a guess (same name and birth date)
        does not answer the certain match the same record's ID number makes later; an answer
        to the certain match answers every guess about that record."""
        decided = self._decided
        return [
            c
            for c in candidates
            if (c.record_id, True) not in decided and (c.record_id, c.exact) not in decided
        ]

    def _render_banner(self) -> None:
        self.banner.show_candidates(
            self._undecided(self._candidates),
            self.lang,
            is_new=self.record_id is None,
            key_label=self._key_label,
            grid_of=self._grid_of,
        )
        source = self._dedup_source
        if source is not None and self.banner.isVisibleTo(self) and self.body.is_built(source):
            widget = self.body.widget(source)
            self.banner.follow(widget, widget.focus_target())

    def _banner_clicked(self, action: str, other_id: str) -> None:
        live = self._live_id(other_id)
        if live != other_id:  # voided or merged since the banner named it: ask again
            self.run_duplicate_check()
            if live is None:
                return
            other_id = live
        if action == "open":
            self.open_existing(other_id, "open_existing")
        elif action == "same":
            self.open_existing(other_id, "same")
        else:
            self.decide_duplicate(other_id, "different")

    def _live_id(self, other_id: str) -> str | None:
        """The id a candidate is registered under now: its own, the one a sync merged it
        into (another process may have synced since the banner was shown), or None when it
        is voided or gone."""
        record = self.store.get(other_id)
        if record is None:
            merged = self.store.merged_into(other_id)
            record = self.store.get(merged) if merged is not None else None
        return record.id if record is not None and not record.deleted else None

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
