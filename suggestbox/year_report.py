"""The year in one page (年度总结): the twelve months' figures, summed.

No HTTP here. Every figure is built from the monthly machinery of ``reports.py``
(``_figures`` per calendar month, added with ``_sum_figures``), so a yearly count is the sum of
the twelve monthly counts and a yearly rate is the sum of the monthly numerators over the sum of
the monthly denominators. Consequences, printed with the figures:

- A case answered (or rated, closed) in two different months counts in each of them, as on the
  two monthly reports. ``received`` counts each case once (its fixed ``received_on``).
- Stock figures (``open_at_end``, ``overdue_at_end``, ``promises_overdue``: a state at a month's
  end, not a flow) are not added up: the year shows the last included month's value.
- Months not yet begun are missing; the running month is included up to now and flagged.

Adoption and 落实 figures (建议数, 采纳率, 落实率, rewards) are read with ``.get`` from the
monthly figures: the section is empty when the monthly report does not compute them.

Team table: only for a complete year, and exactly the audited "year" table of the monthly
report (``reports._team_periods``), so the year page never names a team the monthly reports
would fold. Categories are channels of topics, not groups of people: never folded.

Typical cases: published cases received in the year (public summary only, never the text or
the answer), at most ``TYPICAL_LIMIT``, one per category first, closed ones and the most
``我也遇到`` first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .cases import STATUS_LABELS, local_today
from .months import Month
from .reports import (
    RATE_LABELS,
    TOTAL_DEFINITIONS,
    TOTAL_LABELS,
    Figures,
    Group,
    Rate,
    TeamTable,
    _breakdowns,
    _Db,
    _figures,
    _int,
    _number,
    _offset_minutes,
    _snapshot,
    _sum_figures,
    _team_periods,
    _Window,
    rate_definitions,
)

YEAR_MIN, YEAR_MAX = 2000, 2999  # the range Month.parse accepts
TYPICAL_LIMIT = 5
# A state at a month's end, not a flow: the year shows the last included month's value.
STOCK = ("open_at_end", "overdue_at_end", "promises_overdue")
# The yearly table: flows summed over the months (the monthly report's order), then any other
# count the monthly figures carry (outside the adoption section).
YEAR_TOTALS = ("received", "accepted", "rejected", "answered", "closed", "reopened", "merged",
               "supports", "open_at_end", "overdue_at_end")
# The four rates of every case (the adoption rates have their own section).
BASE_RATES = ("response", "on_time", "resolution", "satisfaction")
MONTH_COLUMNS = ("received", "answered", "closed")
# Adoption and 落实 (issue 18 item 5): rendered only when the monthly figures carry them.
ADOPTION_TOTALS = ("suggestions", "reviewed", "adopted", "carried_out", "promises_overdue",
                   "rewards_given", "reward_yuan_given", "reward_points_given",
                   "rewards_claimed", "reward_yuan_claimed", "reward_points_claimed",
                   "rewards_team_fund")
ADOPTION_RATES = ("adoption", "carried_out")
ADOPTION_MONTH_COLUMNS = ("suggestions", "reviewed", "adopted", "carried_out")
# Labels where the year reads differently from the month (stocks), and fallbacks for counts
# the monthly report labels itself (reports.TOTAL_LABELS / RATE_LABELS win when they have one).
YEAR_LABELS = {"open_at_end": "年末未办结", "overdue_at_end": "年末超期",
               "promises_overdue": "年末逾期承诺"}
FALLBACK_LABELS = {"suggestions": "建议数", "reviewed": "采纳评审", "adopted": "采纳",
                   "carried_out": "落实", "rewards_given": "奖励（件）",
                   "rewards_claimed": "奖励已领取（件）"}
FALLBACK_RATE_LABELS = {"adoption": "采纳率", "carried_out": "落实率"}


def total_label(name: str) -> str:
    return YEAR_LABELS.get(name) or TOTAL_LABELS.get(name) or FALLBACK_LABELS.get(name, name)


def rate_label(name: str) -> str:
    return RATE_LABELS.get(name) or FALLBACK_RATE_LABELS.get(name, name)


@dataclass(frozen=True)
class Line:
    """One printed figure: the same rows on the page and in the .docx."""

    key: str  # the page's data-figure name, e.g. year.total.received, adoption.rate.adoption
    label: str
    value: str
    frac: str  # "num / den" for a rate, "" for a count
    definition: str


def year_definitions(limit_days: int) -> dict[str, str]:
    """The yearly figures' definitions: the monthly ones, summed (printed on the page)."""
    out = {f"total.{k}": "各月相加；每月为" + v.replace("本月", "当月")
           for k, v in TOTAL_DEFINITIONS.items()}
    out["total.received"] = "收到日期在本年的案件数（每件只计一次；也等于各月相加）。"
    out["total.open_at_end"] = ("最后一个统计月月末（全年结束时即 12 月 31 日 24 时）处于待受理、"
                                "已受理或办理中的案件数；不是各月相加。")
    out["total.overdue_at_end"] = ("最后一个统计月月末未办结、且办理期限已过的案件数"
                                   "（按案件当前的办理期限）；不是各月相加。")
    out["total.promises_overdue"] = ("最后一个统计月月末已过承诺完成日期、仍未落实的案件数；"
                                     "不是各月相加。")
    out.update({f"rate.{k}": "各月分子之和 ÷ 各月分母之和；每月为" + v.replace("本月", "当月")
                for k, v in rate_definitions(limit_days).items()})
    out["year"] = ("全年数字 = 12 个月各自的月度数字相加：计数相加，"
                   "比率为各月分子之和 ÷ 各月分母之和。"
                   "同一案件在两个月都有答复（或评价、办结）的，在两个月各计一次，与月度汇总一致；"
                   "“收到”每件只计一次。月末未办结、月末超期是时点数，取最后一个统计月的数。")
    return out


