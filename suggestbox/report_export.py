"""Exports of the monthly summary: the figures and the answered cases as rows (one value per
cell, numbers as numbers) and as CSV (UTF-8 with BOM, formulas neutralised). ``xlsx.py`` writes
the same rows as a workbook."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from .depot_report import DepotReport
from .reports import (
    PERCENTILE_NOTE,
    RATE_LABELS,
    TIME_DEFINITIONS,
    TOTAL_DEFINITIONS,
    TOTAL_LABELS,
    TOTAL_UNITS,
    ListedCase,
    Report,
    TeamTable,
    rate_definitions,
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?%?")


def _safe_cell(value: Any) -> str:
    """Neutralise spreadsheet formulas (CSV injection): text that a spreadsheet would evaluate
    gets a leading apostrophe; plain signed numbers such as "-2" or "+12.5%" stay as they are."""
    text = str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _csv(rows: Iterable[Iterable[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerows(["" if v is None else _safe_cell(v) for v in row] for row in rows)
    # UTF-8 with BOM: Excel then opens Chinese text correctly.
    return buf.getvalue().encode("utf-8-sig")


FIGURES_HEADER = ["部分", "期间", "项目", "指标", "本期", "上期", "变化", "分子", "分母", "口径"]


def _pct(v: float | None) -> float | None:
    return None if v is None else round(v * 100, 1)


def _days(v: float | None) -> float | int | None:
    """Days as the page shows them: a whole number, or one decimal."""
    if v is None:
        return None
    return int(v) if v == int(v) else round(v, 1)


def figures_rows(report: Report) -> list[list[Any]]:
    """The figures as one table, one value per cell: numbers are numbers (rates in percent),
    an empty cell where a figure has nothing to divide by."""
    r = report
    month = str(r.month)
    rows: list[list[Any]] = [FIGURES_HEADER]

    def row(section: str, period: str, item: str, measure: str, value: Any, *,
            prev: Any = None, change: Any = None, num: Any = None, den: Any = None,
            note: str = "") -> None:
        rows.append([section, period, item, measure, value, prev, change, num, den, note])

    for name, label in TOTAL_LABELS.items():
        cur, prev = r.figures.totals[name], r.previous.totals[name]
        row("总量", month, label, TOTAL_UNITS.get(name, "件数"), cur, prev=prev,
            change=cur - prev,
            note=TOTAL_DEFINITIONS[name])
    defs = rate_definitions(r.response_limit_days)
    for name, label in RATE_LABELS.items():
        cur_r, prev_r = r.figures.rates[name], r.previous.rates[name]
        a, b = _pct(cur_r.value), _pct(prev_r.value)
        row("比率", month, label, "百分比", a, prev=b,
            change=None if a is None or b is None else round(a - b, 1),
            num=cur_r.num, den=cur_r.den, note=defs[name])
    for key, label, sp in (("accept", "响应用时", r.accept_times),
                           ("answer", "答复用时", r.answer_times)):
        row("用时", month, label, "件数", sp.n, note=TIME_DEFINITIONS[key])
        row("用时", month, label, "中位数（天）", _days(sp.median), note=PERCENTILE_NOTE)
        row("用时", month, label, "第90百分位（天）", _days(sp.p90), note=PERCENTILE_NOTE)
    for g in r.by_category:
        for measure, v in (("收到", g.received), ("答复", g.answered), ("办结", g.closed)):
            row("按类别", month, g.label, measure, v)
    for g in r.by_source:
        for measure, v in (("收到", g.received), ("答复", g.answered), ("办结", g.closed)):
            row("按来源", month, g.label, measure, v)
    fold = f"收到少于 {r.small_group_k} 件的班组并入“其他”"
    tables = [TeamTable("month", month, r.month.label, r.by_team,
                        sum(g.received for g in r.by_team)), *r.team_periods]
    for t in tables:
        for g in t.rows:
            for measure, v in (("收到", g.received), ("答复", g.answered), ("办结", g.closed)):
                if v is not None:
                    row("按班组", t.period, g.label, measure, v,
                        note=fold if g.key == "other" else "")
    for tp in r.trend:
        row("趋势", str(tp.month), "全部", "收到", tp.received)
        row("趋势", str(tp.month), "全部", "答复", tp.answered)
    return rows


def figures_csv(report: Report) -> bytes:
    return _csv(figures_rows(report))


def cases_rows(cases: list[ListedCase], units: Mapping[int, str] | None = None
               ) -> list[list[Any]]:
    """The answered cases; ``units`` (unit id → name): a first column naming the workshop."""
    header = ["编号", "类别", "公示摘要", "答复", "收到日期", "答复日期", "用时（天）"]
    rows: list[list[Any]] = [(["车间"] if units is not None else []) + header]
    for c in cases:
        row = [c.number, c.category, c.summary, c.answer, c.received_on, c.answered_on, c.days]
        rows.append(([units.get(c.unit, "")] if units is not None else []) + row)
    return rows


def rows_csv(rows: list[list[Any]]) -> bytes:
    return _csv([[v.isoformat() if isinstance(v, date) else v for v in row] for row in rows])


def cases_csv(cases: list[ListedCase]) -> bytes:
    return rows_csv(cases_rows(cases))


DEPOT_HEADER = ["部分", "期间", "单位", "指标", "数值", "分子", "分母", "口径"]


def depot_rows(report: DepotReport) -> list[list[Any]]:
    """The depot report as one table, one value per cell (rates in percent, empty when there
    is nothing to divide by)."""
    r = report
    month = str(r.month)
    rows: list[list[Any]] = [DEPOT_HEADER]
    defs = rate_definitions(r.response_limit_days)
    fold = f"本月收到少于 {r.small_group_k} 件的车间并入“其他”"

    def rates(section: str, unit: str, figures: Any) -> None:
        for name, label in RATE_LABELS.items():
            rate = figures.rates[name]
            rows.append([section, month, unit, label, _pct(rate.value), rate.num, rate.den,
                         defs[name] if section == "全段" else ""])

    for name, label in TOTAL_LABELS.items():
        rows.append(["全段", month, "全段（车间案件）", label, r.figures.totals[name], None, None,
                     TOTAL_DEFINITIONS[name]])
    rates("全段", "全段（车间案件）", r.figures)
    for key, label, sp in (("accept", "响应用时", r.accept_times),
                           ("answer", "答复用时", r.answer_times)):
        rows.append(["全段", month, "全段（车间案件）", f"{label}件数", sp.n, None, None,
                     TIME_DEFINITIONS[key]])
        rows.append(["全段", month, "全段（车间案件）", f"{label}中位数（天）", _days(sp.median),
                     None, None, PERCENTILE_NOTE])
        rows.append(["全段", month, "全段（车间案件）", f"{label}第90百分位（天）", _days(sp.p90),
                     None, None, PERCENTILE_NOTE])
    for section, table in (("按车间", r.workshops), ("段级渠道", r.desks)):
        for u in table:
            note = fold if u.key == "other" else ""
            for measure, v in (("收到", u.received), ("答复", u.answered), ("办结", u.closed)):
                rows.append([section, month, u.label, measure, v, None, None, note])
            rates(section, u.label, u.figures)
            rows.append([section, month, u.label, "答复用时中位数（天）",
                         _days(u.answer_times.median), None, None, ""])
    origin_note = f"段级渠道案件按来源车间；少于 {r.small_group_k} 件的车间并入“其他”"
    for o in r.desk_origin:
        rows.append(["段级渠道来源", month, o.label, "收到", o.received, None, None,
                     origin_note if o.key == "other" else ""])
    return rows


def depot_csv(report: DepotReport) -> bytes:
    return _csv(depot_rows(report))
