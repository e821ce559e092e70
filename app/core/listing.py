"""What a list row shows so that records can be told apart (no Qt here).

Why: a list of "浙江省杭州市西湖区清溪街道…" cut at the column's edge, or of five 张伟, says
nothing. A house or address shows the end of its address that differs between neighbours
(estate, building, unit, room); a person shows where they live, age, gender and a masked tail
of their ID number. Everything is found through the form's roles.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from app.core.display import display_value
from app.core.forms import Form, FormSet
from app.core.masking import mask_value
from app.core.records import is_empty
from app.core.search import address_words

_BUILDING = re.compile(r"^(栋|幢|座|号楼|楼)$")
_ADMIN_END = (
    "省",
    "市",
    "区",
    "县",
    "镇",
    "乡",
    "街道",
    "社区",
    "村",
    "路",
    "街",
    "巷",
    "弄",
    "号",
)
ID_TAIL = 6  # characters of a masked ID number a list shows ("****12")


def address_end(address: str) -> str:
    """The end of an address that tells neighbours apart: from the estate or building on
    ("…秋实路18号听涛雅苑1栋1单元201室" -> "听涛雅苑1栋1单元201室"); an address without a
    building keeps its last street words ("浙江省杭州市西湖区文三路1号" -> "文三路1号")."""
    words = address_words(address)
    if not words:
        return address
    start = next(
        (
            i - 1
            for i in range(1, len(words))
            if _BUILDING.match(words[i]) and words[i - 1].isdigit()
        ),
        None,
    )
    if start is None:
        street = [i for i, w in enumerate(words) if w.endswith(("路", "街", "巷", "弄", "道"))]
        start = street[-1] if street else max(0, len(words) - 3)
    elif start > 0 and _is_estate(words[start - 1]):
        start -= 1  # the estate's name before its building number
    return "".join(words[start:]) if start > 0 else address


def _is_estate(word: str) -> bool:
    """An estate's name (听涛雅苑, 晓岚新村), not a region, street or number."""
    return word.endswith("新村") or not (word.isdigit() or word.endswith(_ADMIN_END))


def shows_address(form: Form) -> bool:
    """Whether the form's records are named by their address (houses, addresses)."""
    return any(form.title_template == "{" + f + "}" for f in form.roles.address)


def list_title(form: Form, title: str) -> str:
    """A record's name as a list shows it: an address title by its distinguishing end."""
    return address_end(title) if title and shows_address(form) else title


def person_detail(
    formset: FormSet,
    form: Form,
    data: Mapping[str, Any],
    lang: str = "zh",
    today: dt.date | None = None,
) -> str:
    """ "1栋1单元201室 · 32岁 · 女 · ****12" for a person; "" for other records."""
    roles = form.roles
    if not (roles.birth_date or roles.gender):
        return ""
    parts = []
    address = next((data[f] for f in roles.address if not is_empty(data.get(f))), None)
    if address:
        parts.append(address_end(str(address)))
    age = _age(data.get(roles.birth_date or ""), today or dt.date.today())
    if age is not None:
        parts.append(f"{age}岁" if lang == "zh" else f"{age} y")
    if roles.gender and not is_empty(data.get(roles.gender)):
        fld = form.fields[roles.gender]
        parts.append(display_value(formset, fld, data[roles.gender], lang))
    ident = next((f for f in roles.id if not is_empty(data.get(f))), None)
    if ident:
        parts.append(mask_value(form.fields[ident], data[ident])[-ID_TAIL:])
    return " · ".join(p for p in parts if p)


def _age(birth: object, today: dt.date) -> int | None:
    try:
        born = dt.date.fromisoformat(str(birth))
    except ValueError:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
