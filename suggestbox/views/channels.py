"""Admin page for notification channels (webhooks) and the outbox: /admin/channels."""

from __future__ import annotations

import urllib.parse
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from tortoise.expressions import Subquery

from .. import depot, notify
from ..cases import DomainError
from ..models import Channel, OutboxMessage, StaffUser, Unit
from ..templating import render
from .common import field, now_utc, parse_id, require_staff, settings_of, staff_form, today

PAGE = "/admin/channels"
NOTICES = {
    "added": "已添加渠道。",
    "deleted": "已删除渠道。",
    "saved": "已保存。",
    "retry": "已重新加入发送队列。",
    "sent": "测试消息已发出。",
    "test_failed": "测试消息发送失败，原因见下方“待发送与失败的消息”；将按退避间隔自动重试。",
}


def masked(url: str) -> str:
    """Show where a webhook goes without its token."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else "…"


async def _page(request: Request, extra: dict[str, Any] | None = None, status: int = 200,
                session: Any = None) -> Response:
    session = session or await require_staff(request, "admin")
    home = session.user.unit_id
    mine = Channel.all() if home is None else Channel.filter(unit_id=home)
    problems = await OutboxMessage.filter(
        status__in=["failed", "pending", "sending", "held"],
        channel_id__in=Subquery(mine.values("id")),
    ).order_by("status", "-created_on", "id").limit(100).select_related("channel")
    units = await Unit.all() if home is None else await Unit.filter(id=home)
    context: dict[str, Any] = {
        "me": session.user, "csrf": session.csrf, "home": home, "units": units,
        "unit_names": {u.id: u.name for u in units},
        "channels": await mine.select_related("user"),
        "users": await (StaffUser.filter(active=True) if home is None
                        else StaffUser.filter(active=True, unit_id=home)),
        "kinds": notify.CHANNEL_KINDS, "message_kinds": notify.MESSAGE_KINDS,
        "statuses": notify.STATUS_LABELS, "messages": problems, "masked": masked,
        "failed": sum(1 for m in problems if m.status == "failed"),
        "notice": NOTICES.get(request.query_params.get("notice", ""), ""),
        "form": {},
    }
    context.update(extra or {})
    return render(request, "admin/channels.html", context, status_code=status)


async def index(request: Request) -> Response:
    return await _page(request)


def _done(notice: str = "") -> Response:
    suffix = "?" + urllib.parse.urlencode({"notice": notice}) if notice else ""
    return RedirectResponse(PAGE + suffix, status_code=303)


def _valid_channel(form: Any) -> dict[str, Any]:
    name = field(form, "name").strip()
    kind = field(form, "kind")
    url = field(form, "url").strip()
    secret = field(form, "secret").strip()
    if not name or len(name) > 64:
        raise DomainError("请填写渠道名称（最多 64 个字）。", field="name")
    if kind not in notify.CHANNEL_KINDS:
        raise DomainError("请选择渠道类型。", field="kind")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc or len(url) > 1024 or any(
            c.isspace() for c in url):
        raise DomainError("Webhook 地址应以 https:// 开头（最多 1024 个字符）。", field="url")
    if len(secret) > 255:
        raise DomainError("签名密钥太长了（最多 255 个字符）。", field="secret")
    user_id: int | None = None
    if field(form, "user"):
        user_id = parse_id(field(form, "user"))
        if user_id is None:
            raise DomainError("请选择工作人员。", field="user")
    return {"name": name, "kind": kind, "url": url, "secret": secret, "user_id": user_id}


async def channels(request: Request) -> Response:
    session, form = await staff_form(request, "admin")
    op = field(form, "op")
    s = settings_of(request)
    try:
        home = session.user.unit_id  # type: ignore[attr-defined]
        if op == "add":
            values = _valid_channel(form)
            if values["user_id"] is not None and not await StaffUser.filter(
                    id=values["user_id"], active=True).exists():
                raise DomainError("请选择工作人员。", field="user")
            # A group channel hears one workshop's or desk's cases (a workshop admin: their
            # own); none chosen by a depot admin: every workshop's (never a desk's).
            unit = None
            if home is not None:
                unit = await Unit.get(id=home)
            elif field(form, "unit"):
                unit = await depot.unit_by_code(field(form, "unit"))
                if unit is None:
                    raise DomainError("请重新选择单位。", field="unit")
            await Channel.create(**values, enabled=True, unit=unit)
            return _done("added")
        if op == "retry":
            try:
                message_id = uuid.UUID(field(form, "message"))
            except ValueError as exc:
                raise HTTPException(400) from exc
            message = await OutboxMessage.get_or_none(id=message_id).select_related("channel")
            if message is None or (home is not None
                                   and message.channel.unit_id != home):  # type: ignore[attr-defined]
                raise HTTPException(404)
            if not await notify.retry(message_id, now_utc()):
                raise HTTPException(404)
            return _done("retry")
        channel_id = parse_id(field(form, "id"))
        if channel_id is None:
            raise HTTPException(400)
        channel = await Channel.get_or_none(id=channel_id)
        if channel is None or (home is not None and channel.unit_id != home):  # type: ignore[attr-defined]
            raise HTTPException(404)
        if op in ("enable", "disable"):
            await Channel.filter(id=channel.id).update(enabled=op == "enable")
            return _done("saved")
        if op == "delete":
            await channel.delete()
            return _done("deleted")
        if op == "test":
            if not channel.enabled:
                raise DomainError("渠道已停用，请先启用。")
            message = await notify.enqueue_test(channel, today=today(request), tz=s.tz)
            result = await notify.send_now(s, message)
            return _done("sent" if result.sent else "test_failed")
        raise HTTPException(400)
    except DomainError as e:
        return await _page(request, {"error": e.message, "form": dict(form)}, 422, session)


routes = [
    Route(PAGE, index, methods=["GET"]),
    Route(PAGE, channels, methods=["POST"]),
]
