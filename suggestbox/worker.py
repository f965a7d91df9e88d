"""The notification worker: deadline reminders and escalation, batching, delivery.

One ``tick(settings, now)`` does everything once with an injected clock; ``run`` repeats it.
It runs inside the app (a lifespan task, ``SUGGESTBOX_INLINE_WORKER``), as ``suggestbox worker``
(a long-running service), or as ``suggestbox remind`` (one tick, for a systemd timer or cron).
Several copies may run at once on PostgreSQL: claims lock rows, reminders are de-duplicated.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx
from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet

from . import cases, followthrough, notify, privacy, urgency
from .cases import purge_used_tokens
from .intake import purge_slips
from .models import Case, Category, EscalationLevel, EscalationStep
from .settings import Settings

log = logging.getLogger("suggestbox.worker")

WORKING = ("accepted", "in_progress")
OPEN = ("new", "accepted", "in_progress")


def effective_deadline(case: Case) -> date | None:
    """A day-based case's deadline (``case.category`` fetched); see urgency.effective_deadline."""
    return urgency.effective_deadline(case, case.category)


# Past-due cases are read and handled this many at a time (keyset on id), so a tick's memory
# does not grow with the overdue backlog: reading all 327,000 past-due cases of the 1,000,000-case
# depot seed at once took a uvicorn worker from 70 MiB to 1.1 GiB (kept at ~600 MiB afterwards),
# and their step keys overflowed asyncpg's 32,767 query parameters, so no step was ever taken.
BATCH = 1000


async def _batches(qs: QuerySet[Case], size: int | None = None,
                   related: tuple[str, ...] = ("category", "assignee")
                   ) -> AsyncIterator[list[Case]]:
    """The rows of ``qs`` (with ``related`` fetched) ``size`` (``BATCH``) at a time, in id
    order."""
    size = size or BATCH
    after: uuid.UUID | None = None
    while True:
        page = qs if after is None else qs.filter(id__gt=after)
        rows = await page.order_by("id").limit(size).select_related(*related)
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = rows[-1].id


async def overdue_batches(today: date, size: int | None = None,
                          related: tuple[str, ...] = ("category", "assignee"),
                          since: date | None = None, received_since: date | None = None,
                          ) -> AsyncIterator[list[tuple[Case, date]]]:
    """Open cases past their deadline day (with ``related`` fetched: ``category`` is needed),
    at most ``size`` rows read at a time; only deadlines from ``since`` on and, for new cases
    without a deadline, received from ``received_since`` on, when given."""
    dated = Case.filter(status__in=list(OPEN), deadline__lt=today)
    waiting = Case.filter(status="new", deadline=None, received_on__lt=today)
    if since is not None:
        dated = dated.filter(deadline__gte=since)
    if received_since is not None:
        waiting = waiting.filter(received_on__gte=received_since)
    for qs in (dated, waiting):
        async for rows in _batches(qs, size, related):
            found: list[tuple[Case, date]] = []
            for case in rows:
                deadline = effective_deadline(case)
                if deadline is not None and deadline < today:
                    found.append((case, deadline))
            yield found


async def overdue_cases(today: date) -> list[tuple[Case, date]]:
    """Open cases past their deadline day (with ``category`` and ``assignee`` fetched)."""
    return [found async for batch in overdue_batches(today) for found in batch]


async def remind(settings: Settings, now: datetime) -> int:
    """Queue "due tomorrow" reminders (once per case and deadline, from the configured morning
    hour on: no reminders at midnight) and take the escalation ladder's due steps."""
    local = now.astimezone(settings.tz)
    morning = local.hour >= settings.notify_hour
    today = local.date()
    tz = settings.tz
    written = 0
    if morning:
        tomorrow = today + timedelta(days=1)
        for case in await Case.filter(status__in=list(WORKING), deadline=tomorrow).select_related(
                "category", "assignee"):
            written += await notify.enqueue_reminder(case, "due_tomorrow", tomorrow, today=today,
                                                     tz=tz)
    return written + await escalate(settings, now, days=morning)


