"""Admin pages: staff accounts, teams (班组/地点) and categories."""

from __future__ import annotations

import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from tortoise.exceptions import IntegrityError

from .. import auth
from ..cases import DomainError
from ..models import Category, StaffUser, Team
from ..templating import render
from .common import field, parse_id, require_staff, staff_form

TEAM_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


async def _page(request: Request, extra: dict[str, Any] | None = None, status: int = 200,
                session: Any = None) -> Response:
    session = session or await require_staff(request, "admin")
    context = {
        "me": session.user, "csrf": session.csrf,
        "users": await StaffUser.all(), "teams": await Team.all(),
        "categories": await Category.all(), "roles": auth.ROLES,
    }
    context.update(extra or {})
    return render(request, "admin/index.html", context, status_code=status)


async def index(request: Request) -> Response:
    return await _page(request)


def _done() -> Response:
    return RedirectResponse("/admin", status_code=303)


async def _int_field(form: Any, name: str, label: str, low: int, high: int) -> int:
    try:
        value = int(field(form, name) or "0")
    except ValueError as exc:
        raise DomainError(f"{label}必须是整数。", field=name) from exc
    if not low <= value <= high:
        raise DomainError(f"{label}应在 {low} 到 {high} 之间。", field=name)
    return value


async def users(request: Request) -> Response:
    session, form = await staff_form(request, "admin")
    op = field(form, "op")
    try:
        if op == "add":
            await auth.add_user(field(form, "username"), field(form, "role"),
                                field(form, "password"), field(form, "display_name"))
        else:
            user_id = parse_id(field(form, "id"))
            user = await StaffUser.get_or_none(id=user_id) if user_id else None
            if user is None:
                raise HTTPException(404)
            if op == "disable":
                if user.id == session.user.id:
                    raise DomainError("不能停用自己的账号。")
                await auth.set_active(user, False)
            elif op == "enable":
                await auth.set_active(user, True)
            elif op == "password":
                await auth.set_password(user, field(form, "password"))
            else:
                raise HTTPException(400)
    except DomainError as e:
        return await _page(request, {"error": e.message, "form": dict(form)}, 422, session)
    return _done()


async def teams(request: Request) -> Response:
    session, form = await staff_form(request, "admin")
    try:
        code = field(form, "code").strip()
        name = field(form, "name").strip()
        if not TEAM_CODE.match(code):
            raise DomainError(
                "班组代码只能用字母、数字、- 和 _，最多 32 个字符（用在二维码链接里）。")
        if not name or len(name) > 64:
            raise DomainError("请填写班组/地点名称（最多 64 个字）。")
        order = await _int_field(form, "sort_order", "排序", -999, 999)
        active = field(form, "active") == "1"
        team_id = field(form, "id")
        if team_id:
            updated = await Team.filter(id=parse_id(team_id) or 0).update(
                code=code, name=name, sort_order=order, active=active)
            if not updated:
                raise HTTPException(404)
        else:
            await Team.create(code=code, name=name, sort_order=order, active=True)
    except IntegrityError:
        return await _page(request, {"error": "这个班组代码已经存在。"}, 422, session)
    except (DomainError, ValueError) as e:
        message = e.message if isinstance(e, DomainError) else "输入有误。"
        return await _page(request, {"error": message, "form": dict(form)}, 422, session)
    return _done()


async def categories(request: Request) -> Response:
    session, form = await staff_form(request, "admin")
    try:
        name = field(form, "name").strip()
        if not name or len(name) > 32:
            raise DomainError("请填写类别名称（最多 32 个字）。")
        days = await _int_field(form, "deadline_days", "办理期限天数", 1, 365)
        order = await _int_field(form, "sort_order", "排序", -999, 999)
        active = field(form, "active") == "1"
        category_id = field(form, "id")
        if category_id:
            updated = await Category.filter(id=parse_id(category_id) or 0).update(
                name=name, deadline_days=days, sort_order=order, active=active)
            if not updated:
                raise HTTPException(404)
        else:
            await Category.create(name=name, deadline_days=days, sort_order=order, active=True)
    except IntegrityError:
        return await _page(request, {"error": "这个类别名称已经存在。"}, 422, session)
    except (DomainError, ValueError) as e:
        message = e.message if isinstance(e, DomainError) else "输入有误。"
        return await _page(request, {"error": message, "form": dict(form)}, 422, session)
    return _done()


routes = [
    Route("/admin", index, methods=["GET"]),
    Route("/admin/users", users, methods=["POST"]),
    Route("/admin/teams", teams, methods=["POST"]),
    Route("/admin/categories", categories, methods=["POST"]),
]
