"""Monthly summary pages for leaders and admins: the printable page and its two CSV files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import depot, org, report_export, reports, xlsx
from ..depot_report import DepotReport, build_depot_report
from ..models import Unit
from ..months import Month
from ..reports import Report
from ..settings import Settings
from ..templating import render
from .common import require_staff, settings_of, today

LEADERS = ("leader", "admin")
RECEIVED_FILL = "#0b5cad"
ANSWERED_FILL = "#7fb069"


# ---- charts: plain SVG geometry, drawn by the templates ---------------------------------------

@dataclass
class Bar:
    x: float
    y: float
    w: float
    h: float
    fill: str
    value: int
    label_y: float


@dataclass
class Slot:
    label: str
    x: float  # centre
    bars: list[Bar]


def _nice_max(value: int) -> int:
    """A round top for the scale, divisible by 4 (four gridlines)."""
    if value <= 4:
        return 4
    magnitude = 10 ** (len(str(value)) - 1)
    for m in (1, 2, 4, 8, 10):
        if m * magnitude >= value and (m * magnitude) % 4 == 0:
            return m * magnitude
    return 10 * magnitude  # pragma: no cover


def bar_chart(
    items: list[tuple[str, int, int]], *, width: int = 680, height: int = 250
) -> dict[str, Any]:
    """Grouped bars (received, answered) per item, with a scale of four gridlines."""
    left, right, top, bottom = 40, 10, 16, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max([max(a, b) for _, a, b in items] or [0]))
    slot_w = plot_w / max(len(items), 1)
    bar_w = min(28.0, slot_w * 0.35)
    base = top + plot_h
    slots = []
    for i, (label, a, b) in enumerate(items):
        cx = left + slot_w * (i + 0.5)
        bars = []
        for j, (value, fill) in enumerate(((a, RECEIVED_FILL), (b, ANSWERED_FILL))):
            h = plot_h * value / top_value
            x = cx - bar_w - 1 + j * (bar_w + 2)
            bars.append(Bar(round(x, 1), round(base - h, 1), round(bar_w, 1), round(h, 1),
                            fill, value, round(base - h - 3, 1)))
        slots.append(Slot(label, round(cx, 1), bars))
    grid = [
        {"y": round(base - plot_h * f / 4, 1), "value": round(top_value * f / 4, 1)}
        for f in range(5)
    ]
    for g in grid:
        v = g["value"]
        g["value"] = int(v) if v == int(v) else v
    return {"width": width, "height": height, "left": left, "right": width - right,
            "base": base, "slots": slots, "grid": grid, "label_y": base + 16,
            "legend_y": height - 8, "received_fill": RECEIVED_FILL,
            "answered_fill": ANSWERED_FILL}


def _context(report: Report, settings: Settings) -> dict[str, Any]:
    categories = bar_chart([(g.label, g.received, g.answered or 0) for g in report.by_category])
    trend = bar_chart([(t.month.short, t.received, t.answered) for t in report.trend])
    return {
        "report": report,
        "r": report,
        "cur": report.figures,
        "prev": report.previous,
        "total_labels": reports.TOTAL_LABELS,
        "total_definitions": reports.TOTAL_DEFINITIONS,
        "rate_labels": reports.RATE_LABELS,
        "rate_definitions": reports.rate_definitions(report.response_limit_days),
        "time_definitions": reports.TIME_DEFINITIONS,
        "percentile_note": reports.PERCENTILE_NOTE,
        "category_chart": categories,
        "trend_chart": trend,
        "list_limit": reports.LIST_LIMIT,
        "k": report.small_group_k,
    }


async def build(month: Month, settings: Settings, unit: Unit,
                list_limit: int | None = reports.LIST_LIMIT) -> Report:
    return await reports.build_report(
        month, units=(unit.id,), tz=settings.tz, response_limit_days=settings.response_limit_days,
        small_group_k=settings.small_group_k, rating_window_days=settings.rating_window_days,
        list_limit=list_limit,
    )


def report_context(report: Report, settings: Settings) -> dict[str, Any]:
    """Template context for the report (also used by ``suggestbox report --format html``)."""
    return _context(report, settings)


async def build_depot(month: Month, settings: Settings, target: Target) -> DepotReport:
    return await build_depot_report(
        month, tz=settings.tz, workshops=target.workshops, desks=target.desks,
        response_limit_days=settings.response_limit_days, small_group_k=settings.small_group_k)


def depot_context(report: DepotReport) -> dict[str, Any]:
    return {
        "report": report, "r": report, "cur": report.figures,
        "total_labels": reports.TOTAL_LABELS,
        "total_definitions": reports.TOTAL_DEFINITIONS,
        "rate_labels": reports.RATE_LABELS,
        "rate_definitions": reports.rate_definitions(report.response_limit_days),
        "time_definitions": reports.TIME_DEFINITIONS,
        "percentile_note": reports.PERCENTILE_NOTE,
        "k": report.small_group_k,
    }


# ---- whose report ---------------------------------------------------------------------------

@dataclass
class Target:
    """Whose report: one unit's (``unit``), or the depot's (``unit`` None)."""

    unit: Unit | None
    query: str = ""  # "?w=<code>" for the page's links, when the request named the unit
    workshops: list[Unit] = field(default_factory=list)
    desks: list[Unit] = field(default_factory=list)

    @property
    def units(self) -> tuple[int, ...]:
        if self.unit is not None:
            return (self.unit.id,)
        return tuple(u.id for u in self.workshops)


def _query(code: str) -> str:
    return "?" + urlencode({"w": code})


async def resolve_target(user: Any, code: str) -> Target:
    """The authorization matrix. A workshop or desk account always gets its own unit's report,
    and 404 when ``code`` names another unit. A depot account (no unit): a workshop's code →
    that workshop; a desk's code or an unknown one → 404; no code → the depot report (the one
    workshop's report when the depot has a single workshop)."""
    code = code.strip().lower()
    unit_id = user.unit_id
    if unit_id is not None:
        unit = await Unit.get_or_none(id=unit_id)
        if unit is None or (code and code != unit.code):
            raise LookupError(code)
        return Target(unit, _query(unit.code) if code else "")
    return await _named_or_depot(code, depot.WORKSHOP)


