"""Deadlines in days or hours: when a case is due, whether it is overdue, and how long is left.

Most categories run on days: a case is due by the end of its deadline day (set on acceptance;
while it waits to be accepted, its category's number of days after it was received). An urgent
category (安全隐患 by default) runs on hours, counted from ``Case.clock_at``: the hour its leaders
were told. That is the quiet-time batch boundary the new-case message goes out at or, when the
worker asked for an immediate notification (or new cases are not batched), the next full hour.
Nothing finer than that hour is stored, and nothing at all for other categories (DESIGN.md §1.3).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .models import Case, Category
from .notify import held_kinds, release_time
from .settings import Settings

OPEN = ("new", "accepted", "in_progress")


def next_full_hour(now: datetime) -> datetime:
    top = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return top if top == now else top + timedelta(hours=1)


def clock_start(settings: Settings, now: datetime, *, immediate: bool) -> datetime:
    """When the leaders hear of a new urgent case, as stored on it (UTC, a full hour)."""
    if immediate or "new_case" not in held_kinds(settings):
        return next_full_hour(now)
    return next_full_hour(release_time(settings, now))


def is_urgent(case: Case, category: Category) -> bool:
    return bool(category.urgent and case.clock_at is not None)


def limit_hours(case: Case, category: Category) -> int | None:
    """The hours-based limit that applies now: to accept while new, to answer while working."""
    if not is_urgent(case, category) or case.status not in OPEN:
        return None
    return category.respond_hours if case.status == "new" else category.answer_hours


def effective_deadline(case: Case, category: Category) -> date | None:
    """A case's deadline day: set on acceptance (or by a leader). A case still waiting to be
    accepted is due its category's number of days after it was received."""
    if case.deadline is not None:
        return case.deadline
    if case.status == "new":
        return case.received_on + timedelta(days=category.deadline_days)
    return None


def due_at(case: Case, category: Category, tz: ZoneInfo) -> datetime | None:
    """The moment an open case is due (None for a case no longer open or without a deadline)."""
    if case.status not in OPEN:
        return None
    hours = limit_hours(case, category)
    if hours is not None and case.clock_at is not None:
        return case.clock_at + timedelta(hours=hours)
    deadline = effective_deadline(case, category)
    if deadline is None:
        return None
    return datetime.combine(deadline + timedelta(days=1), time(0, 0), tzinfo=tz)


def promise_due(case: Case, tz: ZoneInfo) -> datetime | None:
    """When a promise (承诺完成日期, issue 18) not yet carried out falls due: the end of its day.
    It climbs the escalation ladder like a deadline."""
    if case.promised_on is None or case.carried_out_at is not None or case.status in (
            "merged", "rejected"):
        return None
    return datetime.combine(case.promised_on + timedelta(days=1), time(0, 0), tzinfo=tz)


def overdue(case: Case, category: Category, now: datetime, tz: ZoneInfo) -> bool:
    due = due_at(case, category, tz)
    return due is not None and now >= due


def hours_left(case: Case, category: Category, now: datetime) -> int | None:
    """For an urgent case: whole hours left before it is due (rounded up), negative once it is
    overdue (the hours past, rounded down; 0 in its first overdue hour is shown as 超时)."""
    hours = limit_hours(case, category)
    if hours is None or case.clock_at is None:
        return None
    left = (case.clock_at + timedelta(hours=hours) - now) / timedelta(hours=1)
    return math.ceil(left) if left > 0 else -math.floor(-left)


def late_text(case: Case, category: Category, due: datetime, now: datetime) -> str:
    """How late a case is, in hours for urgent cases and days for the rest."""
    if limit_hours(case, category) is not None:
        return f"已超时 {max(0, math.floor((now - due) / timedelta(hours=1)))} 小时"
    return f"已超期 {max(1, (now - due).days + 1)} 天"
