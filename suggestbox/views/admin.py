"""Admin pages: the depot's tree (workshops, desks), staff accounts, teams (班组/地点) and
categories.

A depot admin (no unit) manages everything; a workshop admin manages their workshop's staff,
teams and own categories. Anything of another workshop is "not found" (404) for them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from tortoise.exceptions import IntegrityError

from .. import auth, cases, depot
from ..cases import DomainError
from ..models import Category, EscalationLevel, Source, StaffSession, StaffUser, Team, Unit
from ..templating import render
from .common import field, parse_id, require_staff, settings_of, staff_form, tree_of

TEAM_CODE = depot.TEAM_CODE


# Confirmations after a successful POST (POST/redirect/GET): ?ok=<key>, shown in the section
# the form belongs to. A new user's name comes from the database (?u=<id>), not from the URL.
NOTICES: dict[str, tuple[str, str]] = {
    "user_added": ("users", "已添加工作人员。"),
    "user_disabled": ("users", "已停用该账号，其登录均已失效。"),
    "user_enabled": ("users", "已启用该账号。"),
    "password_reset": ("users", "已重置密码，该用户已有的登录均已失效。"),
    "team_added": ("teams", "已添加班组/地点。"),
    "team_saved": ("teams", "已保存班组/地点。"),
    "category_added": ("categories", "已添加类别。"),
    "category_saved": ("categories", "已保存类别。"),
    "unit_added": ("units", "已添加。"),
    "source_added": ("sources", "已添加来源。"),
    "source_saved": ("sources", "已保存来源。"),
    "unit_saved": ("units", "已保存。"),
    "level_added": ("ladder", "已添加升级规则。"),
    "level_saved": ("ladder", "已保存升级规则。"),
}


def home_of(session: StaffSession) -> int | None:
    """The workshop a workshop admin manages; None for a depot admin."""
    return session.user.unit_id  # type: ignore[attr-defined]


def _in_reach(session: StaffSession, unit_id: int | None) -> bool:
    home = home_of(session)
    return home is None or unit_id == home


async def _unit_field(form: Any, session: StaffSession, name: str, *, allow_none: bool,
                      kind: str | None = None) -> Unit | None:
    """The unit a form names by code: a workshop admin's own workshop, always."""
    home = home_of(session)
    if home is not None:
        return await Unit.get(id=home)
    code = field(form, name).strip()
    if not code:
        if allow_none:
            return None
        single = await depot.single_workshop()  # one workshop: no need to choose
        if single is None:
            raise DomainError("请选择车间。", field=name)
        return single
    unit = await depot.unit_by_code(code, kind)
    if unit is None:
        raise DomainError("请重新选择车间或段级渠道。", field=name)
    return unit


async def _urgency_fields(form: Any) -> dict[str, Any]:
    """紧急（按小时）: both limits in hours, the answer's no shorter than the acceptance's."""
    if field(form, "urgent") != "1":
        return {"urgent": False}
    respond = await _int_field(form, "respond_hours", "受理时限（小时）", 1, 720)
    answer = await _int_field(form, "answer_hours", "答复时限（小时）", 1, 2160)
    if answer < respond:
        raise DomainError("答复时限不能短于受理时限。", field="answer_hours")
    return {"urgent": True, "respond_hours": respond, "answer_hours": answer}


async def ladder(request: Request) -> Response:
    """The escalation ladder of the admin's unit (a workshop admin) or of the depot; a depot
    admin edits a workshop's own with ``w``. A unit without levels of its own uses the depot's."""
    session, form = await staff_form(request, "admin")
    level_id = field(form, "id")
    target = f"level-{level_id}" if level_id else "level-add"
    try:
        after = await _int_field(form, "after_hours", "期限后小时数", 0, 24 * 60)
        who = field(form, "target")
        if who not in cases.LADDER_TARGETS:
            raise DomainError("请选择通知谁。", field="target")
        if level_id:
            level = await EscalationLevel.get_or_none(id=parse_id(level_id) or 0)
            if level is None or not _ladder_in_reach(session, level.unit_id):  # type: ignore[attr-defined]
                raise HTTPException(404)
            await EscalationLevel.filter(id=level.id).update(
                after_hours=after, target=who, active=field(form, "active") == "1")
        else:
            unit = await _unit_field(form, session, "unit", allow_none=True)
            await EscalationLevel.create(unit=unit, after_hours=after, target=who, active=True)
    except (DomainError, ValueError) as e:
        return await _refused(request, session, form, target, *_why(e))
    return _done("level_saved" if level_id else "level_added")


def _ladder_in_reach(session: StaffSession, unit_id: int | None) -> bool:
    home = home_of(session)
    return home is None or unit_id == home