# ---- result types ---------------------------------------------------------------------------

@dataclass
class MonthRow:
    month: Month
    figures: Figures | None  # None: the month has not begun
    running: bool = False  # the month has not ended: figures up to now

    def total(self, name: str) -> int | None:
        return None if self.figures is None else self.figures.totals.get(name)

    def rate(self, name: str) -> Rate | None:
        return None if self.figures is None else self.figures.rates.get(name)


@dataclass
class TypicalCase:
    number: str
    category: str
    summary: str  # the public summary: never the text, never the answer
    received: Month
    status: str
    unit: str = ""  # the workshop's name (depot year only)


@dataclass
class YearReport:
    year: int
    unit_label: str  # the workshop's or desk's name, or "全段"
    months: list[MonthRow]
    figures: Figures  # the year
    by_category: list[Group]
    team_table: TeamTable | None
    typical: list[TypicalCase]
    typical_total: int
    timezone: str
    response_limit_days: int
    small_group_k: int
    generated_at: datetime
    as_of: date  # the local day the figures run to (the year's last day when complete)
    generated_on: date  # the local day of generation
    depot: bool = False
    definitions: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return all(r.figures is not None and not r.running for r in self.months)

    @property
    def missing(self) -> list[Month]:
        return [r.month for r in self.months if r.figures is None]

    @property
    def running(self) -> Month | None:
        return next((r.month for r in self.months if r.running), None)

    @property
    def partial_note(self) -> str:
        if self.complete:
            return ""
        parts = [f"{self.year} 年尚未结束，数字截至 {self.as_of.isoformat()}"]
        if self.running is not None:
            parts.append(f"{self.running.month} 月尚未结束（计到生成时）")
        if self.missing:
            names = "、".join(f"{m.month} 月" for m in self.missing)
            parts.append(f"{names}尚未开始，未计入")
        return "；".join(parts) + "。"

    @property
    def movable(self) -> list[str]:
        """Which figures can still change after this printing, and why (printed)."""
        if not self.complete:
            return ["年度尚未结束：所有数字截至生成时，以后还会变。"]
        settled = date(self.year + 1, 1, 1) + timedelta(days=self.response_limit_days)
        response = (f"响应率：12 月最后 {self.response_limit_days} 天收到的案件可在次年 1 月初得到"
                    f"响应，{settled.isoformat()} 起不再变化")
        response += "（已确定）。" if self.generated_on >= settled else "（尚未确定）。"
        return [
            "其余数字只由当年发生的操作（事件记录）算出，以后重印不变。",
            response,
            "按时答复率、年末超期：按案件当前的办理期限计算，以后转办改期限或退回的案件会使"
            "这两个数变化（与月度汇总相同）。",
            "典型事例按生成时的公示状态选取和显示（它不是数字）。",
        ]

    @property
    def adoption_totals(self) -> dict[str, int]:
        return {k: self.figures.totals[k] for k in ADOPTION_TOTALS if k in self.figures.totals}

    @property
    def adoption_rates(self) -> dict[str, Rate]:
        return {k: self.figures.rates[k] for k in ADOPTION_RATES if k in self.figures.rates}

    def _count(self, prefix: str, name: str) -> Line:
        return Line(f"{prefix}.total.{name}", total_label(name), str(self.figures.totals[name]),
                    "", self.definitions.get(f"total.{name}", ""))

    def _rate(self, prefix: str, name: str) -> Line:
        rate = self.figures.rates[name]
        return Line(f"{prefix}.rate.{name}", rate_label(name), rate.display,
                    f"{rate.num} / {rate.den}", self.definitions.get(f"rate.{name}", ""))

    @property
    def total_lines(self) -> list[Line]:
        t = self.figures.totals
        names = [n for n in YEAR_TOTALS if n in t]
        names += [n for n in t if n not in YEAR_TOTALS and n not in ADOPTION_TOTALS]
        return [self._count("year", n) for n in names]

    @property
    def rate_lines(self) -> list[Line]:
        return [self._rate("year", n) for n in BASE_RATES]

    @property
    def adoption_lines(self) -> list[Line]:
        return ([self._count("adoption", n) for n in self.adoption_totals]
                + [self._rate("adoption", n) for n in self.adoption_rates])

    @property
    def adoption_month_columns(self) -> list[str]:
        return [n for n in ADOPTION_MONTH_COLUMNS if n in self.figures.totals]

    @property
    def opening(self) -> str:
        """One paragraph for the party branch's yearly summary (plain text)."""
        t, r = self.figures.totals, self.figures.rates
        where = "" if self.depot or not self.unit_label else self.unit_label
        if self.complete:
            head = f"{self.year} 年，{where}全年"
        else:
            head = f"{self.year} 年 1 月 1 日至 {self.as_of.month} 月 {self.as_of.day} 日，{where}"
        text = (f"{head}通过“职工百宝箱”收到职工意见建议 {t['received']} 件，"
                f"受理 {t['accepted']} 件，答复 {t['answered']} 件，办结 {t['closed']} 件")
        sat = r["satisfaction"]
        if sat.den:
            text += (f"，满意率 {sat.display}（{sat.den} 件次评价中满意或基本满意 {sat.num} 件次）")
        else:
            text += "，尚无提交人评价"
        parts = []
        for name in ("response", "on_time", "resolution"):
            rate = r[name]
            if rate.den:
                parts.append(f"{RATE_LABELS[name]} {rate.display}")
        if parts:
            text += "，" + "，".join(parts)
        text += "。"
        a = self.adoption_totals
        if "suggestions" in a:
            text += f"其中建议 {a['suggestions']} 件"
            adoption = self.adoption_rates.get("adoption")
            if "adopted" in a:
                text += f"，采纳 {a['adopted']} 件"
                if adoption is not None and adoption.den:
                    text += f"（采纳率 {adoption.display}）"
            done = self.adoption_rates.get("carried_out")
            if "carried_out" in a:
                text += f"，已落实 {a['carried_out']} 件"
                if done is not None and done.den:
                    text += f"（落实率 {done.display}）"
            if a.get("rewards_given"):
                text += f"，发放奖励 {a['rewards_given']} 件"
            text += "。"
        return text

    def as_dict(self) -> dict[str, Any]:
        def fig(f: Figures) -> dict[str, Any]:
            return {"totals": dict(f.totals),
                    "rates": {k: v.as_dict() for k, v in f.rates.items()}}

        return {
            "kind": "year",
            "year": self.year,
            "unit": self.unit_label,
            "complete": self.complete,
            "as_of": self.as_of.isoformat(),
            "missing": [str(m) for m in self.missing],
            "running": str(self.running) if self.running else None,
            "timezone": self.timezone,
            "settings": {"response_limit_days": self.response_limit_days,
                         "small_group_k": self.small_group_k},
            "year_figures": fig(self.figures),
            "months": [{"month": str(m.month), "running": m.running,
                        **(fig(m.figures) if m.figures is not None else {"totals": None})}
                       for m in self.months],
            "by_category": [asdict(g) for g in self.by_category],
            "team_table": None if self.team_table is None else {
                "period": self.team_table.period, "total": self.team_table.total,
                "rows": [asdict(g) for g in self.team_table.rows]},
            "typical_total": self.typical_total,
            "typical": [{**asdict(c), "received": str(c.received)} for c in self.typical],
            "opening": self.opening,
            "movable": self.movable,
            "definitions": self.definitions,
            "generated_at": self.generated_at.isoformat(),
        }


