"""Excel (.xlsx) export: one sheet per table, numbers as numbers, text always as text.

A cell that starts with ``=`` (or ``+``, ``-``, ``@``) stays text: openpyxl would otherwise
store it as a formula, and a worker's words must never run in a leader's spreadsheet.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.utils import get_column_letter

Sheet = tuple[str, Sequence[Sequence[Any]]]


def _put(cell: Cell, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        cell.value = "是" if value else "否"
    elif isinstance(value, int | float):
        cell.value = value
    elif isinstance(value, datetime):
        cell.value = value.replace(tzinfo=None)
        cell.number_format = "yyyy-mm-dd hh:mm"
    elif isinstance(value, date):
        cell.value = value
        cell.number_format = "yyyy-mm-dd"
    else:
        cell.value = str(value)
        cell.data_type = "s"  # never a formula


def workbook(sheets: Iterable[Sheet]) -> bytes:
    """The rows of each sheet (first row: headers) as one .xlsx file."""
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        ws = book.create_sheet(title=title[:31])
        widths: dict[int, int] = {}
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                _put(ws.cell(row=r, column=c), value)
                widths[c] = max(widths.get(c, 0), min(60, len(str(value or "")) * 2 + 2))
        for c, w in widths.items():
            ws.column_dimensions[get_column_letter(c)].width = max(8, w)
        ws.freeze_panes = "A2"
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
