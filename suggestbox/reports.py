"""Monthly summary (月度汇总): figures computed with SQL aggregates, never by loading cases.

Every figure is one aggregate query (or a small histogram of integer day counts) over indexed
ranges: cases by ``received_on``, ``deadline`` or status, events by ``at``. Percentiles are
computed in Python from a ``GROUP BY days`` histogram, which is exact and portable.

Time: a month is the workshop's local calendar month. Staff actions are compared with the UTC
instants of local midnights. Local dates of instants are taken in SQL: exactly with
``AT TIME ZONE`` on PostgreSQL, and on SQLite with the zone's UTC offset in the middle of the month
(exact for zones without daylight saving time, such as Asia/Shanghai).

A past month stays put: every figure is derived from the append-only ``event`` table up to the
month's end (plus a case's fixed ``received_on``, category and team), never from a case's current
rating, status or ``responded_at``. What can still move is listed in ``MOVABLE`` and printed.
The one mutable input left is a case's current deadline (``case.deadline``): events do not record
it reliably, so 按时答复率 and 月末超期 follow a later 转办 with a new deadline or a 退回.

Small-group protection (DESIGN.md §1.6), by folding, never by hiding a cell that subtraction
could recover: in each team table a team with fewer than K cases received is folded into "其他";
while the folded teams' part of "其他" is still below K, the smallest named team is folded too.
The quarter and year tables (complete calendar periods) are also audited against every month and
quarter table inside them: a team is named there only if no team's count in any published period
(nor a named team's count minus its printed months), and no table's remaining "其他", can be
solved exactly to a value from 1 to K−1 (``_Audit``).

Months are in ``months.py``; the CSV and row exports in ``report_export.py`` (and ``xlsx.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from . import followthrough
from .cases import RULES, day_start, local_today
from .models import Category, ReportKept, Source, Team
from .months import Month, last_complete_quarter, last_complete_year

OPEN_SQL = "('new','accepted','in_progress')"
# Actions that change a case's status (the ones with a target in cases.RULES).
STATUS_ACTIONS_SQL = "(" + ",".join(
    sorted(f"'{name}'" for name, rule in RULES.items() if rule.target is not None)) + ")"
# Actions that respond to a new case (响应): accepting, rejecting, or merging it as a duplicate.
RESPONSE_SQL = "('accept','reject','merge')"
# The events the time histograms read: responses and answers (reply).
TIMED_SQL = "('accept','reject','merge','reply')"
LIST_LIMIT = 500
TREND_MONTHS = 12
# Kept figures (issue 19): the rows of a settled month's queries are stored (``ReportKept``) and
# read instead of recomputed when the month is printed again. A kept row's key holds the query's
# text, its parameters, the scope and this number: bump it whenever what a kept query's rows
# mean changes without its SQL text changing (a definition computed in Python, a new column
# read from the rows, …), and every kept month is computed afresh.
KEPT_VERSION = 1
KEEP = "keep"  # rows derived from events up to the month's end and fixed case fields
DEADLINES = "deadlines"  # rows that also read the cases' current deadlines (see _Db.rows)

TOTAL_LABELS: dict[str, str] = {
    "received": "收到",
    "accepted": "受理",
    "rejected": "不予受理",
    "answered": "答复",
    "closed": "办结",
    "open_at_end": "月末未办结",
    "overdue_at_end": "月末超期",
    "reopened": "不满意重办",
    "merged": "合并为重复",
    "supports": "我也遇到",
    "urges": "催办",
    "urged_cases": "被催办的案件",
    # 落实, adoption review and rewards (issue 18).
    "suggestions": "建议数",
    "reviewed": "采纳评审",
    "adopted": "采纳（含部分采纳）",
    "carried_out": "落实",
    "promises_overdue": "月末逾期承诺",
    "rewards_given": "奖励（件）",
    "reward_yuan_given": "奖励金额（元）",
    "reward_points_given": "奖励积分",
    "rewards_claimed": "奖励已领取（件）",
    "reward_yuan_claimed": "已领取金额（元）",
    "reward_points_claimed": "已领取积分",
    "rewards_team_fund": "奖励捐入班组基金（件）",
}
TOTAL_DEFINITIONS: dict[str, str] = {
    "received": "收到日期在本月的案件数。",
    "accepted": "本月有“受理”操作的案件数（同一案件只计一次）。",
    "rejected": "本月有“不予受理”操作的案件数。",
    "answered": "本月有“答复”操作的案件数（同一案件多次答复只计一次）。",
    "closed": "本月有“办结”操作的案件数。",
    "open_at_end": "月末（下月 1 日零时）处于待受理、已受理或办理中的案件数。",
    "overdue_at_end": "月末未办结、且办理期限早于下月 1 日的案件数（按案件当前的办理期限）。",
    "reopened": "本月提交人评价“不满意”、案件重新办理的次数。",
    "merged": "本月被合并为重复件的案件数。",
    "supports": "本月公示栏上“我也遇到”被按下的次数"
                "（每个浏览器每条只计一次；按天记录，不记录是谁）。",
    "urges": "本月提交人在查进度页按“催一下”的次数（超过办理期限后才能按，每件每天最多一次）。",
    "urged_cases": "本月至少被催办一次的案件数。",
    "suggestions": "收到日期在本月、需要采纳评审的案件数（“建议”类别，及管理员标记为需要采纳评审的"
                   "类别；按收到时类别的标记计，以后改标记不影响已收到的案件）。",
    "reviewed": "本月作出采纳评审（采纳、部分采纳或暂不采纳）的案件数；"
                "同一案件本月评审多次只计一次。",
    "adopted": "本月作出采纳评审的案件中，本月最后一次评审为采纳或部分采纳的件数"
               "（先采纳、同月又改为暂不采纳的不计）。",
    "carried_out": "本月有“落实”操作的案件数（每件只能落实一次）。",
    "promises_overdue": "月末（下月 1 日零时）已过承诺完成日期、仍未落实的案件数"
                        "（按月末以前最后一次承诺的日期；合并为重复件或不予受理的不计）。",
    "rewards_given": "首次确定奖励在本月、且到月末奖励仍有效（没有因改为暂不采纳而取消）的案件数。",
    "reward_yuan_given": "上一行案件中以“元”计的奖励，按月末的数额合计。",
    "reward_points_given": "上一行案件中以“积分”计的奖励，按月末的数额合计。",
    "rewards_claimed": "本月在领取处凭回执码领取奖励的案件数（只记日期，不记姓名）。",
    "reward_yuan_claimed": "本月领取的奖励中以“元”计的合计。",
    "reward_points_claimed": "本月领取的奖励中以“积分”计的合计。",
    "rewards_team_fund": "本月提交人选择捐入班组基金的奖励件数（不需要露面）。",
}
# What a total counts when it is not cases (the exports' 指标 column).
TOTAL_UNITS: dict[str, str] = {
    "reward_yuan_given": "金额（元）", "reward_points_given": "积分",
    "reward_yuan_claimed": "金额（元）", "reward_points_claimed": "积分",
}
RATE_LABELS: dict[str, str] = {
    "response": "响应率",
    "on_time": "按时答复率",
    "resolution": "解决率",
    "satisfaction": "满意率",
    "adoption": "采纳率",
    "carried_out": "落实率",
}


def rate_definitions(limit_days: int) -> dict[str, str]:
    return {
        "response": (
            f"本月收到的案件中，收到后 {limit_days} 天内（首次受理、不予受理或合并为重复件的日期 − "
            f"收到日期 ≤ {limit_days}）得到响应的件数 ÷ 本月收到的件数。合并为重复件也是响应。"
        ),
        "on_time": (
            "办理期限在本月的案件中，在期限当天或之前作出答复的件数 ÷ 办理期限在本月的件数；"
            "期限当天或之前已合并为重复件的不计入。按案件当前的办理期限计。"
            "称“答复”不称“办结”：办结要等提交人评价或评价期满，不由承办人决定。"
        ),
        "resolution": (
            "本月办结的案件中（一件在本月多次办结的以最后一次为准），办结前最后一次评价为满意或"
            "基本满意的件数，加上办结前从未评价（评价期满后办结）的件数 ÷ 本月办结的件数。"
            "评价过“不满意”、此后未再评价就办结的不计为解决，中间是否重新办理都一样。"
        ),
        "satisfaction": (
            "本月作出评价的案件中（同一案件以本月最后一次评价为准），"
            "（满意 + 基本满意）件数 ÷ 评价件数。"
        ),
        "adoption": (
            "本月作出采纳评审的案件中，本月最后一次评审为采纳或部分采纳的件数 ÷ 本月评审的件数"
            "（即“采纳”÷“采纳评审”）。"
        ),
        "carried_out": (
            "承诺完成日期在本月的承诺中，在承诺日期当天或之前落实的个数 ÷ "
            "承诺完成日期在本月的承诺个数。"
            "每次承诺都计：把承诺日期往后改，原来那次承诺到期未落实仍计为未按期落实。"
            "承诺日期当天或之前已合并为重复件（或不予受理）的不计入。"
        ),
    }


TIME_DEFINITIONS = {
    "accept": "本月首次响应（受理、不予受理或合并为重复件）的案件：响应日期 − 收到日期（天）。",
    "answer": "本月首次答复的案件：首次答复日期 − 收到日期（天）。",
}
PERCENTILE_NOTE = "中位数与第 90 百分位数按线性插值计算（与 PostgreSQL percentile_cont 相同）。"


# ---- result types ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Rate:
    num: int
    den: int

    @property
    def value(self) -> float | None:
        return None if self.den == 0 else self.num / self.den

    @property
    def display(self) -> str:
        """"—" for a zero denominator, never 0% or 100%."""
        v = self.value
        return "—" if v is None else f"{v * 100:.1f}%"

    def as_dict(self) -> dict[str, Any]:
        return {"num": self.num, "den": self.den, "value": self.value, "display": self.display}


@dataclass
class Figures:
    month: Month
    totals: dict[str, int]
    rates: dict[str, Rate]
    # (category id, team id, "reply" | "close", cases): the breakdowns' answered and closed.
    activity: list[tuple[Any, Any, str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Spread:
    n: int
    median: float | None
    p90: float | None

    @staticmethod
    def fmt(v: float | None) -> str:
        if v is None:
            return "—"
        return f"{v:.0f}" if v == int(v) else f"{v:.1f}"

    @property
    def median_display(self) -> str:
        return self.fmt(self.median)

    @property
    def p90_display(self) -> str:
        return self.fmt(self.p90)


@dataclass
class Group:
    key: str
    label: str
    received: int = 0
    answered: int | None = 0  # None: not shown (quarter and year tables count received only)
    closed: int | None = 0
    folded_teams: int = 0


@dataclass
class TeamTable:
    """One team breakdown: the month's, or a complete calendar quarter's or year's."""

    kind: str  # month | quarter | year
    period: str  # 2026-03 | 2026-Q1 | 2025
    label: str
    rows: list[Group]  # named teams, then 其他 (absent when empty)
    total: int

    @property
    def named(self) -> int:
        return sum(1 for g in self.rows if g.key != "other")


