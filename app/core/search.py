"""Search terms and queries over the local store (SQLite FTS5).

Why FTS5 with our own terms instead of a trigram index: workers search by pinyin initials
("zs" -> 张三), by the last digits of an ID number or phone, and by fragments of an address.
None of those are substrings of the stored text, so each record gets a bag of terms made
here: the name, the given name, full pinyin and initials (every reading of the surname,
because 单/曾/解 are read differently as surnames), reversed ID and phone digits (a tail
search becomes a prefix search), and the address split where script changes
("幸福路12号" -> "幸福路 12 号"). FTS5 prefix queries over those terms stay in the low
milliseconds on millions of rows.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

TAIL_MARK = "r"  # prefix of reversed-digit terms, so "1234" typed matches ...1234 tails
_SCRIPT_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[0-9]+|[a-zA-Z]+")
_ALNUM = re.compile(r"[0-9A-Za-z]")


_NAME_GAPS = re.compile(r"[\s·•.]")


@lru_cache(maxsize=65536)
def name_terms(name: str) -> tuple[str, ...]:
    """Terms for a person's or unit's name: itself, given name, pinyin and initials."""
    return tuple(dict.fromkeys(name_term_run(name)))


def name_term_run(name: str) -> Iterator[str]:
    """``name_terms``'s terms in order, repeats included, each worked out when asked.

    Why: the platform's index spelling of a name (``sync.server.rows``) reads only the first
    term and the first Latin one; building them all (every reading of the surname, the
    initials, the repeats dropped) was most of a new name's cost in a push (issue 17)."""
    name = unicodedata.normalize("NFKC", name).strip()
    if not name:
        return
    compact = _NAME_GAPS.sub("", name)
    yield compact.lower()
    if compact.isascii():  # a foreign name: its words are the terms
        yield from name.lower().split()
        return
    if len(compact) > 1 and _is_cjk(compact[0]):
        yield compact[1:]
    syllables = [r for c in compact if (r := char_pinyin(c))]
    if syllables:
        surnames = _readings(compact[0]) if _is_cjk(compact[0]) else [syllables[0]]
        rest = syllables[1:]
        spelled = "".join(rest)
        initials: str | None = None
        for first in surnames:
            if full := first + spelled:
                yield full
            if initials is None:
                initials = "".join([s[0] for s in rest])
            yield first[0] + initials
        yield from rest


@lru_cache(maxsize=32768)
def char_pinyin(char: str) -> str:
    """The usual reading of one character; per-character because names rarely need phrase
    context (the surname, which does, gets every reading) and a per-character cache makes
    indexing a million names cheap."""
    if char.isascii():
        return char.lower() if char.isalnum() else ""
    from pypinyin import Style, lazy_pinyin  # ~0.4 s to load: only when a name is indexed

    readings = lazy_pinyin(char, style=Style.NORMAL, errors="ignore")
    return readings[0] if readings else ""


@lru_cache(maxsize=32768)
def _readings(char: str) -> list[str]:
    from pypinyin import Style, pinyin

    readings = pinyin(char, style=Style.NORMAL, heteronym=True)[0]
    return list(dict.fromkeys(readings[:4]))


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff"


def tail_terms(value: str) -> tuple[str, ...]:
    """Reversed alphanumerics of an ID number or phone, plus the value itself for prefixes."""
    if value.isascii() and value.isalnum():  # the usual ID number or phone: nothing to strip
        chars = value.lower()
    else:
        chars = "".join(_ALNUM.findall(unicodedata.normalize("NFKC", value))).lower()
    if not chars:
        return ()
    return (chars, TAIL_MARK + chars[::-1])


@lru_cache(maxsize=65536)  # neighbours share addresses: a pull of 100 000 residents repeats them
def address_terms(address: str) -> tuple[str, ...]:
    """Address pieces split where the script changes, lower-cased."""
    text = unicodedata.normalize("NFKC", address)
    return tuple(dict.fromkeys(m.group(0).lower() for m in _SCRIPT_RUN.finditer(text)))