async def _page(request: Request, extra: dict[str, Any] | None = None, status: int = 200,
                session: Any = None) -> Response:
    session = session or await require_staff(request, "admin")
    home = home_of(session)
    users, teams, categories = StaffUser.all(), Team.all(), Category.all()
    shown = home
    code = request.query_params.get("w", "").strip()
    if code:
        unit = await depot.unit_by_code(code)
        if unit is None or not _in_reach(session, unit.id):
            raise HTTPException(404)
        shown = unit.id
    if shown is not None:
        users = users.filter(unit_id=shown)
        teams = teams.filter(workshop_id=shown)
        categories = categories.filter(workshop_id=shown)
    units = await Unit.all() if home is None else await Unit.filter(id=home)
    context: dict[str, Any] = {
        "me": session.user, "csrf": session.csrf, "home": home, "shown": shown,
        "users": await users, "teams": await teams,
        "categories": await categories, "roles": auth.ROLES,
        "units": units, "unit_names": {u.id: u.name for u in units},
        "kinds": depot.KINDS,
        "defaults": await Category.filter(workshop_id=None) if home is not None else [],
        "sources": await Source.all() if home is None else [],
        # The ladder shown: the shown unit's own levels, else the depot's (which it then uses).
        "ladder": await EscalationLevel.filter(unit_id=shown) if shown is not None
        else await EscalationLevel.filter(unit_id=None),
        "depot_ladder": await EscalationLevel.filter(unit_id=None, active=True)
        if shown is not None else [],
        "ladder_unit": shown,
        "ladder_targets": cases.LADDER_TARGETS,
        "notify_hour": settings_of(request).notify_hour,
        "form": {}, "error_for": "", "error_field": "", "notice": None,
    }
    context.update(extra or {})
    return render(request, "admin/index.html", context, status_code=status)


async def _notice(request: Request) -> dict[str, str] | None:
    key = request.query_params.get("ok", "")
    if key not in NOTICES:
        return None
    section, text = NOTICES[key]
    if key == "user_added":
        user_id = parse_id(request.query_params.get("u", ""))
        user = await StaffUser.get_or_none(id=user_id) if user_id else None
        if user is not None:
            text = (f"已添加工作人员 {user.username}（{auth.ROLES.get(user.role, user.role)}）。"
                    "请把初始密码当面告诉本人，并提醒其登录后修改密码。")
    return {"section": section, "text": text}


async def index(request: Request) -> Response:
    return await _page(request, {"notice": await _notice(request)})


def _done(ok: str, **params: str) -> Response:
    # Something was saved: the public pages' cached tree, categories and teams are read again
    # (at once in this process; the other workers within depot.TREE_SECONDS).
    depot.changed()
    section = NOTICES[ok][0]
    return RedirectResponse(f"/admin?{urlencode({'ok': ok, **params})}#{section}",
                            status_code=303)


def _why(e: Exception) -> tuple[str, str | None]:
    return (e.message, e.field) if isinstance(e, DomainError) else ("输入有误。", None)


async def _refused(request: Request, session: Any, form: Any, target: str, message: str,
                   field_name: str | None) -> Response:
    """Re-render with the error next to the form it belongs to and what was typed kept."""
    values = {k: v for k, v in form.multi_items() if isinstance(v, str)
              and k not in ("csrf", "password")}  # passwords are never sent back
    return await _page(request, {
        "error": message, "error_for": target, "error_field": field_name or "", "form": values,
    }, 422, session)


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
    target = "user-add" if op == "add" else f"user-{field(form, 'id')}"
    try:
        if op == "add":
            unit = await _unit_field(form, session, "unit", allow_none=True)
            added = await auth.add_user(field(form, "username"), field(form, "role"),
                                        field(form, "password"), field(form, "display_name"),
                                        unit=unit)
            return _done("user_added", u=str(added.id))
        else:
            user_id = parse_id(field(form, "id"))
            user = await StaffUser.get_or_none(id=user_id) if user_id else None
            if user is None or not _in_reach(session, user.unit_id):  # type: ignore[attr-defined]
                raise HTTPException(404)
            if op == "disable":
                if user.id == session.user.id:
                    raise DomainError("不能停用自己的账号。")
                await auth.set_active(user, False)
                return _done("user_disabled")
            elif op == "enable":
                await auth.set_active(user, True)
                return _done("user_enabled")
            elif op == "password":
                await auth.set_password(user, field(form, "password"))
                return _done("password_reset")
            else:
                raise HTTPException(400)
    except DomainError as e:
        return await _refused(request, session, form, target, e.message, e.field)


