"""The limits of one file (README "The command line"), the same for every format."""

from __future__ import annotations

from app.core import textcheck

SUFFIXES = (".csv", ".xlsx", ".json")
DELIMITERS = ",\t;"
# Limits of one file (README "The command line"). Records are counted by position, as the
# spreadsheet numbers rows: no value below row MAX_ROW_NUMBER (the records, the header and a
# title line above it), so the limit holds while the file streams. A column counts when any
# of its cells has a value.
MAX_RECORDS = 100_000
MAX_ROW_NUMBER = MAX_RECORDS + 2
MAX_COLUMNS = 200
MAX_CELL_CHARS = textcheck.MAX_VALUE_CHARS  # what the platform stores in one value
MAX_FILE_BYTES = 100 * 1024 * 1024