async def _named_or_depot(code: str | None, kind: str | None) -> Target:
    """The unit ``code`` names (of ``kind``; LookupError if none), else the depot's report —
    the one workshop's when the depot has a single workshop."""
    if code:
        unit = await depot.unit_by_code(code, kind=kind)
        if unit is None:
            raise LookupError(code)
        return Target(unit, _query(unit.code))
    workshops = await depot.workshops(active_only=False)
    if len(workshops) == 1:
        return Target(workshops[0])
    return Target(None, workshops=workshops, desks=await depot.desks(active_only=False))


async def _target(request: Request, user: Any) -> Target:
    try:
        return await resolve_target(user, request.query_params.get("w", ""))
    except LookupError as exc:
        raise HTTPException(404) from exc


# ---- views ----------------------------------------------------------------------------------

def _month(request: Request) -> Month:
    try:
        month = Month.parse(request.path_params["month"])
    except ValueError as exc:
        raise HTTPException(404) from exc
    if month > Month.of(today(request)):
        raise HTTPException(404, "这个月还没有到。")
    return month


async def index(request: Request) -> Response:
    session = await require_staff(request, *LEADERS)
    who = await _target(request, session.user)
    month = request.query_params.get("month", "")
    try:
        target = Month.parse(month) if month else Month.last_complete(today(request))
    except ValueError:
        target = Month.last_complete(today(request))
    return RedirectResponse(f"/staff/reports/{target}{who.query}", status_code=303)


async def page(request: Request) -> Response:
    session = await require_staff(request, *LEADERS)
    month = _month(request)
    who = await _target(request, session.user)
    s = settings_of(request)
    context: dict[str, Any]
    if who.unit is None:
        context = depot_context(await build_depot(month, s, who))
        template = "staff/depot_report.html"
    else:
        context = _context(await build(month, s, who.unit), s)
        context["unit"] = who.unit
        template = "staff/report.html"
    context["org"] = await org.get_org()
    current = Month.of(today(request))
    context.update(
        me=session.user, csrf=session.csrf, wq=who.query, w=who.unit.code if who.query and
        who.unit else "",
        prev_month=month.prev(), next_month=month.next() if month < current else None,
    )
    return render(request, template, context)