@dataclass
class ListedCase:
    number: str
    category: str
    summary: str  # the public summary, or "" when not published
    answer: str  # the full answer when published, else its first line only
    received_on: date
    answered_on: date
    days: int
    unit: int = 0  # Case.unit (the depot's list names the workshop)


@dataclass
class TrendPoint:
    month: Month
    received: int
    answered: int


@dataclass
class Report:
    month: Month
    figures: Figures
    previous: Figures
    accept_times: Spread
    answer_times: Spread
    by_category: list[Group]
    by_source: list[Group]
    by_team: list[Group]
    team_periods: list[TeamTable]
    cases: list[ListedCase]
    cases_total: int
    trend: list[TrendPoint]
    timezone: str
    response_limit_days: int
    small_group_k: int
    rating_window_days: int
    generated_at: datetime
    complete: bool  # the month has ended
    definitions: dict[str, str] = field(default_factory=dict)
    movable: list[str] = field(default_factory=list)

    def delta(self, name: str) -> str:
        d = self.figures.totals[name] - self.previous.totals[name]
        return f"{d:+d}" if d else "0"

    def rate_delta(self, name: str) -> str:
        a, b = self.figures.rates[name].value, self.previous.rates[name].value
        if a is None or b is None:
            return "—"
        d = round((a - b) * 100, 1)
        return "0" if d == 0 else f"{d:+.1f} 个百分点"

    def as_dict(self) -> dict[str, Any]:
        def fig(f: Figures) -> dict[str, Any]:
            return {"month": str(f.month), "totals": f.totals,
                    "rates": {k: r.as_dict() for k, r in f.rates.items()}}

        def grp(g: Group) -> dict[str, Any]:
            return asdict(g)

        return {
            "month": str(self.month),
            "complete": self.complete,
            "timezone": self.timezone,
            "settings": {"response_limit_days": self.response_limit_days,
                         "small_group_k": self.small_group_k,
                         "rating_window_days": self.rating_window_days},
            "current": fig(self.figures),
            "previous": fig(self.previous),
            "times": {"accept": asdict(self.accept_times), "answer": asdict(self.answer_times)},
            "by_category": [grp(g) for g in self.by_category],
            "by_source": [grp(g) for g in self.by_source],
            "by_team": [grp(g) for g in self.by_team],
            "team_periods": [{"kind": t.kind, "period": t.period, "label": t.label,
                              "total": t.total, "rows": [grp(g) for g in t.rows]}
                             for t in self.team_periods],
            "cases_total": self.cases_total,
            "cases": [
                {**{k: v for k, v in asdict(c).items() if k != "unit"},
                 "received_on": c.received_on.isoformat(),
                 "answered_on": c.answered_on.isoformat()} for c in self.cases
            ],
            "trend": [{"month": str(t.month), "received": t.received, "answered": t.answered}
                      for t in self.trend],
            "definitions": self.definitions,
            "movable": self.movable,
            "generated_at": self.generated_at.isoformat(),
        }


def movable(month: Month, limit_days: int, today: date) -> list[str]:
    """Which figures of ``month`` can still change after ``today``, and why (printed)."""
    end = month.next().first
    if today < end:
        return ["本月尚未结束：所有数字截至生成时，以后还会变。"]
    settled = end + timedelta(days=limit_days)
    response = (f"响应率：本月最后 {limit_days} 天收到的案件可在下月初得到响应，"
                f"{settled.isoformat()} 起不再变化")
    response += "（已确定）。" if today >= settled else "（尚未确定）。"
    return [
        "其余数字只由月末以前发生的操作（事件记录）算出，以后重印不变。",
        response,
        "按时答复率、月末超期：按案件当前的办理期限计算（事件记录中没有可靠的期限历史）；"
        "以后转办时改了期限、或退回（会清除期限）的案件会使这两个数变化。",
        "案件清单中的公示摘要按生成时的公示状态显示（它不是数字）。",
    ]


# ---- percentiles ----------------------------------------------------------------------------

def percentile(histogram: Mapping[int, int], p: float) -> float | None:
    """Linear-interpolation percentile (PostgreSQL percentile_cont) of a {value: count} map."""
    n = sum(histogram.values())
    if n == 0:
        return None
    pos = p * (n - 1)
    lo_rank = int(pos)
    hi_rank = min(lo_rank + 1, n - 1)

    def kth(rank: int) -> int:
        seen = 0
        for value in sorted(histogram):
            seen += histogram[value]
            if rank < seen:
                return value
        raise AssertionError("rank out of range")  # pragma: no cover

    lo, hi = kth(lo_rank), kth(hi_rank)
    return lo + (hi - lo) * (pos - lo_rank)


