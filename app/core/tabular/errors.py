"""Why a file cannot be used: ``TableError`` and its bilingual messages (no personal data)."""

from __future__ import annotations

from app.core.messages import lang_of
from app.core.tabular.limits import (
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_FILE_BYTES,
    MAX_RECORDS,
    MAX_ROW_NUMBER,
)


class TableError(Exception):
    """The file cannot be used at all (exit 2). ``code`` selects the message; no personal data."""

    def __init__(
        self, code: str, file: str, detail: str = "", row: int | None = None, column: str = ""
    ) -> None:
        self.code, self.file, self.detail, self.row, self.column = code, file, detail, row, column
        super().__init__(self.message("en"))

    def __reduce__(self) -> tuple[type[TableError], tuple[str, str, str, int | None, str]]:
        """Pickled by its fields: an import's checking process raises it in the importing one."""
        return TableError, (self.code, self.file, self.detail, self.row, self.column)

    def message(self, lang: str = "zh") -> str:
        """What is wrong with the file and what to do, on one line."""
        zh, en = _TABLE_ERRORS[self.code]
        column = f" [{self.column}]" if self.column else ""
        where = f"{self.file}" + (f" 第{self.row}行" if self.row else "") + column
        where_en = f"{self.file}" + (f", row {self.row}" if self.row else "") + column
        english = lang_of(lang) == "en"
        text = en.format(detail=self.detail) if english else zh.format(detail=self.detail)
        return f"{where_en}: {text}" if english else f"{where}：{text}"


_TABLE_ERRORS = {
    "missing": ("文件不存在。请检查路径。", "file not found; check the path."),
    "unreadable": (
        "无法读取文件（{detail}）。请检查文件权限或是否被其他程序占用。",
        "cannot read the file ({detail}); check its permissions or whether another "
        "program holds it.",
    ),
    "write": (
        "无法写入文件（{detail}）。请检查目录是否存在、是否有写入权限。",
        "cannot write the file ({detail}); check that the folder exists and is writable.",
    ),
    "suffix": (
        "不支持的文件类型{detail}，请使用 .csv、.xlsx 或 .json。",
        "unsupported file type {detail}; use .csv, .xlsx or .json.",
    ),
    "encoding": (
        "无法识别文件编码（不是 UTF-8、GB18030/GBK，也不是带 BOM 的 UTF-16/UTF-32）。"
        "请在 Excel 中另存为“CSV UTF-8”。",
        "the encoding is not UTF-8, GB18030/GBK, or UTF-16/UTF-32 with a BOM; save it from "
        'Excel as "CSV UTF-8".',
    ),
    "encoding_nobom": (
        "无法可靠识别文件编码：文件含大量空字节，是不带 BOM 的 UTF-16/UTF-32，"
        "或不是文本文件（如改了扩展名的 .xls）。请在 Excel 中另存为“CSV UTF-8”。",
        "cannot tell the encoding: the file is full of NUL bytes (UTF-16/UTF-32 without a BOM, "
        "or not a text file (a "
        'renamed .xls?)); save it from Excel as "CSV UTF-8".',
    ),
    "encoding_bom": (
        "文件开头的 BOM 表明是 {detail} 编码，但内容不是有效的 {detail}（文件可能被截断或"
        "混合了编码）。请在 Excel 中另存为“CSV UTF-8”。",
        "the byte-order mark says {detail}, but the content is not valid {detail} (the file "
        'may be cut off or mix encodings); save it from Excel as "CSV UTF-8".',
    ),
    "too_big": (
        f"文件有 {{detail}}，超过上限 {MAX_FILE_BYTES // 2**20} MB。"
        f"请拆分为多个文件（每个不超过 {MAX_RECORDS} 条记录）后分别处理。",
        f"the file is {{detail}}, over the {MAX_FILE_BYTES // 2**20} MB limit; split it into "
        f"files of at most {MAX_RECORDS} records each.",
    ),
    "too_many_rows": (
        f"超过上限：最多 {MAX_RECORDS} 条记录（表格第 {MAX_ROW_NUMBER} 行以内，含表头和标题行）。"
        "请拆分为多个文件后分别处理。",
        f"over the limit of {MAX_RECORDS} records (rows up to {MAX_ROW_NUMBER}, header and "
        "title line included); split it into several files.",
    ),
    "too_many_columns": (
        f"第{{detail}}列有内容，超过上限 {MAX_COLUMNS} 列。请删除多余的列（或多余的内容）后再试。",
        f"column {{detail}} has a value, over the limit of {MAX_COLUMNS} columns; remove the "
        "extra columns (or stray values) and try again.",
    ),
    "nul_char": (
        "含有空字符（NUL，代码 0），平台不接受。常见原因是导出该文件的程序带入了控制字符。"
        "请删除该字符后重新保存文件。",
        "holds a NUL character (code 0), which the platform refuses (often left by the program "
        "that exported the file); delete it and save the file again.",
    ),
    "bad_text": (
        "含有无效的 Unicode 字符（孤立的代理项，不是有效文本）。"
        "请在原程序中重新输入该内容，或将文件另存为 UTF-8。",
        "holds an invalid Unicode character (a lone surrogate, not valid text); retype the "
        "value in the program that made the file, or save the file as UTF-8.",
    ),
    "too_long": (
        f"内容超过 {MAX_CELL_CHARS} 个字符的上限，平台不接受。请缩短该内容。",
        f"holds more than {MAX_CELL_CHARS} characters, the platform's limit; shorten the value.",
    ),
    "bad_value": (
        "数值无效（NaN 或无穷大）。请填写具体数字或留空。",
        "the number is not valid (NaN or infinity); write a real number or leave it empty.",
    ),
    "xlsx_unzipped": (
        "解压后的内容过大（{detail}），可能是损坏或恶意构造的文件。"
        "请用 Excel 打开后另存为新文件，或拆分为多个文件。",
        "the unzipped content is too large ({detail}); the file may be damaged or crafted. "
        "Open it in Excel and save it as a new file, or split it.",
    ),
    "empty": (
        "文件是空的或没有表头行。第一行应为字段名。",
        "the file is empty or has no header row; the first row must name the fields.",
    ),
    "csv": (
        "CSV 格式错误：{detail}。请检查引号和分隔符。",
        "malformed CSV: {detail}; check quotes and separators.",
    ),
    "xlsx": (
        "不是有效的 Excel (.xlsx) 文件：{detail}。请用 Excel 重新保存。",
        "not a valid Excel (.xlsx) file: {detail}; save it again from Excel.",
    ),
    "json": (
        "JSON 格式错误：{detail}。应为对象数组。",
        "malformed JSON: {detail}; expected a list of objects.",
    ),
    "unnamed_cell": (
        "第{detail}列有内容但没有表头（常见原因：地址等内容里的逗号没有加引号，使后面各列错位）。"
        "请补上表头，或修正这一行。",
        "column {detail} has a value but no header (often an unquoted comma in an address "
        "shifted the columns); add the header or fix this row.",
    ),
    "merged_cells": (
        "{detail} 是合并单元格：只有第一格有值，其余各格读出来是空的。"
        "请取消合并，并在每一行（每一列）填写该值后再导入。",
        "{detail} are merged cells: only the first holds the value, the others read as empty. "
        "Unmerge them and fill in each row (and column), then import again.",
    ),
    "duplicate_header": (
        "表头“{detail}”出现了两次。请删除或重命名其中一列。",
        'the header "{detail}" appears twice; remove or rename one column.',
    ),
}
