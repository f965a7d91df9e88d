"""Admin pages for QR codes and printable posters (one per team/location, one for the box)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from .. import depot, lan, org, qr
from ..models import StaffSession, Unit
from ..settings import env_file_path
from ..templating import render
from .common import require_staff, settings_of


async def _workshop(request: Request, session: StaffSession) -> Unit | None:
    """``?w=<code>``: whose posters (a workshop admin: always their own; another's is 404)."""
    home = session.user.unit_id  # type: ignore[attr-defined]
    code = request.query_params.get("w", "").strip()
    if not code:
        return await Unit.get(id=home) if home is not None else await depot.first_workshop()
    unit = await depot.unit_by_code(code, depot.WORKSHOP)
    if unit is None or (home is not None and unit.id != home):
        raise HTTPException(404)
    return unit


async def _posters(request: Request, session: StaffSession, *, everything: bool = False
                   ) -> list[qr.Poster]:
    code = request.query_params.get("t", "").strip()[:32] or None
    try:
        return await qr.load_posters(settings_of(request).base_url, code, everything=everything,
                                     workshop=await _workshop(request, session))
    except qr.UnknownTeam as exc:
        raise HTTPException(404, "没有这个班组/地点，或它已停用。") from exc


async def poster_list(request: Request) -> Response:
    session = await require_staff(request, "admin")
    base = settings_of(request).base_url
    port = request.url.port
    workshop = await _workshop(request, session)
    home = session.user.unit_id  # type: ignore[attr-defined]
    return render(request, "admin/posters.html", {
        "me": session.user, "csrf": session.csrf, "workshop": workshop,
        "workshops": await depot.workshops() if home is None else [],
        "wq": f"w={workshop.code}&" if workshop else "",
        "posters": await _posters(request, session, everything=True),
        "problem": qr.base_url_problem(base),
        "env_file": env_file_path(),
        "suggested": [f"http://{a}" + (f":{port}" if port else "")
                      for a in lan.lan_addresses()],
        "plain_http": base.strip().lower().startswith("http://"),
    })


async def poster_print(request: Request) -> Response:
    """The printable page: ``?t=CODE`` one team, no ``t`` the whole box, ``?all=1`` every one."""
    session = await require_staff(request, "admin")
    posters = await _posters(request, session,
                             everything=request.query_params.get("all") == "1")
    templates: Jinja2Templates = request.app.state.templates
    html = qr.render_posters(templates.env, posters, settings_of(request).base_url,
                             org=await org.get_org())
    return HTMLResponse(html)


async def qr_image(request: Request) -> Response:
    session = await require_staff(request, "admin")
    fmt = request.path_params["fmt"]
    if fmt not in qr.FORMATS:
        raise HTTPException(404)
    poster = (await _posters(request, session))[0]
    if poster.url is None:
        raise HTTPException(409, qr.base_url_problem(settings_of(request).base_url))
    name = f"suggestbox-qr-{poster.team_code or 'box'}.{fmt}"
    return Response(
        qr.image_bytes(poster.url, fmt),
        media_type="image/svg+xml" if fmt == "svg" else "image/png",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


routes = [
    Route("/admin/posters", poster_list, methods=["GET"]),
    Route("/admin/posters/print", poster_print, methods=["GET"]),
    Route("/admin/qr.{fmt:str}", qr_image, methods=["GET"]),
]