def spread(histogram: Mapping[int, int]) -> Spread:
    return Spread(sum(histogram.values()), percentile(histogram, 0.5), percentile(histogram, 0.9))


# ---- SQL ------------------------------------------------------------------------------------

_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


class _Db:
    """A thin layer over the raw connection: named parameters, dialect snippets."""

    def __init__(self, conn: BaseDBAsyncClient, tz: ZoneInfo, offset_minutes: int,
                 units: Iterable[int], *, settled: bool = False,
                 pending: dict[str, str] | None = None) -> None:
        self.conn = conn
        self.pg = conn.capabilities.dialect == "postgres"
        self.tz = tz
        self.offset = f"{offset_minutes:+d} minutes"
        self.units = tuple(sorted({int(u) for u in units}))
        # The month can no longer move (``settled``): queries marked KEEP or DEADLINES read and
        # write kept rows; new ones wait in ``pending`` until the snapshot is over (``_keep``).
        self.settled = settled
        self.pending: dict[str, str] = {} if pending is None else pending
        self._deadline_prints: dict[str, int] = {}

    def in_units(self, col: str) -> str:
        """``col IN (…)`` over the scope's unit ids: integers only, so a safe literal."""
        if not self.units:
            return "1 = 0"
        return f"{col} IN ({','.join(str(int(u)) for u in self.units)})"

    def local_date(self, col: str) -> str:
        if self.pg:
            return f"(({col}) AT TIME ZONE :tz)::date"
        return f"date({col}, :off)"

    def days(self, later: str, earlier: str) -> str:
        if self.pg:
            return f"({later} - {earlier})"
        return f"CAST(ROUND(julianday({later}) - julianday({earlier})) AS INTEGER)"

    def month_of(self, day_expr: str) -> str:
        if self.pg:
            return f"to_char({day_expr}, 'YYYY-MM')"
        return f"strftime('%Y-%m', {day_expr})"

    def _value(self, v: Any) -> Any:
        if self.pg:
            return v
        if isinstance(v, datetime):
            return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")
        if isinstance(v, date):
            return v.isoformat()
        return v

    async def rows(self, sql: str, keep: str | None = None, **params: Any
                   ) -> list[dict[str, Any]]:
        """The query's rows. ``keep`` (KEEP or DEADLINES) marks a query whose rows cannot change
        once its month is settled; in a settled month they are kept and read back.

        DEADLINES rows also read the cases' current deadlines. Those still change after the
        month, but only one way: a deadline is never set to a day already past, so once the
        month is over a case can leave the set "deadline before the month's end" (a 转办 with a
        later deadline, a 退回 that clears it) and never join it, and its deadline cannot change
        while in it. The number of the scope's cases in that set therefore changes exactly when
        what these rows read changes, and is part of their key.
        """
        params.setdefault("tz", self.tz.key)
        params.setdefault("off", self.offset)
        key = None
        if keep and self.settled:
            extra = await self._deadline_print(params["d1"]) if keep == DEADLINES else ""
            key = self._key(sql, params, extra)
            found = await self._raw(self._kept_sql(), [key])
            if found:
                return list(json.loads(str(found[0]["rows"])))
        rows = await self._raw(sql, params)
        if key is None:
            return rows
        text = json.dumps(rows, default=_jsonable, ensure_ascii=False)
        self.pending[key] = text
        return list(json.loads(text))  # the same values a later print reads back

    def _kept_sql(self) -> str:
        return "SELECT rows FROM report_kept WHERE key = " + (  # noqa: S608
            "$1" if self.pg else "?")

    def _key(self, sql: str, params: Mapping[str, Any], extra: str) -> str:
        parts = [KEPT_VERSION, self.pg, sql, sorted((k, str(v)) for k, v in params.items()),
                 self.units, extra]
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()

    async def _deadline_print(self, d1: date) -> str:
        tag = d1.isoformat()
        if tag not in self._deadline_prints:
            row = await self._raw(
                'SELECT COUNT(*) AS n FROM "case" WHERE deadline < :d1 '  # noqa: S608
                f"AND {self.in_units('unit_id')}", {"d1": d1})
            self._deadline_prints[tag] = _int(row[0]["n"]) if row else 0
        return f"deadlines<{tag}:{self._deadline_prints[tag]}"

    async def _raw(self, sql: str, params: Mapping[str, Any] | list[Any]
                   ) -> list[dict[str, Any]]:
        if isinstance(params, list):
            return list(await self.conn.execute_query_dict(sql, params))
        order: list[str] = []

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if self.pg:
                if name not in order:
                    order.append(name)
                return f"${order.index(name) + 1}"
            order.append(name)
            return "?"

        text = _PARAM.sub(sub, sql)
        values = [self._value(params[name]) for name in order]
        return list(await self.conn.execute_query_dict(text, values))

    async def one(self, sql: str, **params: Any) -> dict[str, Any]:
        rows = await self.rows(sql, **params)
        return rows[0] if rows else {}


def _int(v: Any) -> int:
    return int(v or 0)


def _jsonable(v: Any) -> Any:
    """Kept rows as JSON: aggregates (Decimal on PostgreSQL) as numbers, days as ISO text."""
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, date | datetime):
        return v.isoformat()
    return str(v)


def settled(month: Month, limit_days: int, today: date) -> bool:
    """No figure of ``month`` read by a KEEP query can change after ``today`` (``movable``:
    the month is over and its response rate is final)."""
    return today >= month.next().first + timedelta(days=limit_days)


async def _keep(pending: Mapping[str, str], today: date, connection: str = "default") -> None:
    """Store the rows computed for settled months (after the read-only snapshot). Two workers
    printing the same month at once store the same rows once."""
    if pending:
        await ReportKept.bulk_create(
            [ReportKept(key=k, rows=v, kept_on=today) for k, v in pending.items()],
            ignore_conflicts=True, using_db=connections.get(connection))


def _date(v: Any) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


def _number(v: Any) -> str:
    return (v.hex if isinstance(v, uuid.UUID) else str(v).replace("-", ""))[:8].upper()


@dataclass(frozen=True)
class _Window:
    d0: date
    d1: date
    t0: datetime
    t1: datetime

    @classmethod
    def of(cls, month: Month, tz: ZoneInfo, months: int = 1) -> _Window:
        start = month.minus(months - 1)
        d0, d1 = start.first, month.next().first
        return cls(d0, d1, day_start(d0, tz).astimezone(UTC), day_start(d1, tz).astimezone(UTC))

    def params(self) -> dict[str, Any]:
        return {"d0": self.d0, "d1": self.d1, "t0": self.t0, "t1": self.t1}


def _sum_figures(month: Month, parts: Iterable[Figures]) -> Figures:
    """Figures are additive over units: counts sum, rates sum numerators and denominators."""
    totals = {name: 0 for name in TOTAL_LABELS}
    nums = {name: [0, 0] for name in RATE_LABELS}
    activity: list[tuple[Any, Any, str, int]] = []
    for f in parts:
        for name, v in f.totals.items():
            totals[name] += v
        for name, r in f.rates.items():
            nums[name][0] += r.num
            nums[name][1] += r.den
        activity.extend(f.activity)
    return Figures(month, totals, {k: Rate(a, b) for k, (a, b) in nums.items()}, activity)


async def _figures(db: _Db, month: Month, limit_days: int) -> Figures:
    return _sum_figures(month, (await _figures_by_unit(db, month, limit_days)).values())


