"""Spreadsheet formula neutralisation for CSV cells (OWASP "CSV injection"), and its inverse.

Excel, WPS and LibreOffice run a CSV cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return as a formula (``=cmd|' /C calc'!A0``). Every CSV the project writes passes
its cells through ``neutralise``, which prefixes such a cell with a single quote so the
spreadsheet shows it as text; every CSV the project reads passes them through ``restore``.

The pair is an exact round trip for every string: a cell that already begins with quotes
followed by a dangerous character gets one more quote, so ``restore`` never eats a quote the
original value had (``'=x`` is written ``''=x`` and read back as ``'=x``).
"""

from __future__ import annotations

DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
MAY_START_FORMULA = frozenset((*DANGEROUS_FIRST, QUOTE))  # first characters worth a closer look


def _looks_like_formula(text: str) -> bool:
    """True if the text, once any leading quotes are dropped, begins like a formula."""
    return text.lstrip(QUOTE).startswith(DANGEROUS_FIRST)


def neutralise(text: str) -> str:
    """The cell as it is safe to write to CSV: a leading quote when a spreadsheet would run it.
    (Most cells begin with none of those characters: one set lookup, a million cells a file.)"""
    if not text or text[0] not in MAY_START_FORMULA:
        return text
    return QUOTE + text if _looks_like_formula(text) else text


def restore(text: str) -> str:
    """The original value of a cell ``neutralise`` wrote (other cells come back unchanged)."""
    if text.startswith(QUOTE) and _looks_like_formula(text[1:]):
        return text[1:]
    return text
