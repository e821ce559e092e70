"""Which encoding a CSV or JSON file is in: a BOM decides, else strict UTF-8, else GB18030;
never a silent guess."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from pathlib import Path

from app.core.tabular.errors import TableError

# Byte-order marks that name their encoding; Excel's "Unicode text" export is UTF-16 with a BOM.
# UTF-32's marks begin with UTF-16's, so they are tried first.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
    (b"\x84\x31\x95\x33", "gb18030", "GB18030"),
)
BOM_CHAR = "\ufeff"
_CHUNK = 1 << 20


def decode(raw: bytes, name: str) -> str:
    """Text of a CSV/JSON file in memory (see ``encoding_of``); repeated BOMs are dropped."""
    encoding, skip = encoding_of(lambda: iter([raw]), name)
    return raw[skip:].decode(encoding).lstrip(BOM_CHAR)


def encoding_of(chunks: Callable[[], Iterator[bytes]], name: str) -> tuple[str, int]:
    """(codec, BOM length) of a file given as a fresh iterator of its bytes on each call.

    A BOM decides (UTF-8, UTF-16/32 LE/BE, GB18030); else strict UTF-8, else GB18030 (a
    superset of GBK). GB18030 accepts most byte strings, so a file full of NUL bytes (UTF-16/32
    without a BOM, a renamed binary) is refused first: a wrong guess would turn every header
    into an "unknown column". A few NULs in a UTF-8 file are a value's problem, reported with
    its row and column. The file is decoded piece by piece and the text thrown away, so
    checking costs no memory."""
    head = next(chunks(), b"")
    for bom, encoding, label in _BOMS:
        if head.startswith(bom):
            if not _decodes(chunks(), encoding, len(bom)):
                raise TableError("encoding_bom", name, label)
            return encoding, len(bom)
    nuls = size = 0
    for chunk in chunks():
        nuls, size = nuls + chunk.count(b"\x00"), size + len(chunk)
    if nuls * 10 > size:
        raise TableError("encoding_nobom", name)
    for encoding in ("utf-8", "gb18030"):
        if _decodes(chunks(), encoding, 0):
            return encoding, 0
    raise TableError("encoding", name)


def _decodes(chunks: Iterator[bytes], encoding: str, skip: int) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        for i, chunk in enumerate(chunks):
            decoder.decode(chunk[skip:] if i == 0 else chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk
