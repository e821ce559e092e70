"""Turning typed or imported values into stored values, and checking a record against its form.

Two steps, on purpose: ``coerce`` never refuses a value (what a person typed is kept even when
it is wrong, so a draft always saves), and ``validate`` lists what must be fixed before the
record can be marked complete. Everything is driven by field *types* and the checks the form
file declares; no field name appears here.

Modules: ``coerce`` (typed or imported value -> stored value, defaults, fields derived from an
ID number), ``validate`` (``Issue``, what blocks "complete"), ``location`` (the warning for
coordinates outside the record's grid boundary) and ``batch`` (both, compiled once per form
for the rows of an import).
"""

from __future__ import annotations

from app.core.rules.batch import Batch, FormPlan
from app.core.rules.coerce import (
    apply_defaults,
    coerce,
    coerce_record,
    coordinates_ok,
    derive_from_id,
    id_derivations,
    parse_date,
)
from app.core.rules.location import location_warnings
from app.core.rules.validate import (
    DEFAULT_TEXT_MAX,
    Issue,
    check_value,
    is_blank,
    is_required,
    is_visible,
    validate,
)

__all__ = [
    "DEFAULT_TEXT_MAX",
    "Batch",
    "FormPlan",
    "Issue",
    "apply_defaults",
    "check_value",
    "is_blank",
    "coerce",
    "coerce_record",
    "coordinates_ok",
    "derive_from_id",
    "id_derivations",
    "is_required",
    "is_visible",
    "location_warnings",
    "parse_date",
    "validate",
]
