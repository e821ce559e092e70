"""The duplicate guard at entry: is this person, house or unit already registered?

Exact: a natural key the form declares (ID type + number, credit code, house code), normalised
for case, full-width characters and spaces. Fuzzy, for people: the same name or the same
pinyin with the same birth date (张三/章三 born the same day), or a similar name in the same
house. Both run on indexed columns, so they are cheap enough for every keystroke.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rapidfuzz import fuzz

from app.core.messages import pick
from app.core.search import name_terms
from app.core.store import Store

REASONS: dict[str, tuple[str, str]] = {
    "same_key": ("证件/编码完全相同，已登记", "same identifying number: already registered"),
    "same_name_birth": ("姓名和出生日期相同", "same name and birth date"),
    "same_pinyin_birth": ("姓名读音相同且出生日期相同", "same name pronunciation and birth date"),
    "similar_name_birth": ("出生日期相同，姓名相近", "same birth date, similar name"),
    "similar_name_house": ("同一房屋内姓名相近", "similar name in the same house"),
}


class DuplicateDecision(StrEnum):
    """A worker's answer about a possible duplicate; stored as the plain string
    (``dedup_decisions.decision``)."""

    SAME = "same"  # the same person or place: keep one record
    DIFFERENT = "different"  # not a duplicate: stop offering it
    OPEN_EXISTING = "open_existing"  # opened the existing record instead of entering again


SIMILAR = 75.0  # rapidfuzz ratio (0-100) above which two names count as similar


@dataclass(frozen=True)
class Candidate:
    """A record that may be the one being entered; ``score`` in 0..1, 1 for an exact key."""

    record_id: str
    title: str
    score: float
    reason: str

    @property
    def exact(self) -> bool:
        """True for a natural-key match (the record certainly exists)."""
        return self.reason == "same_key"

    def reason_text(self, lang: str = "zh") -> str:
        """Why this record was offered, in the UI language."""
        return pick(lang, *REASONS[self.reason])


def exact_matches(
    store: Store, form_id: str, data: Mapping[str, Any], exclude_id: str | None = None
) -> list[Candidate]:
    """Live records sharing a natural key with ``data``."""
    out = []
    for record_id in store.find_by_key(form_id, data):
        if record_id == exclude_id:
            continue
        record = store.get(record_id)
        if record is not None and not record.deleted:
            out.append(Candidate(record_id, record.title, 1.0, "same_key"))
    return out


def fuzzy_candidates(
    store: Store,
    form_id: str,
    data: Mapping[str, Any],
    exclude_id: str | None = None,
    limit: int = 5,
) -> list[Candidate]:
    """People who may be the same: by name/pinyin + birth date, or similar name in the same house."""
    roles = store.formset.form(form_id).roles
    name = next((str(data[f]) for f in roles.name if data.get(f)), "")
    if not name:
        return []
    pinyin = next((t for t in name_terms(name) if t.isascii()), "")
    found: dict[str, Candidate] = {}
    birth = data.get(roles.birth_date) if roles.birth_date else None
    if birth:
        for rid, other, other_pinyin, _, _ in store.people_by_birth(form_id, str(birth)):
            _offer(found, rid, other, *_birth_match(name, pinyin, other, other_pinyin))
    house = data.get(roles.house) if roles.house else None
    if house:
        for rid, other, _, _, _ in store.people_in_house(form_id, str(house)):
            ratio = fuzz.ratio(name, other)
            if ratio >= SIMILAR:
                _offer(found, rid, other, 0.6 + 0.3 * ratio / 100, "similar_name_house")
    found.pop(exclude_id or "", None)
    return sorted(found.values(), key=lambda c: -c.score)[:limit]


def _birth_match(name: str, pinyin: str, other: str, other_pinyin: str) -> tuple[float, str | None]:
    if name == other:
        return 0.95, "same_name_birth"
    if pinyin and pinyin == other_pinyin:
        return 0.85, "same_pinyin_birth"
    ratio = fuzz.ratio(name, other)
    if ratio >= SIMILAR:
        return 0.5 + 0.3 * ratio / 100, "similar_name_birth"
    return 0.0, None


def _offer(
    found: dict[str, Candidate], rid: str, title: str, score: float, reason: str | None
) -> None:
    if reason is not None and (rid not in found or found[rid].score < score):
        found[rid] = Candidate(rid, title, round(score, 3), reason)


def check(
    store: Store, form_id: str, data: Mapping[str, Any], exclude_id: str | None = None
) -> list[Candidate]:
    """Exact matches first, then fuzzy ones not already listed."""
    exact = exact_matches(store, form_id, data, exclude_id)
    seen = {c.record_id for c in exact}
    fuzzy = [
        c for c in fuzzy_candidates(store, form_id, data, exclude_id) if c.record_id not in seen
    ]
    return exact + fuzzy