def _csv_response(data: bytes, filename: str) -> Response:
    return Response(data, media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="{filename}"'})


def _file_name(month: Month, who: Target, suffix: str) -> str:
    unit = f"-{who.unit.code}" if who.unit is not None and who.query else ""
    if who.unit is None:
        unit = "-depot"
    return f"report-{month}{unit}{suffix}"


async def figures_csv(request: Request) -> Response:
    session = await require_staff(request, *LEADERS)
    month = _month(request)
    who = await _target(request, session.user)
    data = await figures_bytes(month, settings_of(request), who)
    return _csv_response(data, _file_name(month, who, "-figures.csv"))


async def cases_csv(request: Request) -> Response:
    session = await require_staff(request, *LEADERS)
    month = _month(request)
    who = await _target(request, session.user)
    data = await cases_bytes(month, settings_of(request), who)
    return _csv_response(data, _file_name(month, who, "-cases.csv"))


async def report_xlsx(request: Request) -> Response:
    session = await require_staff(request, *LEADERS)
    month = _month(request)
    who = await _target(request, session.user)
    data = await xlsx_bytes(month, settings_of(request), who)
    return Response(data, media_type=XLSX_TYPE, headers={
        "content-disposition": f'attachment; filename="{_file_name(month, who, ".xlsx")}"'})


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def figures_bytes(month: Month, settings: Settings, who: Target) -> bytes:
    if who.unit is None:
        return report_export.depot_csv(await build_depot(month, settings, who))
    return report_export.figures_csv(await build(month, settings, who.unit, list_limit=0))


async def _listed(month: Month, settings: Settings, who: Target) -> list[list[Any]]:
    """The answered cases of the unit, or of every workshop (with a 车间 column, never a desk's
    case) for the depot."""
    listed = await reports.answered_cases(month, units=who.units, tz=settings.tz)
    if who.unit is not None:
        return report_export.cases_rows(listed)
    return report_export.cases_rows(listed, units={u.id: u.name for u in who.workshops})


async def cases_bytes(month: Month, settings: Settings, who: Target) -> bytes:
    return report_export.rows_csv(await _listed(month, settings, who))


async def xlsx_bytes(month: Month, settings: Settings, who: Target) -> bytes:
    """Two sheets: the figures and the answered cases, numbers as numbers."""
    if who.unit is None:
        figures = report_export.depot_rows(await build_depot(month, settings, who))
    else:
        figures = report_export.figures_rows(
            await build(month, settings, who.unit, list_limit=0))
    return xlsx.workbook([("数字", figures), ("案件", await _listed(month, settings, who))])


routes = [
    Route("/staff/reports", index, methods=["GET"]),
    Route("/staff/reports/{month:str}/report.xlsx", report_xlsx, methods=["GET"]),
    Route("/staff/reports/{month:str}/figures.csv", figures_csv, methods=["GET"]),
    Route("/staff/reports/{month:str}/cases.csv", cases_csv, methods=["GET"]),
    Route("/staff/reports/{month:str}", page, methods=["GET"]),
]


# ---- command line (``suggestbox report``) ---------------------------------------------------

async def export_target(code: str | None) -> Target:
    """``suggestbox report``: ``--workshop CODE`` (any unit's code), else the depot report when
    there are several workshops, the one workshop's report otherwise."""
    return await _named_or_depot(code, None)


async def export(month: Month, fmt: str, settings: Settings, what: str = "figures",
                 workshop: str | None = None) -> bytes:
    """The report as a file: standalone HTML (CSS inlined), CSV (UTF-8 with BOM) or JSON.
    Needs an initialised ORM (``db.orm``). ``LookupError`` for an unknown unit code."""
    import json

    from ..templating import make_templates

    who = await export_target(workshop)
    if fmt == "xlsx":
        return await xlsx_bytes(month, settings, who)
    if fmt == "csv" and what == "cases":
        return await cases_bytes(month, settings, who)
    if fmt == "csv":
        return await figures_bytes(month, settings, who)
    env = make_templates(settings).env
    context: dict[str, Any]
    if who.unit is None:
        depot_report = await build_depot(month, settings, who)
        if fmt == "json":
            return json.dumps(depot_report.as_dict(), ensure_ascii=False, indent=2).encode()
        context = depot_context(depot_report)
        template = "staff/depot_report_file.html"
    else:
        report = await build(month, settings, who.unit,
                             list_limit=None if fmt != "html" else reports.LIST_LIMIT)
        if fmt == "json":
            return json.dumps(report.as_dict(), ensure_ascii=False, indent=2).encode()
        context = _context(report, settings)
        context["unit"] = who.unit
        template = "staff/report_file.html"
    context["org"] = await org.get_org()
    context["css"] = (settings.static_dir / "style.css").read_text(encoding="utf-8")
    return env.get_template(template).render(context).encode()
