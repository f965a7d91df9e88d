"""The .xlsx writer: numbers stay numbers, text never becomes a formula."""

from __future__ import annotations

import io
from datetime import date

from openpyxl import load_workbook

from suggestbox.xlsx import workbook


def test_numbers_are_numbers_and_text_is_text():
    data = workbook([
        ("指标", [["指标", "本月", "上月"], ["收到", 12, 9], ["满意率", 0.75, None]]),
        ("案件", [["类别", "日期", "摘要"], ["意见", date(2026, 10, 3), "=HYPERLINK(\"x\")"],
                  ["建议", date(2026, 10, 4), "+1-2"]]),
    ])
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["指标", "案件"]
    figures = book["指标"]
    assert figures["B2"].value == 12 and figures["B2"].data_type == "n"
    assert figures["B3"].value == 0.75
    assert figures["C3"].value is None
    cases = book["案件"]
    assert cases["C2"].value == "=HYPERLINK(\"x\")" and cases["C2"].data_type == "s"
    assert cases["C3"].data_type == "s"
    assert cases["B2"].value.date() == date(2026, 10, 3)
    # Summing a column works as Excel would.
    assert sum(c.value for c in figures["B"][1:] if isinstance(c.value, int | float)) == 12.75