async def ladder_for(unit_id: int | None, cache: dict[int | None, list[EscalationLevel]]
                     ) -> list[EscalationLevel]:
    """A unit's ladder: its own active levels, or else the depot's."""
    if unit_id not in cache:
        own = await EscalationLevel.filter(unit_id=unit_id, active=True) if unit_id else []
        cache[unit_id] = own or await EscalationLevel.filter(unit_id=None, active=True)
    return cache[unit_id]


# How far back the ladder looks. A level is due ``after_hours`` after a deadline; a case past
# its deadline for longer than the longest ladder plus LADDER_GRACE had every chance to climb
# while the worker ran, and is not read again on every tick (issue 19: on the 1,000,000-case
# depot seed every tick read all 327,000 past-due cases). Choice written down: a level added
# later, or a worker stopped for longer than LADDER_GRACE, does not reach cases past due
# before that horizon.
LADDER_GRACE = timedelta(days=7)


async def _horizon(now: datetime) -> tuple[datetime, int, int]:
    """(the oldest due moment the ladder still looks at, the longest day limit of a category,
    the longest hour limit of an urgent category)."""
    levels = await EscalationLevel.filter(active=True).values("after_hours")
    longest = max((int(r["after_hours"] or 0) for r in levels), default=0)
    limits = await Category.all().values_list("deadline_days", "respond_hours", "answer_hours")
    days = max((int(d or 0) for d, _, _ in limits), default=0)
    hours = max((max(int(r or 0), int(a or 0)) for _, r, a in limits), default=0)
    return now - timedelta(hours=longest) - LADDER_GRACE, days, hours


async def past_due_batches(settings: Settings, now: datetime, days: bool
                           ) -> AsyncIterator[list[tuple[Case, datetime]]]:
    """Open cases whose deadline has passed, a batch at a time: urgent ones by the hour at any
    time, the rest by the day and only from the morning hour on (``days``). Only cases due
    after the ladder's horizon (``LADDER_GRACE``) are read."""
    tz = settings.tz
    horizon, longest_days, longest_hours = await _horizon(now)
    since = horizon.astimezone(tz).date() - timedelta(days=1)
    if days:
        async for batch in overdue_batches(
                now.astimezone(tz).date(), related=("category",), since=since,
                received_since=since - timedelta(days=longest_days)):
            found: list[tuple[Case, datetime]] = []
            for case, _ in batch:
                if not urgency.is_urgent(case, case.category):
                    due = urgency.due_at(case, case.category, tz)
                    if due is not None:
                        found.append((case, due))
            yield found
    if days:  # promises (承诺完成日期) not carried out by their day, like day-based deadlines
        found = []
        for case in await followthrough.overdue_promises(now.astimezone(tz).date(),
                                                         since=since):
            due = urgency.promise_due(case, tz)
            if due is not None:
                found.append((case, due))
        yield found
    clocked = (horizon - timedelta(hours=longest_hours)).astimezone(UTC)  # SQLite: text order
    async for rows in _batches(Case.filter(status__in=list(OPEN), clock_at__gte=clocked),
                               related=("category",)):
        found = []
        for case in rows:
            due = urgency.due_at(case, case.category, tz)
            if urgency.is_urgent(case, case.category) and due is not None and now >= due:
                found.append((case, due))
        yield found