def record_terms(
    names: Iterable[str], ids: Iterable[str], phones: Iterable[str], addresses: Iterable[str]
) -> str:
    """The space-joined term bag stored in the FTS table for one record."""
    terms: list[str] = []
    for name in names:
        terms.extend(name_terms(name))
    for value in (*ids, *phones):
        terms.extend(tail_terms(value))
    for address in addresses:
        terms.extend(address_terms(address))
    return " ".join(dict.fromkeys(terms))


def fts_query(text: str) -> str | None:
    """Turn what a person typed into an FTS5 MATCH expression (None when nothing to search).

    Every typed piece must match (AND); a piece with digits may be a prefix or a tail
    (an ID number's or phone's last digits).
    """
    clauses = []
    for word in unicodedata.normalize("NFKC", text).split():
        word_l = word.lower()
        pieces = [re.sub(r"[^0-9a-z]", "", word_l)] if word_l.isascii() else address_terms(word)
        for piece in filter(None, pieces):
            if any(c.isdigit() for c in piece) and piece.isascii():
                other = "".join(f' OR "{g}"' for g in other_generation(piece))
                clauses.append(f'("{piece}"* OR "{TAIL_MARK}{piece[::-1]}"*{other})')
            else:
                clauses.append(f'"{piece}"*')
    return " AND ".join(clauses) or None


def other_generation(piece: str) -> tuple[str, ...]:
    """A whole ID number of one generation as the other spells it: 15 digits (area, YYMMDD,
    sequence) as 18 ("19" inserted, check character appended), and 18 digits born in the
    1900s as 15. Why: a person registered under the old card is searched by the new one, or
    the other way round; both are one person (``naturalkeys``). Empty for anything else."""
    if len(piece) == 15 and piece.isdigit():
        from app.core.idnumber import key_form  # stdnum: only when 15 digits are typed

        return (key_form(piece),)
    if len(piece) == 18 and piece[:17].isdigit() and piece[6:8] == "19":
        return (piece[:6] + piece[8:17],)
    return ()


# -- addresses: any run of characters (FTS5 trigram) -------------------------------------------

TRIGRAM = 3  # the trigram tokenizer matches runs of at least this many characters


@lru_cache(maxsize=65536)
def address_initials(address: str) -> str:
    """Pinyin initials of an address, digits and Latin letters kept ("听涛雅苑1栋" -> "ttya1d").

    Indexed by trigram beside the address so typed initials of any address words ("ttya")
    are a substring of it.
    """
    text = unicodedata.normalize("NFKC", address).lower()
    return "".join(
        (char_pinyin(c)[:1] if _is_cjk(c) else c) for c in text if c.isalnum() or _is_cjk(c)
    )


WORD_START_MARK = "§"  # after a word's first two characters: a two-character run as a trigram
_ADDRESS_WORD = re.compile(
    r"[0-9a-z]+|[^0-9a-z\s]*?(?:街道|社区|单元|小区|新村|花园|公寓|大厦|广场|"
    r"[省市区县镇乡村路街巷弄道号栋幢楼室层苑园府院城里湾庄居坊])|[^0-9a-z\s]+"
)


@lru_cache(maxsize=65536)
def address_words(address: str) -> tuple[str, ...]:
    """An address cut into its words: after 省/市/区/街道/社区/路/号/栋/单元/室/苑/园…, and
    where digits start or end ("秋实路18号听涛雅苑1栋" -> 秋实路 18 号 听涛雅苑 1 栋)."""
    text = unicodedata.normalize("NFKC", address).lower()
    return tuple(m.group(0) for m in _ADDRESS_WORD.finditer(text))


def word_starts(address: str) -> str:
    """Each address word's first two characters and a mark: a two-character run typed alone
    ("文澜", "听涛") is looked up as the start of a word, one trigram."""
    return " ".join(w[:2] + WORD_START_MARK for w in address_words(address) if len(w) >= 2)


