"""What a duplicate review item's reason says, in either language: one text for the app's
review view and the console's review page (the platform stores only the code)."""

from __future__ import annotations

from app.core.messages import pick

REASONS: dict[str, tuple[str, str]] = {
    "same_name_birth": ("姓名和出生日期相同", "same name and birth date"),
    "same_pinyin_birth": ("拼音和出生日期相同", "same pinyin and birth date"),
    "transfer": (
        "迁入申请：证件号码已在其他网格登记（相同：迁入并合并；不同：驳回）",
        "transfer claim: the ID number is registered in another grid "
        "(same: move in and merge; different: reject)",
    ),
}


def reason_text(reason: str, lang: str) -> str:
    """The reason in ``lang``; an unknown code as it is (a newer platform's reason)."""
    return pick(lang, *REASONS.get(reason, (reason, reason)))