async def teams(request: Request) -> Response:
    session, form = await staff_form(request, "admin")
    team_id = field(form, "id")
    target = f"team-{team_id}" if team_id else "team-add"
    try:
        code = field(form, "code").strip()
        name = field(form, "name").strip()
        if not TEAM_CODE.match(code):
            raise DomainError("班组代码只能用英文字母、数字、- 和 _，最多 32 个字符"
                              "（用在二维码链接里，不能用汉字）。", field="code")
        if not name or len(name) > 64:
            raise DomainError("请填写班组/地点名称（最多 64 个字）。", field="name")
        order = await _int_field(form, "sort_order", "排序", -999, 999)
        active = field(form, "active") == "1"
        if team_id:
            team = await Team.get_or_none(id=parse_id(team_id) or 0)
            if team is None or not _in_reach(session, team.workshop_id):  # type: ignore[attr-defined]
                raise HTTPException(404)
            await Team.filter(id=team.id).update(code=code, name=name, sort_order=order,
                                                 active=active)
        else:
            workshop = await _unit_field(form, session, "workshop", allow_none=False,
                                         kind=depot.WORKSHOP)
            await Team.create(code=code, name=name, sort_order=order, active=True,
                              workshop=workshop)
    except IntegrityError:
        return await _refused(request, session, form, target, "这个班组代码已经存在。", "code")
    except (DomainError, ValueError) as e:
        return await _refused(request, session, form, target, *_why(e))
    return _done("team_saved" if team_id else "team_added")


async def categories(request: Request) -> Response:
    session, form = await staff_form(request, "admin")
    category_id = field(form, "id")
    target = f"category-{category_id}" if category_id else "category-add"
    try:
        name = field(form, "name").strip()
        if not name or len(name) > 32:
            raise DomainError("请填写类别名称（最多 32 个字）。", field="name")
        days = await _int_field(form, "deadline_days", "办理期限天数", 1, 365)
        order = await _int_field(form, "sort_order", "排序", -999, 999)
        active = field(form, "active") == "1"
        hours = await _urgency_fields(form)
        review = field(form, "adoption_review") == "1"
        if category_id:
            category = await Category.get_or_none(id=parse_id(category_id) or 0)
            # A workshop admin edits the workshop's own categories, not the depot defaults.
            owner = category.workshop_id if category else None  # type: ignore[attr-defined]
            if category is None or (home_of(session) is not None and owner != home_of(session)):
                raise HTTPException(404)
            await Category.filter(id=category.id).update(
                name=name, deadline_days=days, sort_order=order, active=active,
                adoption_review=review, **hours)
        else:
            workshop = await _unit_field(form, session, "workshop", allow_none=True,
                                         kind=depot.WORKSHOP)
            await Category.create(name=name, deadline_days=days, sort_order=order, active=True,
                                  workshop=workshop, adoption_review=review, **hours)
    except IntegrityError:
        return await _refused(request, session, form, target, "这个类别名称已经存在。", "name")
    except (DomainError, ValueError) as e:
        return await _refused(request, session, form, target, *_why(e))
    return _done("category_saved" if category_id else "category_added")


async def units(request: Request) -> Response:
    """Workshops and depot desks: a depot admin's page section (a workshop admin: 404)."""
    session, form = await staff_form(request, "admin")
    if home_of(session) is not None:
        raise HTTPException(404)
    unit_id = field(form, "id")
    target = f"unit-{unit_id}" if unit_id else "unit-add"
    try:
        if unit_id:
            unit = await Unit.get_or_none(id=parse_id(unit_id) or 0)
            if unit is None:
                raise HTTPException(404)
            name = depot.check_name(field(form, "name"))
            order = await _int_field(form, "sort_order", "排序", -999, 999)
            await Unit.filter(id=unit.id).update(name=name, sort_order=order,
                                                 active=field(form, "active") == "1")
            tree_of(request).clear()
            return _done("unit_saved")
        await depot.add_unit(field(form, "code"), field(form, "name"), field(form, "kind"))
        tree_of(request).clear()
    except DomainError as e:
        return await _refused(request, session, form, target, e.message, e.field)
    return _done("unit_added")


async def sources(request: Request) -> Response:
    """Sources (来源): the depot admin edits the list (扫码 and 纸质意见箱 keep their meaning
    whatever they are called; retired ones stay on old cases)."""
    session, form = await staff_form(request, "admin")
    if home_of(session) is not None:
        raise HTTPException(404)
    source_id = field(form, "id")
    target = f"source-{source_id}" if source_id else "source-add"
    try:
        name = depot.check_name(field(form, "name"), "来源名称")[:32]
        order = await _int_field(form, "sort_order", "排序", -999, 999)
        if source_id:
            found = await Source.get_or_none(id=parse_id(source_id) or 0)
            if found is None:
                raise HTTPException(404)
            active = field(form, "active") == "1" or found.key == "qr"  # 扫码 always exists
            await Source.filter(id=found.id).update(name=name, sort_order=order, active=active)
        else:
            await Source.create(name=name, sort_order=order, active=True)
    except IntegrityError:
        return await _refused(request, session, form, target, "这个来源名称已经存在。", "name")
    except DomainError as e:
        return await _refused(request, session, form, target, e.message, e.field)
    return _done("source_saved" if source_id else "source_added")


routes = [
    Route("/admin/units", units, methods=["POST"]),
    Route("/admin/sources", sources, methods=["POST"]),
    Route("/admin", index, methods=["GET"]),
    Route("/admin/users", users, methods=["POST"]),
    Route("/admin/teams", teams, methods=["POST"]),
    Route("/admin/categories", categories, methods=["POST"]),
    Route("/admin/ladder", ladder, methods=["POST"]),
]