def address_text(addresses: Iterable[str]) -> tuple[str, str, str] | None:
    """(text, initials, word starts) a record's addresses put in the trigram index; None if
    it has none."""
    return _address_text(tuple(addresses))


@lru_cache(maxsize=65536)  # a household's people share their address: an import repeats it
def _address_text(addresses: tuple[str, ...]) -> tuple[str, str, str] | None:
    parts = [unicodedata.normalize("NFKC", a).strip() for a in addresses]
    parts = [p for p in parts if p]
    if not parts:
        return None
    return (
        " ".join(parts),
        " ".join(address_initials(p) for p in parts),
        " ".join(word_starts(p) for p in parts),
    )


_SYLLABLE_START = re.compile(r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?[aeiouv][aeiouvngr]*")


def initials_readings(word: str) -> list[str]:
    """The initials a typed Latin word may stand for: every letter an initial ("ttya"), or
    initials then the start of the last word's full pinyin ("tt" + "ya" -> "tty")."""
    readings = [word]
    for cut in range(1, len(word) - 1):
        if _SYLLABLE_START.fullmatch(word[cut:]):
            readings.append(word[: cut + 1])
    return list(dict.fromkeys(r for r in readings if len(r) >= TRIGRAM))


@dataclass(frozen=True)
class AddressQuery:
    """An FTS5 MATCH expression for typed address text, and the runs each matching address
    must really hold (``instr`` on the lower-cased address: the expression only asks for
    trigrams that cover a run, which is several times cheaper than the whole phrase)."""

    column: str
    match: str
    runs: tuple[str, ...] = ()
    words: tuple[str, ...] = ()  # every word a matching address holds (address column only)


def address_query(text: str) -> AddressQuery | None:
    """The address search for typed text, None when it is no address run.

    Latin letters mean pinyin initials (the ``initials`` column), anything else a run of the
    address itself. Every whitespace-separated word must occur; words shorter than a trigram
    are left to the other words (or, alone, to ``short_address_run``).
    """
    words = [w.lower() for w in unicodedata.normalize("NFKC", text).split()]
    long = [w for w in words if len(w) >= TRIGRAM]
    if not long:
        return None
    joined = "".join(long)
    if joined.isascii() and any(c.isalpha() for c in joined):
        clauses = ["(" + " OR ".join(_phrase(r) for r in initials_readings(w)) + ")" for w in long]
        return AddressQuery("initials", f"initials : ({' AND '.join(clauses)})")
    cover = [t for w in long for t in covering_trigrams(w)]
    runs = tuple(w for w in long if len(w) > TRIGRAM)
    match = f"address : ({' AND '.join(map(_phrase, cover))})"
    return AddressQuery("address", match, runs, tuple(long))


def covering_trigrams(word: str) -> list[str]:
    """Trigrams that together cover a run without overlapping ("晓岚新村10栋" -> 晓岚新 村10
    栋 ... and the last three): far fewer doclists to read than the run's every trigram."""
    starts = [*range(0, len(word) - TRIGRAM + 1, TRIGRAM), len(word) - TRIGRAM]
    return list(dict.fromkeys(word[i : i + TRIGRAM] for i in starts))


def _phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def short_address_run(text: str) -> str | None:
    """The MATCH expression for a lone two-character run ("文澜", "20"): the start of an
    address word; None otherwise (one character, or Latin letters: too broad)."""
    word = unicodedata.normalize("NFKC", text).strip().lower()
    if len(word) != TRIGRAM - 1 or " " in word:
        return None
    if word.isascii() and any(c.isalpha() for c in word):
        return None
    return f"starts : {_phrase(word + WORD_START_MARK)}"


def mixes_digits_and_han(text: str) -> bool:
    """Chinese and digits in one text: an address, never a name, ID or phone number."""
    return any(c.isdigit() for c in text) and any(_is_cjk(c) for c in text)