async def _figures_by_unit(db: _Db, month: Month, limit_days: int) -> dict[int, Figures]:
    """The month's figures of every unit in ``db.units``: each query is grouped by unit, so a
    depot of 50 workshops costs the same few queries as one workshop."""
    w = _Window.of(month, db.tz)
    p = w.params()
    scope = db.in_units("c.unit_id")
    # What staff and submitters did in the month, by unit, action, category and team: one pass
    # over the month's events.
    cells = await db.rows(
        "SELECT c.unit_id AS unit, e.action AS action, c.category_id AS cat, "  # noqa: S608
        "c.team_id AS team, COUNT(DISTINCT e.case_id) AS cases, COUNT(*) AS n "
        "FROM event e JOIN \"case\" c ON c.id = e.case_id WHERE e.at >= :t0 AND e.at < :t1 "
        f"AND {scope} "
        "AND e.action IN ('accept','reject','reply','close','rate_unsatisfied','merge','urge') "
        "GROUP BY 1, 2, 3, 4", keep=KEEP, **p)
    acted: dict[int, dict[str, list[int]]] = {}
    for r in cells:
        cell = acted.setdefault(_int(r["unit"]), {}).setdefault(str(r["action"]), [0, 0])
        cell[0] += _int(r["cases"])  # one unit, category and team per case: groups are disjoint
        cell[1] += _int(r["n"])
    # Responded within the limit: any accept, reject or merge event dated (local) no more than
    # ``lim`` days after the case arrived. Later events can never count, so the figure is
    # final ``lim`` days after the month ends.
    got = await db.rows(
        "SELECT c.unit_id AS unit, COUNT(*) AS received, SUM(CASE WHEN EXISTS ("  # noqa: S608
        f"SELECT 1 FROM event e WHERE e.case_id = c.id AND e.action IN {RESPONSE_SQL} AND "
        f"{db.days(db.local_date('e.at'), 'c.received_on')} <= :lim) THEN 1 ELSE 0 END) "
        'AS responded FROM "case" c WHERE c.received_on >= :d0 AND c.received_on < :d1 '
        f"AND {scope} GROUP BY c.unit_id", lim=limit_days, keep=KEEP, **p)
    # Open at month end: open now and no status change since; or the first status change
    # since then started from an open status (events keep from_status). A status change is an
    # event with a to_status, which only the status actions write (cases.apply, submit): the
    # action filter is implied and lets both sides read the index event(action, at, case_id).
    end = await db.rows(
        "SELECT s.unit AS unit, COUNT(*) AS open_n, "  # noqa: S608
        "SUM(CASE WHEN s.deadline < :d1 THEN 1 ELSE 0 END) AS late "
        "FROM (SELECT c.unit_id AS unit, c.deadline AS deadline FROM \"case\" c "
        f"WHERE c.status IN {OPEN_SQL} AND c.received_on < :d1 AND {scope} "
        "AND NOT EXISTS (SELECT 1 FROM event x "
        f"WHERE x.case_id = c.id AND x.action IN {STATUS_ACTIONS_SQL} AND x.at >= :t1 "
        "AND x.to_status IS NOT NULL) "
        "UNION ALL SELECT c.unit_id AS unit, c.deadline AS deadline FROM event e "
        f"JOIN \"case\" c ON c.id = e.case_id WHERE e.action IN {STATUS_ACTIONS_SQL} "
        "AND e.at >= :t1 AND e.to_status IS NOT NULL "
        f"AND e.from_status IN {OPEN_SQL} AND c.received_on < :d1 AND {scope} "
        "AND NOT EXISTS (SELECT 1 FROM event x WHERE x.case_id = e.case_id "
        f"AND x.action IN {STATUS_ACTIONS_SQL} AND x.at >= :t1 "
        "AND x.to_status IS NOT NULL AND x.seq < e.seq)) s GROUP BY s.unit", keep=DEADLINES, **p)
    # On time: an answer dated (local) on or before the deadline. A deadline is never set to a
    # day already past, so every answer that counts happened by the month's end.
    due = await db.rows(
        "SELECT c.unit_id AS unit, COUNT(*) AS due, SUM(CASE WHEN EXISTS ("  # noqa: S608
        "SELECT 1 FROM event e WHERE e.case_id = c.id AND e.action = 'reply' AND "
        f"{db.local_date('e.at')} <= c.deadline) THEN 1 ELSE 0 END) AS ok "
        "FROM \"case\" c WHERE c.deadline >= :d0 AND c.deadline < :d1 "
        f"AND {scope} AND NOT EXISTS ("
        "SELECT 1 FROM event m WHERE m.case_id = c.id AND m.action = 'merge' AND "
        f"{db.local_date('m.at')} <= c.deadline) GROUP BY c.unit_id", keep=DEADLINES, **p)
    # Resolved: the last rating before the case's last close in the month was 满意/基本满意,
    # or it was never rated. Read from the events, never from the case's current rating (a
    # reopen clears that, which let 不满意 → reopen → close count as resolved).
    closed = await db.rows(
        # good: the last rating is 'rate' or there is none (COALESCE), written so that the
        # sub-query runs once per close (a derived column used twice ran it twice).
        "SELECT s.unit AS unit, COUNT(*) AS n, SUM(s.good) AS good "  # noqa: S608
        "FROM (SELECT c.unit_id AS unit, CASE WHEN COALESCE((SELECT r.action FROM event r "
        "WHERE r.case_id = e.case_id "
        "AND r.action IN ('rate','rate_unsatisfied') AND r.seq < e.seq "
        "ORDER BY r.seq DESC LIMIT 1), 'rate') = 'rate' THEN 1 ELSE 0 END AS good "
        "FROM event e JOIN \"case\" c ON c.id = e.case_id "
        f"WHERE e.action = 'close' AND e.at >= :t0 AND e.at < :t1 AND {scope} "
        "AND NOT EXISTS (SELECT 1 FROM event x "
        "WHERE x.case_id = e.case_id AND x.action = 'close' AND x.at >= :t0 AND x.at < :t1 "
        "AND x.seq > e.seq)) s GROUP BY s.unit", keep=KEEP, **p)
    rated: dict[int, dict[str, int]] = {}
    for r in await db.rows(
        # The last rating of each case in the month.
        "SELECT c.unit_id AS unit, CASE WHEN e.action = 'rate_unsatisfied' "  # noqa: S608
        "THEN 'unsatisfied' WHEN e.body LIKE '基本满意%' THEN 'basic' ELSE 'satisfied' END AS r, "
        "COUNT(*) AS n FROM (SELECT case_id AS cid, MAX(seq) AS last FROM event WHERE action IN "
        "('rate','rate_unsatisfied') AND at >= :t0 AND at < :t1 GROUP BY case_id) m "
        "JOIN event e ON e.case_id = m.cid AND e.seq = m.last "
        f"JOIN \"case\" c ON c.id = m.cid WHERE {scope} GROUP BY 1, 2", keep=KEEP, **p
    ):
        rated.setdefault(_int(r["unit"]), {})[str(r["r"])] = _int(r["n"])

    def by_unit(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        return {_int(r["unit"]): r for r in rows}

    got_u, end_u, due_u, closed_u = by_unit(got), by_unit(end), by_unit(due), by_unit(closed)
    follow = await _followthrough_by_unit(db, w)
    # 我也遇到 presses on days in the month (stored per day, never finer).
    supported = {_int(r["unit"]): _int(r["n"]) for r in await db.rows(
        "SELECT c.unit_id AS unit, SUM(s.count) AS n FROM support s "  # noqa: S608
        f"JOIN \"case\" c ON c.id = s.case_id WHERE s.day >= :d0 AND s.day < :d1 AND {scope} "
        "GROUP BY c.unit_id", keep=KEEP, **p)}
    out: dict[int, Figures] = {}
    for unit in db.units:
        a = acted.get(unit, {})
        g, e, d, c, rt = (got_u.get(unit, {}), end_u.get(unit, {}), due_u.get(unit, {}),
                          closed_u.get(unit, {}), rated.get(unit, {}))
        received = _int(g.get("received"))
        totals = {
            "received": received,
            "accepted": a.get("accept", [0, 0])[0],
            "rejected": a.get("reject", [0, 0])[0],
            "answered": a.get("reply", [0, 0])[0],
            "closed": a.get("close", [0, 0])[0],
            "open_at_end": _int(e.get("open_n")),
            "overdue_at_end": _int(e.get("late")),
            "reopened": a.get("rate_unsatisfied", [0, 0])[1],
            "merged": a.get("merge", [0, 0])[0],
            "supports": supported.get(unit, 0),
            "urges": a.get("urge", [0, 0])[1],
            "urged_cases": a.get("urge", [0, 0])[0],
            **follow.get(unit, _FollowUnit()).totals(),
        }
        rates = {
            "response": Rate(_int(g.get("responded")), received),
            "on_time": Rate(_int(d.get("ok")), _int(d.get("due"))),
            "resolution": Rate(_int(c.get("good")), _int(c.get("n"))),
            "satisfaction": Rate(rt.get("satisfied", 0) + rt.get("basic", 0), sum(rt.values())),
            **follow.get(unit, _FollowUnit()).rates(),
        }
        activity = [(r["cat"], r["team"], str(r["action"]), _int(r["cases"])) for r in cells
                    if _int(r["unit"]) == unit and r["action"] in ("reply", "close")]
        out[unit] = Figures(month, totals, rates, activity)
    return out


# ---- 落实, adoption review and rewards (issue 18) ---------------------------------------------

REVIEW_SQL = "(" + ",".join(f"'{a}'" for a in followthrough.ADOPTION_LABELS) + ")"


@dataclass
class _FollowUnit:
    counts: dict[str, int] = field(default_factory=dict)
    promises_due: int = 0
    promises_kept: int = 0

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def totals(self) -> dict[str, int]:
        names = ("suggestions", "reviewed", "adopted", "carried_out", "promises_overdue",
                 "rewards_given", "reward_yuan_given", "reward_points_given", "rewards_claimed",
                 "reward_yuan_claimed", "reward_points_claimed", "rewards_team_fund")
        return {n: self.counts.get(n, 0) for n in names}

    def rates(self) -> dict[str, Rate]:
        return {"adoption": Rate(self.counts.get("adopted", 0), self.counts.get("reviewed", 0)),
                "carried_out": Rate(self.promises_kept, self.promises_due)}


async def _followthrough_by_unit(db: _Db, w: _Window) -> dict[int, _FollowUnit]:
    """建议数, 采纳评审, 采纳, 落实, promises (落实率, overdue at month end) and rewards, per unit.

    Only events up to the month's end are read (and ``received_on`` and the case's adoption
    flag, fixed when it arrived), so a past month prints the same numbers again, and a settled
    month's rows are kept (issue 19: the count of 建议 read the month's cases on every print).
    Reviews, promises and rewards are few (a depot reports hundreds a year): the event rows are
    read and folded here rather than in SQL."""
    p = w.params()
    scope = db.in_units("c.unit_id")
    out: dict[int, _FollowUnit] = {u: _FollowUnit() for u in db.units}

    def unit(r: dict[str, Any]) -> _FollowUnit:
        return out.setdefault(_int(r["unit"]), _FollowUnit())

    for r in await db.rows(
        "SELECT c.unit_id AS unit, COUNT(*) AS n FROM \"case\" c "  # noqa: S608
        "WHERE c.adoption_review = TRUE AND c.received_on >= :d0 AND c.received_on < :d1 "
        f"AND {scope} GROUP BY c.unit_id", keep=KEEP, **p):
        unit(r).add("suggestions", _int(r["n"]))
    # Every event of the cases that have a promise, a review or a reward, up to the month's
    # end, in each case's order.
    rows = await db.rows(
        "SELECT c.unit_id AS unit, e.case_id AS cid, e.seq AS seq, e.action AS action, "  # noqa: S608
        f"e.detail AS detail, {db.local_date('e.at')} AS day, "
        "CASE WHEN e.at >= :t0 THEN 1 ELSE 0 END AS in_month "
        "FROM event e JOIN \"case\" c ON c.id = e.case_id WHERE e.at < :t1 "
        f"AND {scope} AND e.action IN ('promise','carry_out','merge','reject','reward',"
        f"'reward_claim','reward_donate','adopt','adopt_partial','decline') "
        "AND EXISTS (SELECT 1 FROM event x WHERE x.case_id = e.case_id AND x.action IN "
        "('promise','carry_out','reward','adopt','adopt_partial','decline') AND x.at < :t1) "
        "ORDER BY e.case_id, e.seq", keep=KEEP, **p)
    by_case: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        by_case.setdefault(r["cid"], []).append(r)
    for events in by_case.values():
        _fold_case(unit(events[0]), events, w)
    return out


def _fold_case(u: _FollowUnit, events: list[dict[str, Any]], w: _Window) -> None:
    def month(e: dict[str, Any]) -> bool:
        return bool(_int(e["in_month"]))

    reviews = [e for e in events if e["action"] in followthrough.ADOPTION_LABELS]
    in_month = [e for e in reviews if month(e)]
    if in_month:
        u.add("reviewed")
        if in_month[-1]["action"] in followthrough.ADOPTED:
            u.add("adopted")
    done = next((e for e in events if e["action"] == "carry_out"), None)
    if done is not None and month(done):
        u.add("carried_out")
    done_day = _date(done["day"]) if done is not None else None
    promises = [(e, followthrough.parse_promise(e["detail"])) for e in events
                if e["action"] == "promise"]
    ended_on = next((_date(e["day"]) for e in events if e["action"] in ("merge", "reject")),
                    None)
    for _, day in promises:
        if ended_on is not None and day is not None and ended_on <= day:
            continue  # merged as a duplicate (or rejected) by then: the promise lapsed
        if day is not None and w.d0 <= day < w.d1:
            u.promises_due += 1
            if done_day is not None and done_day <= day:
                u.promises_kept += 1
    last_day = promises[-1][1] if promises else None
    if last_day is not None and last_day < w.d1 and done is None and ended_on is None:
        u.add("promises_overdue")
    # Rewards: the standing reward at the month's end (a later review of 暂不采纳 cancels an
    # unclaimed one), counted in the month of the case's first reward.
    amount: tuple[int, str] | None = None
    first_reward: dict[str, Any] | None = None
    for e in events:
        if e["action"] == "reward":
            amount = followthrough.parse_reward(e["detail"])
            first_reward = first_reward or e
        elif e["action"] == "decline" and amount is not None:
            amount = None
        elif e["action"] in ("reward_claim", "reward_donate") and month(e) and amount:
            if e["action"] == "reward_donate":
                u.add("rewards_team_fund")
            else:
                u.add("rewards_claimed")
                u.add(f"reward_{amount[1]}_claimed", amount[0])
    if first_reward is not None and month(first_reward) and amount is not None:
        u.add("rewards_given")
        u.add(f"reward_{amount[1]}_given", amount[0])


async def _times(db: _Db, w: _Window) -> tuple[Spread, Spread]:
    accept: dict[int, int] = {}
    answer: dict[int, int] = {}
    for a, b in (await _time_histograms(db, w)).values():
        _merge_hist(accept, a)
        _merge_hist(answer, b)
    return spread(accept), spread(answer)


def _merge_hist(into: dict[int, int], h: Mapping[int, int]) -> None:
    for k, v in h.items():
        into[k] = into.get(k, 0) + v


Histogram = dict[int, int]


async def _time_histograms(db: _Db, w: _Window) -> dict[int, tuple[Histogram, Histogram]]:
    """Per unit: {days: cases} to the first response and to the first answer, for the cases
    whose first such event falls in the month (histograms add up over units)."""
    p = w.params()
    out: dict[int, tuple[Histogram, Histogram]] = {u: ({}, {}) for u in db.units}
    # One pass over the month's response and reply events (one join with the cases): kind 0 is
    # a response (accept, reject, merge), kind 1 an answer (reply); an event counts when no
    # earlier event of the same kind exists for its case (its first such event).
    rows = await db.rows(
        "SELECT c.unit_id AS unit, CASE WHEN e.action = 'reply' THEN 1 ELSE 0 END AS k, "  # noqa: S608
        f"{db.days(db.local_date('e.at'), 'c.received_on')} AS d, COUNT(*) AS n "
        f"FROM event e JOIN \"case\" c ON c.id = e.case_id WHERE e.action IN {TIMED_SQL} "
        f"AND e.at >= :t0 AND e.at < :t1 AND {db.in_units('c.unit_id')} "
        "AND NOT EXISTS (SELECT 1 FROM event x WHERE x.case_id = e.case_id "
        f"AND x.action IN {TIMED_SQL} AND x.seq < e.seq "
        "AND (CASE WHEN x.action = 'reply' THEN 1 ELSE 0 END) "
        "= (CASE WHEN e.action = 'reply' THEN 1 ELSE 0 END)) GROUP BY 1, 2, 3",
        keep=KEEP, **p)
    for r in rows:
        hist = out.setdefault(_int(r["unit"]), ({}, {}))[_int(r["k"])]
        d = _int(r["d"])
        hist[d] = hist.get(d, 0) + _int(r["n"])
    return out


async def _breakdowns(db: _Db, w: _Window, k: int, activity: list[tuple[Any, Any, str, int]]
                      ) -> tuple[list[Group], list[Group]]:
    p = w.params()
    cells: list[tuple[Any, Any, str, int]] = []
    for r in await db.rows(
        "SELECT category_id AS cat, team_id AS team, COUNT(*) AS n FROM \"case\" "  # noqa: S608
        f"WHERE received_on >= :d0 AND received_on < :d1 AND {db.in_units('unit_id')} "
        "GROUP BY category_id, team_id", keep=KEEP, **p
    ):
        cells.append((r["cat"], r["team"], "received", _int(r["n"])))
    for cat, team, action, n in activity:
        cells.append((cat, team, "answered" if action == "reply" else "closed", n))
    categories = await Category.all()
    by_cat = {c.id: Group(f"c{c.id}", c.name) for c in categories}
    # Only the scope's teams: a case naming another unit's team (a desk case) counts as none.
    teams = await Team.filter(workshop_id__in=list(db.units))
    by_team = {t.id: Group(f"t{t.id}", t.name) for t in teams}
    no_team = Group("none", "未指明班组")
    for cat, team, name, n in cells:
        g = by_cat.setdefault(_int(cat), Group(f"c{cat}", f"类别 {cat}"))
        setattr(g, name, getattr(g, name) + n)
        t = by_team.get(_int(team), no_team) if team else no_team
        setattr(t, name, getattr(t, name) + n)
    own = {None, *db.units}
    cat_rows = [g for c in categories for g in [by_cat[c.id]]
                if (c.active and c.workshop_id in own) or _any(g)]  # type: ignore[attr-defined]
    cat_rows += [g for key, g in by_cat.items() if key not in {c.id for c in categories}]
    named = _name_teams({tid: g.received for tid, g in by_team.items()}, k)
    return cat_rows, _team_rows(by_team, named, no_team)


async def _by_source(db: _Db, w: _Window) -> list[Group]:
    """Received (by received day), answered and closed (by the month's events) per source
    (来源): 扫码, 纸质意见箱, 谈心, …. Sources are channels, not groups of people: not folded."""
    p = w.params()
    scope = db.in_units("c.unit_id")
    sources = await Source.all()
    groups = {src.id: Group(f"s{src.id}", src.name) for src in sources}
    for r in await db.rows(
        "SELECT c.source_id AS src, COUNT(*) AS n FROM \"case\" c WHERE "  # noqa: S608
        f"c.received_on >= :d0 AND c.received_on < :d1 AND {scope} GROUP BY c.source_id",
        keep=KEEP, **p
    ):
        g = groups.setdefault(_int(r["src"]), Group(f"s{r['src']}", "未注明来源"))
        g.received += _int(r["n"])
    for r in await db.rows(
        "SELECT c.source_id AS src, e.action AS action, COUNT(DISTINCT e.case_id) AS n "  # noqa: S608
        "FROM event e JOIN \"case\" c ON c.id = e.case_id WHERE e.action IN ('reply', 'close') "
        f"AND e.at >= :t0 AND e.at < :t1 AND {scope} GROUP BY c.source_id, e.action", keep=KEEP, **p
    ):
        g = groups.setdefault(_int(r["src"]), Group(f"s{r['src']}", "未注明来源"))
        if r["action"] == "reply":
            g.answered = (g.answered or 0) + _int(r["n"])
        else:
            g.closed = (g.closed or 0) + _int(r["n"])
    active = {src.id for src in sources if src.active}
    return [g for key, g in groups.items() if key in active or _any(g)]


def _team_rows(by_team: Mapping[int, Group], named: set[int], no_team: Group) -> list[Group]:
    """Named teams in table order, then 其他: every other team and the cases without one."""
    shown = [g for tid, g in by_team.items() if tid in named]
    other = Group("other", "其他", answered=None if no_team.answered is None else 0,
                  closed=None if no_team.closed is None else 0)
    for tid, g in by_team.items():
        if tid not in named and _any(g):
            other.folded_teams += 1
            _add(other, g)
    _add(other, no_team)
    return shown + ([other] if _any(other) else [])


def _add(into: Group, g: Group) -> None:
    into.received += g.received
    if into.answered is not None:
        into.answered += g.answered or 0
    if into.closed is not None:
        into.closed += g.closed or 0


def _any(g: Group) -> bool:
    return bool(g.received or g.answered or g.closed)


# ---- small-group protection ------------------------------------------------------------------

def _name_teams(counts: Mapping[int, int], k: int, fold: Iterable[int] = ()) -> set[int]:
    """Teams a table may name: K or more cases received, and (secondary protection against
    subtraction from the printed totals) the folded teams' part of "其他" is 0 or at least K,
    folding the smallest named teams too until it is. ``fold``: teams folded in any case."""
    forced = set(fold)
    named = {t for t, v in counts.items() if v >= k and t not in forced}
    folded = sum(v for t, v in counts.items() if t not in named)
    while 0 < folded < k and named:
        smallest = min(named, key=lambda t: (counts[t], t))
        named.discard(smallest)
        folded += counts[smallest]
    return named


Cell = tuple[int, Month]


class _Audit:
    """What an adversary can solve exactly from published team tables.

    Each table is a set of linear equations over the hidden team-month counts (a team's cell
    in a month whose table folds it): a named team's count in the period, and the period's
    "其他" (its total minus the named rows; the adversary is assumed to know the cases without a
    team, so "其他" is taken as the folded teams' part alone). An equation whose sum is 0 makes
    all its cells 0 (counts are not negative). A finding is a team's count in a published period,
    (the part of it that month tables fold), or the unsolved rest of a table's "其他", solved
    exactly to a value from 1 to K−1.
    """

    def __init__(self, teams: Iterable[int], counts: Mapping[Month, Mapping[int, int]],
                 k: int) -> None:
        self.teams = sorted(set(teams))
        self.counts = counts
        self.k = k
        self.month_named = {m: _name_teams(c, k) for m, c in counts.items()}

    def _v(self, cell: Cell) -> int:
        return self.counts[cell[1]].get(cell[0], 0)

    def _tables(self, extra: list[tuple[list[Month], set[int]]]
                ) -> list[tuple[list[Month], set[int]]]:
        return [([m], named) for m, named in self.month_named.items()] + extra

    def findings(self, extra: list[tuple[list[Month], set[int]]]) -> set[tuple[str, Any, str]]:
        tables = self._tables(extra)
        hidden = [(t, m) for m in self.counts for t in self.teams
                  if t not in self.month_named[m]]
        equations: list[list[Cell]] = []
        for months, named in tables:
            cells = [(t, m) for (t, m) in hidden if m in months]
            equations.extend([c for c in cells if c[0] == t] for t in named)
            equations.append([c for c in cells if c[0] not in named])
        zero = {c for eq in equations if sum(self._v(c) for c in eq) == 0 for c in eq}
        index = {c: i for i, c in enumerate(c for c in hidden if c not in zero)}
        pivots = _rref([{index[c]: Fraction(1) for c in eq if c in index} for eq in equations])

        def solved(cells: list[Cell]) -> bool:
            return _in_rowspace(pivots, {index[c]: Fraction(1) for c in cells if c in index})

        found: set[tuple[str, Any, str]] = set()
        for months, named in tables:
            period = ",".join(str(m) for m in months)
            for t in self.teams:
                # The team's cells this table's months fold (its named months are printed
                # and at least K each): solved exactly, e.g. a named quarter minus its months.
                cells = [(t, m) for m in months if t not in self.month_named[m]]
                value = sum(self._v(c) for c in cells)
                if cells and 0 < value < self.k and solved(cells):
                    found.add(("team", t, period))
            rest = [(t, m) for (t, m) in hidden if m in months and t not in named
                    and (t, m) in index and not solved([(t, m)])]
            value = sum(self._v(c) for c in rest)
            if rest and 0 < value < self.k:
                found.add(("other", None, period))
        return found


def _rref(rows: list[dict[int, Fraction]]) -> dict[int, dict[int, Fraction]]:
    """Reduced row echelon form of sparse rows: pivot column → row (pivot coefficient 1)."""
    pivots: dict[int, dict[int, Fraction]] = {}
    for row in rows:
        r = _in_rowspace_reduce(pivots, dict(row))
        if not r:
            continue
        col = min(r)
        lead = r[col]
        r = {c: v / lead for c, v in r.items()}
        for prow in pivots.values():
            f = prow.get(col)
            if f:
                for c, v in r.items():
                    nv = prow.get(c, Fraction(0)) - f * v
                    if nv:
                        prow[c] = nv
                    else:
                        prow.pop(c, None)
        pivots[col] = r
    return pivots


def _in_rowspace_reduce(pivots: Mapping[int, dict[int, Fraction]], vec: dict[int, Fraction]
                        ) -> dict[int, Fraction]:
    for col in [c for c in vec if c in pivots]:
        f = vec.get(col)
        if not f:
            continue
        for c, v in pivots[col].items():
            nv = vec.get(c, Fraction(0)) - f * v
            if nv:
                vec[c] = nv
            else:
                vec.pop(c, None)
    return vec


def _in_rowspace(pivots: Mapping[int, dict[int, Fraction]], vec: dict[int, Fraction]) -> bool:
    return not vec or not _in_rowspace_reduce(pivots, vec)


def _audited_names(audit: _Audit, counts: Mapping[int, int], months: list[Month],
                   below: list[tuple[list[Month], set[int]]]) -> set[int]:
    """The teams a period table may name: the table's own rule, then, while naming them lets
    the adversary solve something the tables below did not give, fold a named team (the one
    whose count gave it away, else the smallest)."""
    known = audit.findings(below)
    forced: set[int] = set()
    named = _name_teams(counts, audit.k)
    while named:
        new = audit.findings([*below, (months, named)]) - known
        if not new:
            break
        # Fold a named team whose own count gave something away, else the smallest one.
        culprits = {t for kind, t, _ in new if kind == "team" and t in named} or named
        forced.add(min(culprits, key=lambda t: (counts[t], t)))
        named = _name_teams(counts, audit.k, forced)
    return named


async def _team_periods(db: _Db, month: Month, k: int) -> list[TeamTable]:
    """Team breakdowns over the latest complete calendar quarter and year (received only):
    complete periods never change, and do not overlap the way rolling windows would."""
    q_end = last_complete_quarter(month)
    year = last_complete_year(month)
    first = Month(year, 1)
    months = [first]
    while months[-1] < q_end:
        months.append(months[-1].next())
    d0, d1 = first.first, q_end.next().first
    counts: dict[Month, dict[int, int]] = {m: {} for m in months}
    none: dict[Month, int] = {m: 0 for m in months}
    teams = await Team.filter(workshop_id__in=list(db.units))
    scope_teams = {t.id for t in teams}
    for r in await db.rows(
        f"SELECT {db.month_of('received_on')} AS m, team_id AS team, COUNT(*) AS n "  # noqa: S608
        "FROM \"case\" WHERE received_on >= :d0 AND received_on < :d1 "
        f"AND {db.in_units('unit_id')} GROUP BY 1, 2",
        keep=KEEP, d0=d0, d1=d1,
    ):
        m = Month.parse(str(r["m"]))
        if r["team"] is None or _int(r["team"]) not in scope_teams:
            none[m] += _int(r["n"])
        else:
            counts[m][_int(r["team"])] = _int(r["n"])
    team_ids = {t.id for t in teams} | {t for c in counts.values() for t in c}
    names = {t.id: t.name for t in teams}

    def total(ms: list[Month]) -> dict[int, int]:
        out: dict[int, int] = {}
        for m in ms:
            for t, n in counts[m].items():
                out[t] = out.get(t, 0) + n
        return out

    def table(kind: str, period: str, label: str, ms: list[Month], audit: _Audit,
              below: list[tuple[list[Month], set[int]]]) -> tuple[TeamTable, set[int]]:
        per_team = total(ms)
        named = _audited_names(audit, per_team, ms, below)
        groups = {t: Group(f"t{t}", names.get(t, f"班组 {t}"), received=n, answered=None,
                           closed=None) for t, n in sorted(per_team.items())}
        no_team = Group("none", "未指明班组", received=sum(none[m] for m in ms),
                        answered=None, closed=None)
        rows = _team_rows(groups, named, no_team)
        return TeamTable(kind, period, label, rows, sum(g.received for g in rows)), named

    def quarter(end: Month, audit: _Audit) -> tuple[list[Month], TeamTable, set[int]]:
        ms = [end.minus(2), end.minus(1), end]
        t, named = table("quarter", f"{end.year}-Q{end.month // 3}",
                         f"{end.year} 年第 {end.month // 3} 季度", ms, audit, [])
        return ms, t, named

    q_months = [q_end.minus(2), q_end.minus(1), q_end]
    q_audit = _Audit(team_ids, {m: counts[m] for m in q_months}, k)
    _, q_table, _ = quarter(q_end, q_audit)
    y_months = [Month(year, i) for i in range(1, 13)]
    y_audit = _Audit(team_ids, {m: counts[m] for m in y_months}, k)
    quarters = [quarter(Month(year, e), y_audit) for e in (3, 6, 9, 12)]
    below = [(ms, named) for ms, _, named in quarters]
    y_table, _ = table("year", str(year), f"{year} 年", y_months, y_audit, below)
    return [q_table, y_table]


async def _listed(db: _Db, w: _Window, limit: int | None) -> list[ListedCase]:
    sql = (
        "SELECT c.id AS id, c.unit_id AS unit, cat.name AS category, "  # noqa: S608
        "c.published AS published, "
        "c.public_summary AS summary, c.received_on AS received_on, e.body AS body, "
        f"{db.local_date('e.at')} AS answered_on, "
        f"{db.days(db.local_date('e.at'), 'c.received_on')} AS days "
        "FROM event e JOIN \"case\" c ON c.id = e.case_id "
        "JOIN category cat ON cat.id = c.category_id "
        f"WHERE e.action = 'reply' AND e.at >= :t0 AND e.at < :t1 "
        f"AND {db.in_units('c.unit_id')} AND NOT EXISTS ("
        "SELECT 1 FROM event x WHERE x.case_id = e.case_id AND x.action = 'reply' "
        "AND x.at >= :t0 AND x.at < :t1 AND x.seq > e.seq) "
        "ORDER BY e.at, c.id"
    )
    params = w.params()
    if limit is not None:
        sql += " LIMIT :lim"
        params["lim"] = limit
    out = []
    for r in await db.rows(sql, **params):
        body = str(r["body"] or "").strip()
        published = bool(r["published"]) and bool(r["summary"])
        out.append(ListedCase(
            number=_number(r["id"]),
            category=str(r["category"]),
            summary=str(r["summary"]).strip() if published else "",
            # Never the original text; unpublished cases show only the answer's first line.
            answer=body if published else body.split("\n", 1)[0].strip(),
            received_on=_date(r["received_on"]),
            answered_on=_date(r["answered_on"]),
            days=_int(r["days"]),
            unit=_int(r["unit"]),
        ))
    return out


async def _trend(db: _Db, month: Month, months: int) -> list[TrendPoint]:
    w = _Window.of(month, db.tz, months)
    p = w.params()
    received = {
        str(r["m"]): _int(r["n"]) for r in await db.rows(
            f"SELECT {db.month_of('received_on')} AS m, COUNT(*) AS n FROM \"case\" "  # noqa: S608
            "WHERE received_on >= :d0 AND received_on < :d1 "
            f"AND {db.in_units('unit_id')} GROUP BY 1", keep=KEEP, **p)
    }
    start = month.minus(months - 1)
    series = [start]
    while len(series) < months:
        series.append(series[-1].next())
    # Bucket events by the UTC instants of local month starts: exact in any time zone, and
    # cheaper than converting every row's time.
    cases_sql = " ".join(
        f"WHEN e.at < :b{i} THEN {i - 1}" for i in range(1, months)) + f" ELSE {months - 1}"
    for i, m in enumerate(series[1:], start=1):
        p[f"b{i}"] = day_start(m.first, db.tz).astimezone(UTC)
    answered = {
        _int(r["m"]): _int(r["n"]) for r in await db.rows(
            f"SELECT CASE {cases_sql} END AS m, COUNT(DISTINCT e.case_id) AS n "  # noqa: S608
            "FROM event e JOIN \"case\" c ON c.id = e.case_id WHERE e.action = 'reply' "
            f"AND e.at >= :t0 AND e.at < :t1 AND {db.in_units('c.unit_id')} GROUP BY 1",
            keep=KEEP, **p)
    }
    return [TrendPoint(m, received.get(str(m), 0), answered.get(i, 0))
            for i, m in enumerate(series)]


def _offset_minutes(tz: ZoneInfo, month: Month) -> int:
    mid = datetime(month.year, month.month, 15, 12, tzinfo=tz)
    off = mid.utcoffset() or timedelta(0)
    return int(off.total_seconds() // 60)


async def build_report(
    month: Month,
    *,
    units: tuple[int, ...],
    tz: ZoneInfo,
    response_limit_days: int = 2,
    small_group_k: int = 3,
    rating_window_days: int = 7,
    list_limit: int | None = LIST_LIMIT,
    trend_months: int = TREND_MONTHS,
    now: datetime | None = None,
    connection: str = "default",
) -> Report:
    """Every figure of the monthly summary for ``month`` (local calendar month in ``tz``) over
    the cases of ``units`` (``Case.unit``: one workshop, or one desk)."""
    now = now or datetime.now(UTC)
    pending: dict[str, str] = {}
    async with _snapshot(connection) as conn:
        report = await _build(
            conn, month, units=units, tz=tz, response_limit_days=response_limit_days,
            small_group_k=small_group_k, rating_window_days=rating_window_days,
            list_limit=list_limit, trend_months=trend_months, now=now, pending=pending)
    await _keep(pending, local_today(tz, now), connection)
    return report


@contextlib.asynccontextmanager
async def _snapshot(connection: str) -> AsyncIterator[BaseDBAsyncClient]:
    """One read-only snapshot for all the report's queries (PostgreSQL), so the figures agree
    with each other. JIT compilation is turned off: it costs a few hundred milliseconds per
    query here and saves nothing on these index-driven aggregates. Plans are always custom:
    asyncpg prepares each statement, and after five runs PostgreSQL may switch to a generic plan
    that ignores the month's bounds (the open-at-month-end query went from 0.14 s to 0.35 s)."""
    conn = connections.get(connection)
    if conn.capabilities.dialect != "postgres":
        yield conn
        return
    async with in_transaction(connection) as tx:
        await tx.execute_script(
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL jit = off; "
            "SET LOCAL plan_cache_mode = force_custom_plan")
        yield tx


async def _build(
    conn: BaseDBAsyncClient, month: Month, *, units: tuple[int, ...], tz: ZoneInfo,
    response_limit_days: int,
    small_group_k: int, rating_window_days: int, list_limit: int | None, trend_months: int,
    now: datetime, pending: dict[str, str] | None = None,
) -> Report:
    today = local_today(tz, now)
    db = _Db(conn, tz, _offset_minutes(tz, month), units,
             settled=settled(month, response_limit_days, today), pending=pending)
    figures = await _figures(db, month, response_limit_days)
    previous_db = _Db(db.conn, tz, _offset_minutes(tz, month.prev()), units,
                      settled=settled(month.prev(), response_limit_days, today),
                      pending=db.pending)
    previous = await _figures(previous_db, month.prev(), response_limit_days)
    w = _Window.of(month, tz)
    accept_times, answer_times = await _times(db, w)
    by_category, by_team = await _breakdowns(db, w, small_group_k, figures.activity)
    by_source = await _by_source(db, w)
    team_periods = await _team_periods(db, month, small_group_k)
    cases = await _listed(db, w, list_limit)
    definitions = {f"total.{k}": v for k, v in TOTAL_DEFINITIONS.items()}
    definitions.update({f"rate.{k}": v for k, v in rate_definitions(response_limit_days).items()})
    definitions.update({f"time.{k}": v for k, v in TIME_DEFINITIONS.items()})
    definitions["time.percentile"] = PERCENTILE_NOTE
    return Report(
        month=month,
        figures=figures,
        previous=previous,
        accept_times=accept_times,
        answer_times=answer_times,
        by_category=by_category,
        by_source=by_source,
        by_team=by_team,
        team_periods=team_periods,
        cases=cases,
        cases_total=figures.totals["answered"],
        trend=await _trend(db, month, trend_months),
        timezone=tz.key,
        response_limit_days=response_limit_days,
        small_group_k=small_group_k,
        rating_window_days=rating_window_days,
        generated_at=now,
        complete=month.next().first <= local_today(tz, now),
        definitions=definitions,
        movable=movable(month, response_limit_days, local_today(tz, now)),
    )


async def answered_cases(
    month: Month, *, units: tuple[int, ...], tz: ZoneInfo, limit: int | None = None,
    connection: str = "default",
) -> list[ListedCase]:
    """The list of cases of ``units`` answered in ``month`` (all of them unless ``limit``),
    for the CSV."""
    async with _snapshot(connection) as conn:
        db = _Db(conn, tz, _offset_minutes(tz, month), units)
        return await _listed(db, _Window.of(month, tz), limit)
