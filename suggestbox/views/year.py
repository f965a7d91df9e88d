"""The year summary (年度总结) page and its Word file, scoped like the monthly report pages."""

from __future__ import annotations

from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import org
from ..months import Month
from ..settings import Settings
from ..templating import render
from ..year_report import (
    BASE_RATES,
    MONTH_COLUMNS,
    YEAR_MAX,
    YEAR_MIN,
    YearReport,
    build_year_report,
    rate_label,
    total_label,
)
from .common import require_staff, settings_of, today
from .reports import LEADERS, Target, _named_or_depot, _target


class YearConvertor(Convertor[int]):
    """Exactly four digits: ``/staff/reports/2025``. Anything else falls through to the
    monthly routes, which answer 404 (never ``int()`` of a 5,000-digit path segment)."""

    regex = "[0-9]{4}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return f"{value:04d}"


register_url_convertor("year", YearConvertor())

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _year(request: Request) -> int:
    year = int(request.path_params["year"])
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise HTTPException(404)
    if year > today(request).year:
        raise HTTPException(404, "这一年还没有到。")
    return year


async def build_year(year: int, settings: Settings, who: Target) -> YearReport:
    if who.unit is None:
        return await build_year_report(
            year, units=who.units, tz=settings.tz, unit_label="全段", depot=True,
            unit_names={u.id: u.name for u in who.workshops},
            response_limit_days=settings.response_limit_days,
            small_group_k=settings.small_group_k)
    return await build_year_report(
        year, units=who.units, tz=settings.tz, unit_label=who.unit.name,
        response_limit_days=settings.response_limit_days, small_group_k=settings.small_group_k)


def year_context(r: YearReport) -> dict[str, Any]:
    return {
        "r": r,
        "report": r,
        "month_columns": [(n, total_label(n)) for n in MONTH_COLUMNS],
        "month_rates": [(n, rate_label(n)) for n in BASE_RATES],
        "adoption_columns": [(n, total_label(n)) for n in r.adoption_month_columns],
        "adoption_month_rates": [(n, rate_label(n)) for n in r.adoption_rates],
        "k": r.small_group_k,
    }


def _file_name(year: int, who: Target, suffix: str) -> str:
    unit = f"-{who.unit.code}" if who.unit is not None and who.query else ""
    if who.unit is None:
        unit = "-depot"
    return f"year-{year}{unit}{suffix}"


async def page(request: Request) -> Response:
    session = await require_staff(request, *LEADERS)
    year = _year(request)
    who = await _target(request, session.user)
    r = await build_year(year, settings_of(request), who)
    context = year_context(r)
    current = today(request)
    context.update(
        org=await org.get_org(), me=session.user, csrf=session.csrf, wq=who.query,
        unit=who.unit, prev_year=year - 1 if year > YEAR_MIN else None,
        next_year=year + 1 if year < current.year else None,
        last_month=Month(year, 12) if year < current.year else Month.of(current),
    )
    return render(request, "staff/year.html", context)


async def docx_file(request: Request) -> Response:
    session = await require_staff(request, *LEADERS)
    year = _year(request)
    who = await _target(request, session.user)
    r = await build_year(year, settings_of(request), who)
    from ..docx_export import year_docx  # python-docx (lxml) loads on first use only

    data = year_docx(r, (await org.get_org()).name or "")
    return Response(data, media_type=DOCX_TYPE, headers={
        "content-disposition": f'attachment; filename="{_file_name(year, who, ".docx")}"'})


# Before the monthly routes: /staff/reports/{month:str} would take "2025" too (and 404 it).
routes = [
    Route("/staff/reports/{year:year}/year.docx", docx_file, methods=["GET"]),
    Route("/staff/reports/{year:year}", page, methods=["GET"]),
]


# ---- command line (``suggestbox report YYYY``) ------------------------------------------------

async def export_year(year: int, fmt: str, settings: Settings,
                      workshop: str | None = None) -> bytes:
    """The year as docx, standalone HTML (CSS inlined) or JSON. Needs an initialised ORM.
    ``LookupError`` for an unknown unit code."""
    import json

    from ..templating import make_templates

    who = await _named_or_depot(workshop, None)
    r = await build_year(year, settings, who)
    if fmt == "json":
        return json.dumps(r.as_dict(), ensure_ascii=False, indent=2).encode()
    org_name = (await org.get_org()).name or ""
    if fmt == "docx":
        from ..docx_export import year_docx

        return year_docx(r, org_name)
    env = make_templates(settings).env
    context = year_context(r)
    context.update(org=await org.get_org(), unit=who.unit,
                   css=(settings.static_dir / "style.css").read_text(encoding="utf-8"))
    return env.get_template("staff/year_file.html").render(context).encode()
