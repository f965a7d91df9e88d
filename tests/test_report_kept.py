"""Kept figures of settled months (issue 19): a month printed again reads the rows its queries
returned the first time (``ReportKept``) instead of recomputing them; what it prints is exactly
a fresh recomputation, and a bumped ``KEPT_VERSION`` computes afresh. Both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from suggestbox import reports
from suggestbox.depot_report import build_depot_report
from suggestbox.models import ReportKept, Unit
from suggestbox.months import Month
from tests.conftest import add_user
from tests.test_query_counts import counting_queries
from tests.test_reports import NOW, TZ, World, build_world, local, snapshot, workshop_report

MARCH = Month(2026, 3)


async def fresh(month: Month, monkeypatch: Any, **kw: Any) -> Any:
    """The report computed afresh: under another KEPT_VERSION no kept row matches."""
    with monkeypatch.context() as m:
        m.setattr(reports, "KEPT_VERSION", reports.KEPT_VERSION + 1000)
        return await workshop_report(month, **kw)


async def test_a_settled_month_is_kept_and_printed_again_identically(app, monkeypatch):
    await build_world()
    assert await ReportKept.all().count() == 0
    with counting_queries() as first_statements:
        first = await workshop_report(MARCH, tz=TZ, now=NOW)
    kept = await ReportKept.all().count()
    assert kept >= 10, kept  # March's and February's figures, times, breakdowns, trend, …
    with counting_queries() as again_statements:
        again = await workshop_report(MARCH, tz=TZ, now=NOW)
    assert await ReportKept.all().count() == kept  # read back, nothing new computed
    assert snapshot(again) == snapshot(first)
    assert again.as_dict()["cases"] == first.as_dict()["cases"]
    # The kept rows replace the heavy queries (each read back is one primary-key look-up).
    heavy = [s for s in first_statements if "report_kept" not in s]
    assert sum("report_kept" not in s for s in again_statements) < len(heavy) / 2
    # Equal to a fresh recomputation, which stores its own rows under the new version.
    recomputed = await fresh(MARCH, monkeypatch, tz=TZ, now=NOW)
    assert snapshot(recomputed) == snapshot(first)
    assert await ReportKept.all().count() == 2 * kept
    assert first.figures.totals["received"] == 12  # the hand-computed March (test_reports)


async def test_kept_rows_are_what_is_printed_and_a_bumped_version_recomputes(app, monkeypatch):
    await build_world()
    first = await workshop_report(MARCH, tz=TZ, now=NOW)
    # Spoil every kept row: a print of the same version shows the spoiled (empty) figures,
    # which proves it reads them; a bumped version ignores them and recomputes.
    await ReportKept.all().update(rows="[]")
    spoiled = await workshop_report(MARCH, tz=TZ, now=NOW)
    assert spoiled.figures.totals["received"] == 0 and spoiled.by_team == []
    monkeypatch.setattr(reports, "KEPT_VERSION", reports.KEPT_VERSION + 1)
    bumped = await workshop_report(MARCH, tz=TZ, now=NOW)
    assert snapshot(bumped) == snapshot(first)


async def test_a_later_deadline_change_shows_in_a_kept_month(app, monkeypatch):
    w = await build_world()
    first = await workshop_report(MARCH, tz=TZ, now=NOW)
    assert first.figures.totals["overdue_at_end"] == 2
    # C4 (due 20 March, open at the month's end) is transferred in May with a new deadline:
    # it leaves March's 按时答复率 and 月末超期, as the page says these may move.
    other = await add_user("hand", "handler")
    await w.staff("C4", "transfer", local(2026, 5, 2), deadline=date(2026, 5, 30),
                  assignee_id=other.id)
    later = datetime(2026, 5, 3, 8, tzinfo=UTC)
    moved = await workshop_report(MARCH, tz=TZ, now=later)
    assert moved.figures.totals["overdue_at_end"] == 1
    assert moved.figures.rates["on_time"].den == first.figures.rates["on_time"].den - 1
    assert snapshot(moved) == snapshot(await fresh(MARCH, monkeypatch, tz=TZ, now=later))
    # Everything else stayed as kept.
    assert {k: v for k, v in moved.figures.totals.items() if k != "overdue_at_end"} == {
        k: v for k, v in first.figures.totals.items() if k != "overdue_at_end"}


async def test_months_that_can_still_move_are_not_kept(app, monkeypatch):
    w = World(await add_user("lead", "leader"))
    await w.new("A", date(2026, 4, 29))
    # April ended on 1 May; a case received on its last days can still be responded to within
    # the 2-day limit until 3 May: nothing of April is kept before then (March, the previous
    # month printed beside it, is).
    april = Month(2026, 4)
    await workshop_report(april, tz=TZ, now=datetime(2026, 5, 2, 4, tzinfo=UTC))
    march_only = await ReportKept.all().count()
    early = await workshop_report(april, tz=TZ, now=datetime(2026, 5, 2, 5, tzinfo=UTC))
    assert await ReportKept.all().count() == march_only
    assert early.figures.rates["response"].num == 0
    await w.staff("A", "accept", local(2026, 5, 1), deadline=date(2026, 5, 9))
    late = await workshop_report(april, tz=TZ, now=datetime(2026, 5, 3, 4, tzinfo=UTC))
    assert late.figures.rates["response"].num == 1  # the early print kept nothing of April
    with_april = await ReportKept.all().count()
    assert with_april > march_only
    # The running month is never kept; April beside it is read back.
    for day in (20, 21):
        may = await workshop_report(Month(2026, 5), tz=TZ,
                                    now=datetime(2026, 5, day, 4, tzinfo=UTC))
        assert may.figures.totals["accepted"] == 1
        assert await ReportKept.all().count() == with_april
    assert settled_flags() == (False, True)


def settled_flags() -> tuple[bool, bool]:
    april = Month(2026, 4)
    return (reports.settled(april, 2, date(2026, 5, 2)),
            reports.settled(april, 2, date(2026, 5, 3)))


async def test_the_depot_report_keeps_its_month_too(app, monkeypatch):
    await build_world()
    workshops = await Unit.filter(kind="workshop")
    desks = await Unit.filter(kind="desk")

    async def depot() -> dict[str, Any]:
        r = await build_depot_report(MARCH, tz=TZ, workshops=workshops, desks=desks, now=NOW)
        return {"totals": r.figures.totals,
                "rates": {k: (v.num, v.den) for k, v in r.figures.rates.items()},
                "answer": (r.answer_times.n, r.answer_times.median),
                "workshops": [(u.key, u.figures.totals) for u in r.workshops]}

    first = await depot()
    kept = await ReportKept.all().count()
    assert kept > 0
    assert await depot() == first
    assert await ReportKept.all().count() == kept
    monkeypatch.setattr(reports, "KEPT_VERSION", reports.KEPT_VERSION + 1)
    assert await depot() == first
    assert first["totals"]["received"] == 12
