"""The year summary (年度总结) as a Word document (python-docx).

The same figures as the year page, in the same order: an opening paragraph to paste into the
party branch's yearly summary, the year's totals and rates, adoption and 落实 when the monthly
figures carry them, the twelve months, categories, the (complete year's) team table and a few
published cases by their public summary. Chinese text renders in Word and WPS: every style used
names an East Asian font (``w:eastAsia``) and drops the theme fonts that would override it.
"""

from __future__ import annotations

import io
from typing import Any

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt

from .year_report import (
    BASE_RATES,
    MONTH_COLUMNS,
    YearReport,
    rate_label,
    total_label,
)

BODY_FONT = "宋体"
HEADING_FONT = "黑体"
LATIN_FONT = "Times New Roman"


def _set_font(style: Any, east_asia: str, size: float | None = None) -> None:
    style.font.name = LATIN_FONT
    if size is not None:
        style.font.size = Pt(size)
    rpr = style.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(attr), None)
    fonts.set(qn("w:ascii"), LATIN_FONT)
    fonts.set(qn("w:hAnsi"), LATIN_FONT)
    fonts.set(qn("w:eastAsia"), east_asia)


def _table(doc: Any, header: list[str], rows: list[list[str]], *, key: str,
           numeric_from: int = 1) -> None:
    """A bordered table; ``key`` goes into the table's description (w:tblDescription), so
    a reader (and the tests) find a table without guessing from its position."""
    table = doc.add_table(rows=1, cols=len(header))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    tbl_pr = table._tbl.tblPr
    desc = OxmlElement("w:tblDescription")
    desc.set(qn("w:val"), key)
    tbl_pr.append(desc)
    for i, text in enumerate(header):
        cell = table.rows[0].cells[i]
        cell.text = text
        for run in cell.paragraphs[0].runs:
            run.bold = True
    for values in rows:
        cells = table.add_row().cells
        for i, text in enumerate(values):
            cells[i].text = text
            if i >= numeric_from:
                cells[i].paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT


def _num(v: int | None) -> str:
    return "—" if v is None else str(v)


NUMERALS = "一二三四五六七八九十"


def year_docx(r: YearReport, org_name: str = "") -> bytes:
    doc = Document()
    count = iter(NUMERALS)

    def heading(title: str) -> None:
        doc.add_heading(f"{next(count)}、{title}", level=1)

    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.left_margin = section.right_margin = Mm(20)
    section.top_margin = section.bottom_margin = Mm(18)
    _set_font(doc.styles["Normal"], BODY_FONT, 10.5)
    for name in ("Title", "Heading 1", "Heading 2"):
        _set_font(doc.styles[name], HEADING_FONT)
    _set_font(doc.styles["Table Grid"], BODY_FONT, 9.5)
    _set_font(doc.styles["List Bullet"], BODY_FONT)
    doc.core_properties.title = f"职工百宝箱 {r.year} 年度总结"
    doc.core_properties.author = org_name or "职工百宝箱"

    if org_name:
        doc.add_paragraph(org_name)
    title = f"职工百宝箱 · {r.year} 年度总结"
    if r.unit_label:
        title += f" · {r.unit_label}"
    doc.add_heading(title, level=0)
    doc.add_paragraph(f"统计时区 {r.timezone}（按当地日历月） · 本文件只含汇总数字与公示摘要，"
                      "不含任何提交人身份信息，也不含反映原文。")
    if not r.complete:
        doc.add_paragraph(f"说明：{r.partial_note}")

    heading("概述（可直接用于年度工作总结）")
    doc.add_paragraph(r.opening)
    for line in r.movable:
        doc.add_paragraph(line, style="List Bullet")

    heading("全年数字")
    _table(doc, ["指标", "全年", "口径"],
           [[line.label, line.value, line.definition] for line in r.total_lines],
           key="year.totals")
    doc.add_paragraph(r.definitions["year"])

    heading("全年比率")
    _table(doc, ["比率", "全年", "分子 / 分母", "口径"],
           [[line.label, line.value, line.frac, line.definition] for line in r.rate_lines],
           key="year.rates")
    doc.add_paragraph("分母为 0 时显示“—”。")

    if r.adoption_lines:
        heading("建议采纳与落实")
        _table(doc, ["指标", "全年", "分子 / 分母", "口径"],
               [[line.label, line.value, line.frac, line.definition]
                for line in r.adoption_lines], key="year.adoption")
        columns = r.adoption_month_columns
        rates = list(r.adoption_rates)
        if columns:
            rows = []
            for m in r.months:
                if m.figures is None:
                    rows.append([f"{m.month.month} 月"] + ["—"] * (len(columns) + len(rates)))
                    continue
                rows.append([f"{m.month.month} 月"] + [_num(m.total(c)) for c in columns]
                            + [m.figures.rates[n].display for n in rates])
            _table(doc, ["月份", *(total_label(c) for c in columns),
                         *(rate_label(n) for n in rates)], rows, key="year.adoption.months")

    heading("逐月")
    rate_names = list(BASE_RATES)
    month_rows = []
    for m in r.months:
        label = f"{m.month.month} 月" + ("（进行中）" if m.running else "")
        if m.figures is None:
            month_rows.append([f"{m.month.month} 月（未开始）"] + ["—"] * (3 + len(rate_names)))
            continue
        month_rows.append([label] + [_num(m.total(c)) for c in MONTH_COLUMNS]
                          + [m.figures.rates[n].display for n in rate_names])
    month_rows.append(["全年"] + [_num(r.figures.totals.get(c)) for c in MONTH_COLUMNS]
                      + [r.figures.rates[n].display for n in rate_names])
    _table(doc, ["月份", *(total_label(c) for c in MONTH_COLUMNS),
                 *(rate_label(n) for n in rate_names)], month_rows,
           key="year.months")

    heading("按类别")
    _table(doc, ["类别", "收到", "答复", "办结"],
           [[g.label, str(g.received), _num(g.answered), _num(g.closed)]
            for g in r.by_category], key="year.categories")

    if r.team_table is not None:
        heading("按班组（收到）")
        _table(doc, ["班组", "收到"],
               [[g.label, str(g.received)] for g in r.team_table.rows], key="year.teams")
        doc.add_paragraph(f"保护小群体：收到少于 {r.small_group_k} 件的班组并入“其他”，"
                          "与月度汇总的年度班组表相同。")

    heading("典型事例（公示摘要）")
    if r.typical:
        for c in r.typical:
            where = f"{c.unit} · " if c.unit else ""
            doc.add_paragraph(
                f"{where}{c.category} · {c.received.month} 月收到 · {c.status}：{c.summary}",
                style="List Bullet")
        doc.add_paragraph(f"本年收到、已公示的事项共 {r.typical_total} 件，此处列出 "
                          f"{len(r.typical)} 件，只用公示摘要，不含反映原文。")
    else:
        doc.add_paragraph("本年没有公示的事项。")

    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
