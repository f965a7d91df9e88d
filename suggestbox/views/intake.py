"""Staff pages for cases that came another way (issue 16): record a case on a worker's behalf
(谈心, 座谈会, a paper slip, a phone call), and print paper slips with tear-off receipt stubs."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .. import depot, intake, qr, tokens
from ..cases import DomainError, clean_text
from ..models import StaffSession, Team, Unit
from ..templating import render
from .common import field, parse_id, require_staff, settings_of, staff_form, today
from .public import _photos_of, _take_files

RECORDERS = ("leader", "admin")


async def _workshop(request: Request, session: StaffSession, code: str) -> Unit | None:
    """The workshop to record for: the account's own, or (a depot account) the one chosen."""
    home = session.user.unit_id  # type: ignore[attr-defined]
    if home is not None:
        unit = await Unit.get(id=home)
        if unit.kind != depot.WORKSHOP or (code and code != unit.code):
            raise HTTPException(404)
        return unit
    if not code:
        return await depot.single_workshop()
    chosen = await depot.unit_by_code(code, depot.WORKSHOP)
    if chosen is None:
        raise HTTPException(404)
    return chosen


async def _context(request: Request, session: StaffSession, workshop: Unit | None
                   ) -> dict[str, Any]:
    s = settings_of(request)
    return {
        "me": session.user, "csrf": session.csrf, "workshop": workshop,
        "workshops": await depot.workshops() if session.user.unit_id is None else [],  # type: ignore[attr-defined]
        "sources": await intake.recordable_sources(),
        "categories": await depot.offered_categories(workshop) if workshop else [],
        "teams": await Team.filter(workshop_id=workshop.id, active=True) if workshop else [],
        "token": tokens.issue(s.secret_key, today(request), "record"),
        "limits": (s.text_min, s.text_max * 2), "settings": s, "form": {}, "errors": {},
    }


async def record_page(request: Request) -> Response:
    session = await require_staff(request, *RECORDERS)
    workshop = await _workshop(request, session, request.query_params.get("w", "").strip())
    return render(request, "staff/record.html", await _context(request, session, workshop))


async def record(request: Request) -> Response:
    session, form = await staff_form(request, *RECORDERS, max_files=10)
    files = await _take_files(form)
    s = settings_of(request)
    workshop = await _workshop(request, session, field(form, "w").strip())
    if workshop is None:
        raise HTTPException(404)
    errors: dict[str, str] = {}
    body = ""
    try:
        body = clean_text(field(form, "body"), minimum=1, maximum=s.text_max * 2, label="内容")
    except DomainError as e:
        errors["body"] = e.message
    cleaned, photo_error = await _photos_of(files, s)
    if photo_error:
        errors["photos"] = photo_error
    nonce = tokens.verify(s.secret_key, field(form, "token"), today(request), "record")
    if nonce is None:
        errors["form"] = "表单已过期，请检查内容后再提交一次。"
    team_id = parse_id(field(form, "team"))
    team = await Team.get_or_none(id=team_id) if team_id else None
    done = None
    if not errors and nonce is not None:
        try:
            done = await intake.record_case(
                secret_key=s.secret_key, actor=session.user, workshop=workshop,
                source_id=parse_id(field(form, "source")),
                category_id=parse_id(field(form, "category")) or 0, team=team, body=body,
                today=today(request), tz=s.tz, slip_code=field(form, "slip")[:64],
                photos=cleaned, form_id=tokens.used_id(s.secret_key, "record:" + nonce),
            )
        except DomainError as e:
            errors[e.field or "form"] = e.message
    if done is not None:
        # Shown once, on this response: a reload asks the browser to send the form again,
        # which records nothing (the form's id is used).
        response = render(request, "staff/recorded.html", {
            "me": session.user, "csrf": session.csrf, "case": done.case,
            "receipt": None if field(form, "slip").strip() else done.receipt,
            "workshop": workshop})
        response.headers["cache-control"] = "no-store"
        return response
    context = await _context(request, session, workshop)
    context.update(errors=errors, form={k: field(form, k)[: s.text_max * 2] for k in (
        "source", "category", "team", "slip", "body")})
    return render(request, "staff/record.html", context, status_code=422)


async def slips_page(request: Request) -> Response:
    session = await require_staff(request, "admin")
    workshop = await _workshop(request, session, request.query_params.get("w", "").strip())
    return render(request, "admin/slips.html", {
        "me": session.user, "csrf": session.csrf, "workshop": workshop,
        "workshops": await depot.workshops() if session.user.unit_id is None else [],  # type: ignore[attr-defined]
        "expiry_days": settings_of(request).slip_expiry_days, "form": {}, "errors": {},
        "max": intake.SLIPS_MAX})


async def slips_print(request: Request) -> Response:
    """Creates the codes and returns the printable page (A5 slips, two per A4 sheet)."""
    session, form = await staff_form(request, "admin")
    s = settings_of(request)
    workshop = await _workshop(request, session, field(form, "w").strip())
    if workshop is None:
        raise HTTPException(404)
    try:
        count = int(field(form, "count") or "0")
    except ValueError:
        count = 0
    try:
        codes = await intake.print_slips(s.secret_key, workshop, count, today(request),
                                         s.slip_expiry_days)
    except DomainError as e:
        return render(request, "admin/slips.html", {
            "me": session.user, "csrf": session.csrf, "workshop": workshop,
            "workshops": [], "expiry_days": s.slip_expiry_days, "max": intake.SLIPS_MAX,
            "form": {"count": field(form, "count")[:10]}, "errors": {"count": e.message}}, 422)
    html = render_slips(request.app.state.templates.env, codes, s.base_url, workshop.name,
                        s.slip_expiry_days)
    return HTMLResponse(html, headers={"cache-control": "no-store"})


def render_slips(env: Any, codes: list[str], base_url: str, workshop_name: str,
                 expiry_days: int, inline_css: str | None = None) -> str:
    """The printable slips: a QR code of the /track address (never of the code) on each stub."""
    try:
        track = qr.check_base_url(base_url) + "/track"
        svg = qr.svg_inline(track)
    except qr.BaseUrlMissing:
        track, svg = "", None
    return str(env.get_template("slips.html").render(
        codes=codes, track=track, short=qr.short_url(track) if track else "", svg=svg,
        workshop=workshop_name, expiry_days=expiry_days, inline_css=inline_css))


routes = [
    Route("/staff/cases/new", record_page, methods=["GET"]),
    Route("/staff/cases/new", record, methods=["POST"]),
    Route("/admin/slips", slips_page, methods=["GET"]),
    Route("/admin/slips", slips_print, methods=["POST"]),
]