# ---- building -------------------------------------------------------------------------------

def check_year(year: int) -> int:
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise ValueError("年份超出范围")
    return year


def parse_year(text: str) -> int:
    """``YYYY`` → int; ValueError (Chinese message) on anything else."""
    text = text.strip()
    if len(text) != 4 or not text.isascii() or not text.isdigit():
        raise ValueError("年份格式应为 YYYY（例如 2025）")
    return check_year(int(text))


def _year_figures(year: int, rows: Sequence[MonthRow]) -> Figures:
    """The flows summed; the stocks from the last included month."""
    included = [r.figures for r in rows if r.figures is not None]
    total = _sum_figures(Month(year, 12), included)
    if included:
        last = included[-1]
        for name in STOCK:
            if name in last.totals:
                total.totals[name] = last.totals[name]
    return total


async def build_year_report(
    year: int,
    *,
    units: tuple[int, ...],
    tz: ZoneInfo,
    unit_label: str = "",
    depot: bool = False,
    unit_names: dict[int, str] | None = None,
    response_limit_days: int = 2,
    small_group_k: int = 3,
    typical_limit: int = TYPICAL_LIMIT,
    now: datetime | None = None,
    connection: str = "default",
) -> YearReport:
    """The year ``year`` (local calendar year in ``tz``) over the cases of ``units``."""
    check_year(year)
    now = now or datetime.now(UTC)
    today = local_today(tz, now)
    months = [Month(year, i) for i in range(1, 13)]
    rows: list[MonthRow] = []
    async with _snapshot(connection) as conn:
        for m in months:
            if m.first > today:
                rows.append(MonthRow(m, None))
                continue
            db = _Db(conn, tz, _offset_minutes(tz, m), units)
            rows.append(MonthRow(m, await _figures(db, m, response_limit_days),
                                 running=m.next().first > today))
        figures = _year_figures(year, rows)
        db = _Db(conn, tz, _offset_minutes(tz, Month(year, 6)), units)
        window = _Window.of(Month(year, 12), tz, 12)
        by_category, _ = await _breakdowns(db, window, small_group_k, figures.activity)
        complete = all(r.figures is not None and not r.running for r in rows)
        team_table = None
        if complete and not depot:
            tables = await _team_periods(db, Month(year, 12), small_group_k)
            team_table = next(t for t in tables if t.kind == "year")
        typical, typical_total = await _typical(db, window, typical_limit, unit_names or {})
    as_of = date(year, 12, 31) if complete else today
    return YearReport(
        year=year, unit_label=unit_label, months=rows, figures=figures,
        by_category=by_category, team_table=team_table, typical=typical,
        typical_total=typical_total, timezone=tz.key, response_limit_days=response_limit_days,
        small_group_k=small_group_k, generated_at=now, as_of=as_of, generated_on=today,
        depot=depot,
        definitions=year_definitions(response_limit_days),
    )


