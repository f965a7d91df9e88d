"""First-run setup link (creates the first admin) and the organisation settings page."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import org
from ..cases import DomainError
from ..models import StaffSession
from ..templating import render
from .common import field, now_utc, read_form, require_staff, staff_form


async def setup_page(request: Request) -> Response:
    token = request.path_params["token"]
    if not await org.setup_token_valid(token, now_utc()):
        raise HTTPException(404, "这个设置链接已失效或已用过。已有管理员时，请直接登录。")
    return render(request, "setup.html", {"token": token})


async def setup(request: Request) -> Response:
    token = request.path_params["token"]
    form = await read_form(request)
    kept = {"username": field(form, "username"), "display_name": field(form, "display_name")}
    try:
        await org.create_first_admin(
            token, now_utc(), username=kept["username"], password=field(form, "password"),
            password2=field(form, "password2"), display_name=kept["display_name"])
    except DomainError as e:
        if e.field == "form":
            raise HTTPException(404, e.message) from e
        return render(request, "setup.html", {"token": token, "form": kept,
                                              "errors": {e.field or "form": e.message}}, 422)
    return RedirectResponse("/staff/login?setup=1", status_code=303)


def _depot_admin(session: StaffSession) -> None:
    """The organisation (the depot's name, its emergency line) is the depot admin's."""
    if session.user.unit_id is not None:  # type: ignore[attr-defined]
        raise HTTPException(404)


async def org_page(request: Request) -> Response:
    session = await require_staff(request, "admin")
    _depot_admin(session)
    return render(request, "admin/org.html", {
        "me": session.user, "csrf": session.csrf, "org": await org.get_org(),
        "saved": request.query_params.get("saved") == "1"})


async def org_save(request: Request) -> Response:
    session, form = await staff_form(request, "admin")
    _depot_admin(session)
    try:
        await org.set_org(field(form, "name"), field(form, "phone"), field(form, "reward_desk"))
    except DomainError as e:
        return render(request, "admin/org.html", {
            "me": session.user, "csrf": session.csrf,
            "org": org.Org(name=field(form, "name")[:200], phone=field(form, "phone")[:200],
                           reward_desk=field(form, "reward_desk")[:200]),
            "errors": {e.field or "form": e.message}}, 422)
    return RedirectResponse("/admin/org?saved=1", status_code=303)


routes = [
    Route("/setup/{token:str}", setup_page, methods=["GET"]),
    Route("/setup/{token:str}", setup, methods=["POST"]),
    Route("/admin/org", org_page, methods=["GET"]),
    Route("/admin/org", org_save, methods=["POST"]),
]
