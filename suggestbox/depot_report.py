"""Depot report (全段月度汇总): one page per month across the depot's workshops and desks.

No HTTP here. Every figure comes from the grouped-by-unit queries of ``reports.py`` (figures are
additive over units: counts sum, rates sum numerators and denominators, day histograms add up),
so 50 workshops cost the same handful of queries as one.

- Depot totals: workshop cases only (``Case.unit`` a workshop); desk cases never count there.
- Per workshop: received, answered, closed, the four rates and the median days to answer. A
  workshop with fewer than K cases received in the month is folded into "其他" with the same rule
  as team tables (``reports._name_teams``): while the folded part is 1 to K−1, the smallest named
  workshop is folded too, so "其他" is never a lone small group.
- Desks: one row per desk (received, answered, closed, rates), and the desk cases received per
  originating workshop (``Case.workshop``, the box they came through), folded the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from .cases import local_today
from .models import Unit
from .months import Month
from .reports import (
    KEEP,
    Figures,
    Histogram,
    Rate,
    Spread,
    _Db,
    _figures_by_unit,
    _int,
    _keep,
    _merge_hist,
    _name_teams,
    _offset_minutes,
    _snapshot,
    _sum_figures,
    _time_histograms,
    _Window,
    movable,
    settled,
    spread,
)

OTHER = "other"
OTHER_LABEL = "其他"


@dataclass
class UnitRow:
    key: str  # the unit's code, or "other"
    label: str
    figures: Figures
    answer_times: Spread
    folded: int = 0  # units folded into this row ("其他")

    @property
    def received(self) -> int:
        return self.figures.totals["received"]

    @property
    def answered(self) -> int:
        return self.figures.totals["answered"]

    @property
    def closed(self) -> int:
        return self.figures.totals["closed"]

    @property
    def rates(self) -> dict[str, Rate]:
        return self.figures.rates

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "folded": self.folded,
                "totals": dict(self.figures.totals),
                "rates": {k: r.as_dict() for k, r in self.figures.rates.items()},
                "answer_times": asdict(self.answer_times)}


@dataclass
class OriginRow:
    key: str  # the workshop's code, or "other"
    label: str
    received: int
    folded: int = 0


@dataclass
class DepotReport:
    month: Month
    figures: Figures  # the whole depot: workshop cases only
    accept_times: Spread
    answer_times: Spread
    workshops: list[UnitRow]  # named workshops in tree order, then 其他
    desks: list[UnitRow]  # every desk
    desk_origin: list[OriginRow]  # desk cases received per originating workshop, folded
    workshop_count: int
    timezone: str
    response_limit_days: int
    small_group_k: int
    generated_at: datetime
    complete: bool
    movable: list[str] = field(default_factory=list)

    @property
    def desk_received(self) -> int:
        return sum(o.received for o in self.desk_origin)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "depot",
            "month": str(self.month),
            "complete": self.complete,
            "timezone": self.timezone,
            "settings": {"response_limit_days": self.response_limit_days,
                         "small_group_k": self.small_group_k},
            "depot": {"totals": dict(self.figures.totals),
                      "rates": {k: r.as_dict() for k, r in self.figures.rates.items()},
                      "times": {"accept": asdict(self.accept_times),
                                "answer": asdict(self.answer_times)}},
            "workshop_count": self.workshop_count,
            "workshops": [r.as_dict() for r in self.workshops],
            "desks": [r.as_dict() for r in self.desks],
            "desk_origin": [asdict(o) for o in self.desk_origin],
            "movable": self.movable,
            "generated_at": self.generated_at.isoformat(),
        }


def _fold(counts: Mapping[int, int], k: int) -> set[int]:
    """The units a table may name (the team tables' rule)."""
    return _name_teams(counts, k)


async def build_depot_report(
    month: Month,
    *,
    tz: ZoneInfo,
    workshops: Sequence[Unit],
    desks: Sequence[Unit],
    response_limit_days: int = 2,
    small_group_k: int = 3,
    now: datetime | None = None,
    connection: str = "default",
) -> DepotReport:
    """The depot's figures for ``month`` (local calendar month in ``tz``)."""
    now = now or datetime.now(UTC)
    ws_ids = [u.id for u in workshops]
    desk_ids = [u.id for u in desks]
    today = local_today(tz, now)
    pending: dict[str, str] = {}
    async with _snapshot(connection) as conn:
        db = _Db(conn, tz, _offset_minutes(tz, month), [*ws_ids, *desk_ids],
                 settled=settled(month, response_limit_days, today), pending=pending)
        w = _Window.of(month, tz)
        figures = await _figures_by_unit(db, month, response_limit_days)
        hists = await _time_histograms(db, w)
        origin: dict[int, int] = {}
        if desk_ids:
            desk_db = _Db(conn, tz, _offset_minutes(tz, month), desk_ids, settled=db.settled,
                          pending=pending)
            for r in await desk_db.rows(
                "SELECT c.workshop_id AS ws, COUNT(*) AS n FROM \"case\" c "  # noqa: S608
                "WHERE c.received_on >= :d0 AND c.received_on < :d1 "
                f"AND {desk_db.in_units('c.unit_id')} GROUP BY c.workshop_id", keep=KEEP,
                **w.params()
            ):
                origin[_int(r["ws"])] = _int(r["n"])
    await _keep(pending, today, connection)
    k = small_group_k

    def merged(ids: Sequence[int], i: int) -> Histogram:
        out: Histogram = {}
        for u in ids:
            _merge_hist(out, hists.get(u, ({}, {}))[i])
        return out

    def row(key: str, label: str, ids: Sequence[int], folded: int = 0) -> UnitRow:
        return UnitRow(key, label, _sum_figures(month, (figures[u] for u in ids)),
                       spread(merged(ids, 1)), folded)

    received = {u: figures[u].totals["received"] for u in ws_ids}
    named = _fold(received, k)
    ws_rows = [row(u.code, u.name, [u.id]) for u in workshops if u.id in named]
    rest = [u for u in ws_ids if u not in named]
    if rest:
        other = row(OTHER, OTHER_LABEL, rest)
        other.folded = sum(1 for u in rest if _active(figures[u]))
        if _active(other.figures):
            ws_rows.append(other)
    origin_named = _fold(origin, k)
    origin_rows = [OriginRow(u.code, u.name, origin[u.id]) for u in workshops
                   if u.id in origin_named]
    # A desk case from a unit that is no longer a workshop still counts (in 其他).
    origin_rest = [u for u in origin if u not in origin_named]
    if origin_rest:
        origin_rows.append(OriginRow(OTHER, OTHER_LABEL, sum(origin[u] for u in origin_rest),
                                     folded=len(origin_rest)))
    return DepotReport(
        month=month,
        figures=_sum_figures(month, (figures[u] for u in ws_ids)),
        accept_times=spread(merged(ws_ids, 0)),
        answer_times=spread(merged(ws_ids, 1)),
        workshops=ws_rows,
        desks=[row(u.code, u.name, [u.id]) for u in desks],
        desk_origin=origin_rows,
        workshop_count=len(ws_ids),
        timezone=tz.key,
        response_limit_days=response_limit_days,
        small_group_k=k,
        generated_at=now,
        complete=month.next().first <= today,
        movable=movable(month, response_limit_days, today),
    )


def _active(f: Figures) -> bool:
    return bool(f.totals["received"] or f.totals["answered"] or f.totals["closed"])