async def _typical(db: _Db, w: _Window, limit: int, unit_names: dict[int, str]
                   ) -> tuple[list[TypicalCase], int]:
    """Published cases received in the year: their public summaries (never the text)."""
    rows = await db.rows(
        "SELECT c.id AS id, c.unit_id AS unit, cat.name AS category, "  # noqa: S608
        "c.public_summary AS summary, c.received_on AS received_on, c.status AS status "
        "FROM \"case\" c JOIN category cat ON cat.id = c.category_id "
        "WHERE c.published AND c.public_summary IS NOT NULL AND c.public_summary <> '' "
        f"AND c.received_on >= :d0 AND c.received_on < :d1 AND {db.in_units('c.unit_id')} "
        "ORDER BY CASE WHEN c.status = 'closed' THEN 0 ELSE 1 END, c.supports DESC, "
        "c.received_on, c.public_summary", **w.params())
    chosen: list[dict[str, Any]] = []
    seen: set[str] = set()
    for r in rows:  # one per category first, in the order above
        if len(chosen) < limit and str(r["category"]) not in seen:
            seen.add(str(r["category"]))
            chosen.append(r)
    for r in rows:
        if len(chosen) < limit and r not in chosen:
            chosen.append(r)
    order = {id(r): i for i, r in enumerate(rows)}
    chosen.sort(key=lambda r: order[id(r)])
    out = []
    for r in chosen:
        received = r["received_on"]
        day = received if isinstance(received, date) else date.fromisoformat(str(received)[:10])
        out.append(TypicalCase(
            number=_number(r["id"]), category=str(r["category"]),
            summary=str(r["summary"]).strip(), received=Month.of(day),
            status=STATUS_LABELS.get(str(r["status"]), str(r["status"])),
            unit=unit_names.get(_int(r["unit"]), "")))
    return out, len(rows)