async def escalate(settings: Settings, now: datetime, *, days: bool = True) -> int:
    """Take every ladder step that is due: each level once per case and deadline, in the
    ladder's order. Each step is an event on the case (``cases.RULES["escalate"]``) and messages
    to its level's target; its key makes a second worker's attempt fail harmlessly. The
    past-due cases are handled a batch at a time (``BATCH``)."""
    cache: dict[int | None, list[EscalationLevel]] = {}
    taken = 0
    async for batch in past_due_batches(settings, now, days):
        wanted: list[tuple[Case, EscalationLevel, str]] = []
        for case, due in batch:
            for level in await ladder_for(case.unit_id, cache):  # type: ignore[attr-defined]
                if now >= due + timedelta(hours=level.after_hours):
                    key = f"{level.id}:{case.id.hex}:{due.astimezone(UTC).isoformat()}"
                    wanted.append((case, level, key))
        if not wanted:
            continue
        keys = [k for _, _, k in wanted]
        done: set[str] = set()
        for i in range(0, len(keys), BATCH):
            done.update(str(k) for k in await EscalationStep.filter(
                id__in=keys[i:i + BATCH]).values_list("id", flat=True))
        for case, level, key in wanted:
            if key in done:
                continue
            try:
                await cases.apply(case.id, "escalate", None, system=True, now=now,
                                  tz=settings.tz, level_id=level.id, due_key=key)
            except (IntegrityError, cases.DomainError):
                continue  # another worker took it first, or the case moved on meanwhile
            taken += 1
    return taken


@dataclass
class TickResult:
    reminders: int = 0
    batches: int = 0
    delivery: notify.Delivery = field(default_factory=notify.Delivery)


_scrubbed: set[date] = set()  # days this process has already scrubbed


async def _scrub_yesterday(settings: Settings, now: datetime) -> None:
    """Once a day, early in the morning, hide the order of yesterday's submitter rows
    (privacy.scrub_order; PostgreSQL only). A cron-run `remind` repeats it, harmlessly."""
    local = now.astimezone(settings.tz)
    yesterday = local.date() - timedelta(days=1)
    if local.hour < 6 and yesterday not in _scrubbed:
        await privacy.scrub_order(yesterday, settings.tz)
        _scrubbed.clear()
        _scrubbed.add(yesterday)


async def tick(settings: Settings, now: datetime | None = None,
               client: httpx.AsyncClient | None = None) -> TickResult:
    now = now or datetime.now(UTC)
    result = TickResult()
    result.reminders = await remind(settings, now)
    await notify.hold(settings, now)
    result.batches = await notify.flush_held(settings, now)
    result.delivery = await notify.deliver_due(settings, now=now, client=client)
    await notify.purge_settled(now.astimezone(settings.tz).date())
    await purge_used_tokens(now.astimezone(settings.tz).date())
    await purge_slips(now.astimezone(settings.tz).date())
    await _scrub_yesterday(settings, now)
    return result


async def run(settings: Settings, stop: asyncio.Event | None = None, *,
              first_delay: float | None = None) -> None:
    """Tick every ``notify_poll_seconds`` until ``stop`` is set (or the task is cancelled).
    An error is logged (its type only) and the loop goes on."""
    stop = stop or asyncio.Event()
    delay = settings.notify_poll_seconds if first_delay is None else first_delay
    async with httpx.AsyncClient(timeout=settings.notify_timeout_seconds) as client:
        while True:
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, delay))
                return
            except TimeoutError:
                pass
            delay = settings.notify_poll_seconds
            try:
                await tick(settings, client=client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("notification worker tick failed: %s", type(exc).__name__)


# ---- command line ---------------------------------------------------------------------------

def _report(result: TickResult) -> str:
    d = result.delivery
    return (f"提醒 {result.reminders} 条，汇总 {result.batches} 条；已发送 {d.sent}，"
            f"待重试 {d.retrying}，失败 {d.failed}。")


def cli_remind(settings: Settings) -> int:
    """``suggestbox remind``: one tick (for a systemd timer or cron)."""
    from .db import orm

    async def once() -> TickResult:
        async with orm(settings):
            return await tick(settings)

    result = asyncio.run(once())
    print(_report(result))
    return 1 if result.delivery.failed else 0


def cli_worker(settings: Settings, once: bool = False) -> int:
    """``suggestbox worker``: tick every poll interval until SIGINT/SIGTERM."""
    import signal

    from .db import orm

    if once:
        return cli_remind(settings)

    async def forever() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with orm(settings):
            print(f"suggestbox worker: every {settings.notify_poll_seconds:g} s", flush=True)
            await run(settings, stop, first_delay=0)

    asyncio.run(forever())
    return 0
