"""The editor's part that checks the values and shows each field's messages."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from app.core import rules
from app.core.rules import Issue

Polygon = list[tuple[float, float]]

__all__ = ["FieldChecks"]


class FieldChecks:
    """Validation for a ``RecordEditor``: the form's rules, and the location warning (coordinates
    outside the record's grid), shown under the fields the worker has been to."""

    _polygons: dict[str, Polygon] | None

    def issues(self) -> list[Issue]:
        """Everything that stops the current values from being complete."""
        return rules.validate(self.form, self.values(), self.formset, exists=self._exists)

    def _refresh_messages(self, typing: str | None = None) -> list[Issue]:
        """Validate and show each field's messages where the worker has been (or everywhere
        after Complete); "required" only after Complete. Returns all issues."""
        issues = rules.validate(self.form, self._data(), self.formset, exists=self._exists)
        by_field: dict[str, list[Issue]] = {}
        for issue in issues + self._location_warnings():
            by_field.setdefault(issue.field, []).append(issue)
        built = self.body.built_widgets()
        for fid in self.form.fields:
            widget = built.get(fid)
            shown: list[Issue] = []
            if self.body.is_visible(fid) and (
                self._show_all
                or fid in self._touched
                or (fid == typing and widget is not None and widget.live_check_ready())
            ):
                shown = [i for i in by_field.get(fid, []) if i.code != "required" or self._show_all]
            self._shown[fid] = shown
            if widget is None and not shown:
                continue  # unbuilt and nothing to say: it stays unbuilt
            text = "\n".join(i.message(self.form, self.lang) for i in shown)
            widget = widget or self.body.widget(fid)  # a message to show builds the section
            widget.set_message(text, shown[0].severity if shown else "error")
        return issues

    def _location_warnings(self) -> list[Issue]:
        """Coordinates outside the record's grid polygon (``rules.location_warnings``).

        A boundary is read when the rule asks for it, and only the record's grid's: a record
        without a grid (every new one, checked as its editor opens and closes) reads none, and
        one in a grid reads its own (every grid's, 30 on a worker's device, took ~4.7 ms)."""
        return rules.location_warnings(self.form, self._values, _Boundaries(self._grid_boundary))

    def _grid_boundary(self, code: str) -> Polygon:
        """A grid's boundary ([] when none), read once per editor."""
        if self._polygons is None:
            self._polygons = {}
        if code not in self._polygons:
            self._polygons[code] = self.store.grid_boundary(code)
        return self._polygons[code]

    def _exists(self, form_id: str, record_id: str) -> bool:
        record = self.store.get(record_id)
        return record is not None and not record.deleted and record.form == form_id


class _Boundaries(Mapping[str, Polygon]):
    """grid code -> boundary, for the grids that have one, each read when first asked for."""

    def __init__(self, read: Callable[[str], Polygon]) -> None:
        self._read = read

    def __getitem__(self, code: str) -> Polygon:
        polygon = self._read(code)
        if not polygon:
            raise KeyError(code)
        return polygon

    def __iter__(self) -> Iterator[str]:  # not what the rule does: it asks for one grid
        raise TypeError("grid boundaries are read one grid at a time")

    def __len__(self) -> int:
        raise TypeError("grid boundaries are read one grid at a time")
