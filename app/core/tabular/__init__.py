"""Reading and writing the spreadsheets departments and building heads send (CSV, XLSX, JSON).

CSV and JSON arrive as UTF-8 (with or without BOM), GB18030/GBK from Excel on Chinese Windows,
or UTF-16/UTF-32 with a BOM; the encoding is detected, never guessed silently. Rows are numbered
as a spreadsheet shows them (header = row 1), so a message can say "row 7, column 公民身份号码".

Every format goes through the same limits (rows, columns, file size, cell length) and the same
text checks as the server's push checks (``textcheck``): a file is refused, naming the row and
column, before anything is stored, instead of importing what the sync would refuse later.

Modules: ``limits``, ``read`` (``Table``, ``read_table``; ``stream_table``: rows lazily), ``encoding`` (which codec a file
is in), ``write`` (``write_table``, ``csv_cells`` for any other CSV), ``formula`` (CSV
formula neutralisation), ``merged`` (XLSX merged cells refused) and ``errors`` (``TableError`` and its messages).
"""

from __future__ import annotations

from app.core.tabular.encoding import decode, encoding_of
from app.core.tabular.errors import TableError
from app.core.tabular.formula import neutralise, restore
from app.core.tabular.limits import (
    DELIMITERS,
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_FILE_BYTES,
    MAX_RECORDS,
    MAX_ROW_NUMBER,
    SUFFIXES,
)
from app.core.tabular.read import (
    FILE_LIMITS,
    STREAMED,
    Limits,
    Lines,
    Table,
    TableStream,
    read_lines,
    read_table,
    stream_table,
)
from app.core.tabular.write import csv_cells, write_table

__all__ = [
    "FILE_LIMITS",
    "STREAMED",
    "Limits",
    "Lines",
    "TableStream",
    "stream_table",
    "DELIMITERS",
    "MAX_CELL_CHARS",
    "MAX_COLUMNS",
    "MAX_FILE_BYTES",
    "MAX_RECORDS",
    "MAX_ROW_NUMBER",
    "SUFFIXES",
    "Table",
    "TableError",
    "csv_cells",
    "decode",
    "encoding_of",
    "neutralise",
    "read_lines",
    "read_table",
    "restore",
    "write_table",
]
