"""Exports of the monthly summary: the figures and the answered cases as rows (one value per
cell, numbers as numbers) and as CSV (UTF-8 with BOM, formulas neutralised). ``xlsx.py`` writes
the same rows as a workbook."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from .reports import (
    PERCENTILE_NOTE,
    RATE_LABELS,
    TIME_DEFINITIONS,
    TOTAL_DEFINITIONS,
    TOTAL_LABELS,
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
        row("总量", month, label, "件数", cur, prev=prev, change=cur - prev,
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


def cases_rows(cases: list[ListedCase]) -> list[list[Any]]:
    rows: list[list[Any]] = [
        ["编号", "类别", "公示摘要", "答复", "收到日期", "答复日期", "用时（天）"]]
    for c in cases:
        rows.append([c.number, c.category, c.summary, c.answer, c.received_on,
                     c.answered_on, c.days])
    return rows


def cases_csv(cases: list[ListedCase]) -> bytes:
    return _csv([[v.isoformat() if isinstance(v, date) else v for v in row]
                 for row in cases_rows(cases)])
