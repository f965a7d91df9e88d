"""Monthly summary pages for leaders and admins: the printable page and its two CSV files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import org, report_export, reports, xlsx
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


async def build(month: Month, settings: Settings, list_limit: int | None = reports.LIST_LIMIT
                ) -> Report:
    return await reports.build_report(
        month, tz=settings.tz, response_limit_days=settings.response_limit_days,
        small_group_k=settings.small_group_k, rating_window_days=settings.rating_window_days,
        list_limit=list_limit,
    )


def report_context(report: Report, settings: Settings) -> dict[str, Any]:
    """Template context for the report (also used by ``suggestbox report --format html``)."""
    return _context(report, settings)


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
    await require_staff(request, *LEADERS)
    month = request.query_params.get("month", "")
    try:
        target = Month.parse(month) if month else Month.last_complete(today(request))
    except ValueError:
        target = Month.last_complete(today(request))
    return RedirectResponse(f"/staff/reports/{target}", status_code=303)


async def page(request: Request) -> Response:
    session = await require_staff(request, *LEADERS)
    month = _month(request)
    s = settings_of(request)
    report = await build(month, s)
    context = _context(report, s)
    context["org"] = await org.get_org()
    current = Month.of(today(request))
    context.update(
        me=session.user, csrf=session.csrf,
        prev_month=month.prev(), next_month=month.next() if month < current else None,
    )
    return render(request, "staff/report.html", context)


def _csv_response(data: bytes, filename: str) -> Response:
    return Response(data, media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="{filename}"'})


async def figures_csv(request: Request) -> Response:
    await require_staff(request, *LEADERS)
    month = _month(request)
    report = await build(month, settings_of(request), list_limit=0)
    return _csv_response(report_export.figures_csv(report), f"report-{month}-figures.csv")


async def cases_csv(request: Request) -> Response:
    await require_staff(request, *LEADERS)
    month = _month(request)
    rows = await reports.answered_cases(month, tz=settings_of(request).tz)
    return _csv_response(report_export.cases_csv(rows), f"report-{month}-cases.csv")


async def report_xlsx(request: Request) -> Response:
    await require_staff(request, *LEADERS)
    month = _month(request)
    data = await xlsx_bytes(month, settings_of(request))
    return Response(data, media_type=XLSX_TYPE, headers={
        "content-disposition": f'attachment; filename="report-{month}.xlsx"'})


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def xlsx_bytes(month: Month, settings: Settings) -> bytes:
    """Two sheets: the figures and the answered cases, numbers as numbers."""
    report = await build(month, settings, list_limit=0)
    listed = await reports.answered_cases(month, tz=settings.tz)
    return xlsx.workbook([("数字", report_export.figures_rows(report)),
                          ("案件", report_export.cases_rows(listed))])


routes = [
    Route("/staff/reports", index, methods=["GET"]),
    Route("/staff/reports/{month:str}/report.xlsx", report_xlsx, methods=["GET"]),
    Route("/staff/reports/{month:str}/figures.csv", figures_csv, methods=["GET"]),
    Route("/staff/reports/{month:str}/cases.csv", cases_csv, methods=["GET"]),
    Route("/staff/reports/{month:str}", page, methods=["GET"]),
]


# ---- command line (``suggestbox report``) ---------------------------------------------------

async def export(month: Month, fmt: str, settings: Settings, what: str = "figures") -> bytes:
    """The report as a file: standalone HTML (CSS inlined), CSV (UTF-8 with BOM) or JSON.
    Needs an initialised ORM (``db.orm``)."""
    import json

    from ..templating import make_templates

    if fmt == "xlsx":
        return await xlsx_bytes(month, settings)
    if fmt == "csv" and what == "cases":
        return report_export.cases_csv(await reports.answered_cases(month, tz=settings.tz))
    report = await build(month, settings, list_limit=None if fmt != "html" else reports.LIST_LIMIT)
    if fmt == "csv":
        return report_export.figures_csv(report)
    if fmt == "json":
        return json.dumps(report.as_dict(), ensure_ascii=False, indent=2).encode()
    env = make_templates(settings).env
    context = _context(report, settings)
    context["org"] = await org.get_org()
    context["css"] = (settings.static_dir / "style.css").read_text(encoding="utf-8")
    return env.get_template("staff/report_file.html").render(context).encode()
