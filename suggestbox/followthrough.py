"""From answer to done (issue 18): 落实 (carried out), adoption review (采纳评审) and rewards.

The actions themselves are rows of ``cases.RULES`` (promise, progress, carry_out, adopt,
adopt_partial, decline, reward, reward_claim, reward_donate); this module holds what they
share with the reports and the pages: labels, the reward's wording, overdue promises. No HTTP.

Anonymity (DESIGN.md §1.3): a reward claimed at the desk or given to the team fund (班组基金)
is a worker's action, so it is stored at day precision only (``Case.reward_settled_on`` and an
event at local midnight), with no name: the desk enters the receipt code, nothing else.
"""

from __future__ import annotations

import re
from datetime import date

from .models import Case, SiteSetting

# The review's decisions: event actions, and what the worker and the board read.
ADOPTION_LABELS: dict[str, str] = {
    "adopt": "采纳",
    "adopt_partial": "部分采纳",
    "decline": "暂不采纳",
}
ADOPTED = ("adopt", "adopt_partial")
REWARD_UNITS: dict[str, str] = {"yuan": "元", "points": "积分"}
REWARD_STATES: dict[str, str] = {
    "offered": "待领取",
    "claimed": "已领取",
    "team_fund": "已捐入班组基金",
}
REWARD_MAX = 100_000
# An event's staff-only ``detail`` carries the machine-readable part (reports read it back).
PROMISE_DETAIL = "承诺完成日期 {day}"
REWARD_DETAIL = "奖励 {amount} {unit}"
_REWARD_RE = re.compile(r"^奖励 (\d+) (元|积分)$")
_PROMISE_RE = re.compile(r"(\d{4}-\d{2}-\d{2})$")


def reward_text(amount: int | None, unit: str | None) -> str:
    if amount is None or unit not in REWARD_UNITS:
        return ""
    return f"{amount} {REWARD_UNITS[unit]}"


def parse_reward(detail: str | None) -> tuple[int, str] | None:
    """(amount, "yuan" | "points") from a reward event's detail."""
    m = _REWARD_RE.match(detail or "")
    if m is None:
        return None
    unit = next(k for k, v in REWARD_UNITS.items() if v == m.group(2))
    return int(m.group(1)), unit


def parse_promise(detail: str | None) -> date | None:
    m = _PROMISE_RE.search(detail or "")
    return date.fromisoformat(m.group(1)) if m else None


def is_adopted(case: Case) -> bool:
    return case.adoption in ADOPTED


def board_badge(case: Case) -> str:
    """What the board shows of an adopted suggestion: 已落实 or 已采纳 (else nothing)."""
    if not is_adopted(case):
        return ""
    return "已落实" if case.carried_out_at is not None else "已采纳"


def promise_overdue(case: Case, today: date) -> bool:
    return (case.promised_on is not None and case.carried_out_at is None
            and case.promised_on < today and case.status not in ("merged", "rejected"))


async def overdue_promises(today: date, units: list[int] | None = None,
                           since: date | None = None) -> list[Case]:
    """Cases whose promised completion date (承诺完成日期) is before ``today`` (the workshop's
    local date) and that are not carried out yet, oldest promise first; only promises from
    ``since`` on when given. For the escalation ladder (issue 17) and the staff pages."""
    qs = Case.filter(promised_on__lt=today, carried_out_at=None).exclude(
        status__in=["merged", "rejected"])
    if since is not None:
        qs = qs.filter(promised_on__gte=since)
    if units is not None:
        qs = qs.filter(unit_id__in=units)
    return await qs.order_by("promised_on", "id")


DEFAULT_DESK = "工会窗口"


async def reward_desk() -> str:
    """Where rewards are claimed (site setting ``reward_desk``; the union desk by default)."""
    row = await SiteSetting.get_or_none(key="reward_desk")
    return row.value.strip() if row and row.value.strip() else DEFAULT_DESK
