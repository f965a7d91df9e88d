"""Notifications: an outbox written with the case event, delivered later to group-chat webhooks.

No HTTP requests of ours come in here: this module writes outbox rows (inside the caller's
transaction), builds and signs the payload for each channel type, claims due rows (one claimant
per row, even with several processes on PostgreSQL) and posts them with httpx.

Anonymity (DESIGN.md §1.7): a message says what needs attention and links to the staff page. It
never carries a case's text or any time finer than a day. New rows start at local midnight (not
the time of the event) and settled rows keep only the day they were settled.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import urllib.parse
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from .models import Case, Category, Channel, OutboxMessage, StaffUser
from .settings import Settings

log = logging.getLogger("suggestbox.notify")

CHANNEL_KINDS: dict[str, str] = {
    "wecom": "企业微信群机器人",
    "dingtalk": "钉钉群机器人",
    "feishu": "飞书机器人",
    "json": "通用 JSON Webhook",
}
MESSAGE_KINDS: dict[str, str] = {
    "new_case": "新案件待受理",
    "urgent_case": "紧急新案件（提交人要求立即通知）",
    "urged": "提交人催办",
    "assigned": "已交办",
    "due_tomorrow": "明天到期",
    "overdue": "超期（升级）",
    "unsatisfied": "不满意，已重新办理",
    "returned": "退回待重新交办",
    "batch": "汇总",
    "test": "测试",
}
STATUS_LABELS: dict[str, str] = {
    "pending": "待发送", "held": "等待汇总", "sending": "发送中", "sent": "已发送",
    "failed": "发送失败", "batched": "已并入汇总",
}
# Caused by a submitter: their timing is what quiet-time batching hides.
SUBMITTER_KINDS = frozenset({"new_case", "unsatisfied", "urged"})
# "urgent_case" is also caused by a submitter, who chose to have it sent at once: never held.
NEVER_HELD = frozenset({"batch", "test"})
BRAND = "职工百宝箱"
QUEUE_NEW = "/staff/cases?status=new"
QUEUE_OPEN = "/staff/cases?status=open"
MAX_BACKOFF = timedelta(hours=1)
CLAIM_BATCH = 10


def case_number(case: Case) -> str:
    return case.id.hex[:8].upper()


def case_path(case: Case) -> str:
    return f"/staff/cases/{case.id}"


def midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=tz)


# ---- what is sent ---------------------------------------------------------------------------

@dataclass
class Note:
    kind: str
    title: str
    lines: list[str]
    path: str
    summary: str = ""


async def _group_channels(case: Case, conn: BaseDBAsyncClient | None) -> list[Channel]:
    """The group channels that hear about this case: its workshop's or desk's groups, and for a
    workshop's case the depot groups too. A case addressed to a desk (段工会, 纪检) never
    reaches a workshop's or the depot's group: only the desk's own."""
    qs = Channel.filter(enabled=True, user_id=None)
    unit_id = case.unit_id  # type: ignore[attr-defined]
    if unit_id != case.workshop_id:  # type: ignore[attr-defined]
        return await qs.filter(unit_id=unit_id).using_db(conn)
    return await qs.filter(Q(unit_id=unit_id) | Q(unit_id=None)).using_db(conn)


async def _personal_or_group(case: Case, user_id: int | None, conn: BaseDBAsyncClient | None
                             ) -> list[Channel]:
    if user_id is not None:
        own = await Channel.filter(enabled=True, user_id=user_id).using_db(conn)
        if own:
            return own
    return await _group_channels(case, conn)


async def _groups_and_assignee(case: Case, conn: BaseDBAsyncClient | None) -> list[Channel]:
    """What a worker's own action (不满意, 催办) reaches: the groups and the assignee's channel."""
    targets = {ch.id: ch for ch in await _group_channels(case, conn)}
    if case.assignee_id is not None:  # type: ignore[attr-defined]
        own = await Channel.filter(enabled=True, user_id=case.assignee_id  # type: ignore[attr-defined]
                                   ).using_db(conn)
        targets.update({ch.id: ch for ch in own})
    return list(targets.values())


async def _write(channels: Iterable[Channel], note: Note, *, today: date, tz: ZoneInfo,
                 conn: BaseDBAsyncClient | None, dedup: str | None = None) -> int:
    count = 0
    for ch in channels:
        await OutboxMessage.create(
            id=uuid.uuid4(), channel_id=ch.id, kind=note.kind, title=note.title,
            text="\n".join(note.lines), path=note.path, summary=note.summary[:255],
            status="pending", next_attempt_at=midnight(today, tz), created_on=today,
            dedup_key=f"{ch.id}:{dedup}" if dedup else None, using_db=conn,
        )
        count += 1
    return count


async def _label(user_id: int | None, conn: BaseDBAsyncClient | None) -> str:
    if user_id is None:
        return "（未指定）"
    user = await StaffUser.filter(id=user_id).using_db(conn).first()
    return user.label if user else "（未指定）"


async def enqueue_for_event(
    case: Case, action: str, actor: StaffUser | None, *, conn: BaseDBAsyncClient | None,
    today: date, tz: ZoneInfo, changes: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> int:
    """Write the outbox rows an event causes, inside the caller's transaction ``conn``.

    ``case`` is the case as it was before the event and ``changes`` what the event changed.
    Returns the number of rows written. Never sends anything.
    """
    changes = changes or {}
    extra = extra or {}
    if action == "submit":
        # Most submissions reach no channel: then the category is not even read (issue 19).
        channels = await _group_channels(case, conn)
        if not channels:
            return 0
    category = case.__dict__.get("_category")  # the Category the case was created with
    if category is None:
        category = await Category.filter(id=case.category_id).using_db(conn).first()  # type: ignore[attr-defined]
    cat = category.name if category else "未分类"
    number = case_number(case)
    if action == "submit" and extra.get("now") and category is not None:
        note = Note("urgent_case", "紧急：新案件待受理",
                    [f"类别：{cat}", "提交人要求立即通知值班领导。",
                     f"请在 {category.respond_hours or 0} 小时内受理。"], QUEUE_NEW, summary=cat)
        return await _write(await _group_channels(case, conn), note, today=today, tz=tz, conn=conn)
    if action == "submit":
        note = Note("new_case", "新案件待受理", [f"类别：{cat}", "请到待受理队列查看并受理。"],
                    QUEUE_NEW, summary=cat)
        return await _write(channels, note, today=today, tz=tz, conn=conn)
    if action in ("accept", "transfer"):
        assignee_id = changes.get("assignee_id")
        deadline = changes.get("deadline", case.deadline)
        who = await _label(assignee_id, conn)
        lines = [f"编号：{number}", f"类别：{cat}", f"承办人：{who}"]
        if isinstance(deadline, date):
            lines.append(f"办理期限：{deadline.isoformat()}")
        note = Note("assigned", "案件已交办" if action == "accept" else "案件已转办", lines,
                    case_path(case), summary=f"{number}（{cat}，承办人 {who}）")
        return await _write(await _personal_or_group(case, assignee_id, conn), note, today=today,
                            tz=tz, conn=conn)
    if action == "rate_unsatisfied":
        assignee_id = case.assignee_id  # type: ignore[attr-defined]
        who = await _label(assignee_id, conn)
        note = Note("unsatisfied", "提交人评价“不满意”，案件已重新办理",
                    [f"编号：{number}", f"类别：{cat}", f"承办人：{who}"], case_path(case),
                    summary=f"{number}（{cat}）")
        return await _write(await _groups_and_assignee(case, conn), note, today=today, tz=tz,
                            conn=conn)
    if action == "urge":
        assignee_id = case.assignee_id  # type: ignore[attr-defined]
        who = await _label(assignee_id, conn) if assignee_id else "（未交办）"
        note = Note("urged", "提交人催办：案件已超期",
                    [f"编号：{number}", f"类别：{cat}", f"承办人：{who}",
                     f"累计催办 {changes.get('urges', case.urges)} 次"], case_path(case),
                    summary=f"{number}（{cat}）")
        return await _write(await _groups_and_assignee(case, conn), note, today=today, tz=tz,
                            conn=conn)
    if action == "escalate":
        return await _escalation(case, cat, number, extra, conn=conn, today=today, tz=tz)
    if action == "return":
        note = Note("returned", "案件被退回，待重新交办",
                    [f"编号：{number}", f"类别：{cat}"], case_path(case),
                    summary=f"{number}（{cat}）")
        return await _write(await _group_channels(case, conn), note, today=today, tz=tz, conn=conn)
    return 0


async def _ladder_channels(case: Case, target: str, conn: BaseDBAsyncClient | None
                           ) -> list[Channel]:
    """Who hears of a ladder step: the assignee (their own channel, else the case's groups), the
    unit's own groups (a unit without groups of its own: every group that hears of its cases),
    or the depot's groups (for a desk case, only ever the desk's own)."""
    if target == "assignee":
        return await _personal_or_group(case, case.assignee_id, conn)  # type: ignore[attr-defined]
    if target == "depot" and case.unit_id == case.workshop_id:  # type: ignore[attr-defined]
        return await Channel.filter(enabled=True, user_id=None, unit_id=None).using_db(conn)
    own = await Channel.filter(enabled=True, user_id=None,
                               unit_id=case.unit_id).using_db(conn)  # type: ignore[attr-defined]
    return own or await _group_channels(case, conn)


async def _escalation(case: Case, cat: str, number: str, extra: dict[str, Any], *,
                      conn: BaseDBAsyncClient | None, today: date, tz: ZoneInfo) -> int:
    who = await _label(case.assignee_id, conn) if case.assignee_id else "（未交办）"  # type: ignore[attr-defined]
    title = "承诺逾期未落实（升级提醒）" if extra.get("promise") else \
        "案件超期未受理（升级提醒）" if case.status == "new" else "案件已超期（升级提醒）"
    lines = [f"编号：{number}", f"类别：{cat}", f"承办人：{who}"]
    if extra.get("deadline"):
        lines.append(f"办理期限：{extra['deadline']}")
    lines.append(str(extra.get("late", "")))
    note = Note("overdue", title, [line for line in lines if line], case_path(case),
                summary=f"{number}（{cat}）")
    channels = await _ladder_channels(case, str(extra.get("target", "unit")), conn)
    return await _write(channels, note, today=today, tz=tz, conn=conn)


async def enqueue_reminder(case: Case, kind: str, deadline: date, *, today: date,
                           tz: ZoneInfo) -> int:
    """A deadline reminder (``due_tomorrow``) or escalation (``overdue``), once per case,
    deadline and channel. ``case`` needs ``category`` and ``assignee`` fetched."""
    number = case_number(case)
    who = case.assignee.label if case.assignee else "（未交办）"
    lines = [f"编号：{number}", f"类别：{case.category.name}", f"承办人：{who}",
             f"办理期限：{deadline.isoformat()}"]
    if kind == "due_tomorrow":
        title = "案件明天到期"
        channels = await _personal_or_group(case, case.assignee_id, None)  # type: ignore[attr-defined]
    else:
        late = (today - deadline).days
        title = "案件超期未受理（升级提醒）" if case.status == "new" else "案件已超期（升级提醒）"
        lines.append(f"已超期 {late} 天")
        channels = await _group_channels(case, None)  # the leaders' group
    note = Note(kind, title, lines, case_path(case), summary=f"{number}（期限 {deadline}）")
    dedup = f"{kind}:{case.id.hex}:{deadline.isoformat()}"
    wanted = {f"{ch.id}:{dedup}": ch for ch in channels}
    if not wanted:
        return 0
    done = set(await OutboxMessage.filter(dedup_key__in=list(wanted)).values_list(
        "dedup_key", flat=True))
    count = 0
    for key, ch in wanted.items():
        if key in done:
            continue
        try:
            async with in_transaction() as conn:
                count += await _write([ch], note, today=today, tz=tz, conn=conn, dedup=dedup)
        except IntegrityError:
            pass  # another process wrote the same reminder first
    return count


async def enqueue_test(channel: Channel, *, today: date, tz: ZoneInfo) -> OutboxMessage:
    note = Note("test", "测试消息", ["这是一条测试消息：通知渠道配置正确。"], "/staff/cases")
    await _write([channel], note, today=today, tz=tz, conn=None)
    message = await OutboxMessage.filter(channel_id=channel.id, kind="test",
                                         status="pending").first()
    assert message is not None
    return message


# ---- payloads and signatures ----------------------------------------------------------------

def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk: HMAC-SHA256 keyed with the secret over "timestamp\\nsecret", base64,
    URL-encoded."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu: "timestamp\\nsecret" is the HMAC-SHA256 *key* over an empty message, base64."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def json_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def link(path: str, base_url: str) -> str:
    return (base_url.rstrip("/") + path) if base_url else path


@dataclass
class Outgoing:
    url: str
    body: bytes
    headers: dict[str, str]
    payload: dict[str, Any]


def build_request(channel: Channel, message: OutboxMessage, *, base_url: str,
                  now: datetime) -> Outgoing:
    """The exact HTTP request for one message on one channel (signed at send time)."""
    title = f"{BRAND}：{message.title}"
    target = link(message.path, base_url)
    lines = message.text.splitlines()
    plain = "\n".join([title, *lines, *([f"查看：{target}"] if target else [])])
    markdown = "\n".join([f"**{title}**", *[f"> {line}" for line in lines],
                          *([f"[打开工作台]({target})"] if target else [])])
    url = channel.url
    payload: dict[str, Any]
    if channel.kind == "wecom":
        payload = {"msgtype": "markdown", "markdown": {"content": markdown}}
    elif channel.kind == "dingtalk":
        payload = {"msgtype": "markdown", "markdown": {"title": title, "text": markdown}}
        if channel.secret:
            ts = int(now.timestamp() * 1000)
            url += ("&" if "?" in url else "?") + (
                f"timestamp={ts}&sign={dingtalk_sign(channel.secret, ts)}")
    elif channel.kind == "feishu":
        payload = {"msg_type": "text", "content": {"text": plain}}
        if channel.secret:
            ts = int(now.timestamp())
            payload = {"timestamp": str(ts), "sign": feishu_sign(channel.secret, ts), **payload}
    else:
        payload = {"source": "suggestbox", "event": message.kind, "title": title,
                   "lines": lines, "url": target, "day": message.created_on.isoformat()}
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if channel.kind == "json" and channel.secret:
        headers["X-Suggestbox-Signature"] = json_signature(channel.secret, body)
    return Outgoing(url=url, body=body, headers=headers, payload=payload)


def _response_error(response: httpx.Response) -> str | None:
    """None when the bot accepted the message. WeCom and DingTalk answer ``errcode``, Feishu
    ``code`` (older versions ``StatusCode``), all with HTTP 200 even on errors."""
    if not 200 <= response.status_code < 300:
        return f"HTTP {response.status_code}"
    try:
        data = response.json()
    except ValueError:
        return None
    if isinstance(data, dict):
        for key, msg_key in (("errcode", "errmsg"), ("code", "msg"),
                             ("StatusCode", "StatusMessage")):
            value = data.get(key)
            if isinstance(value, int) and value != 0:
                return f"{key} {value}: {str(data.get(msg_key, ''))[:120]}"
    return None


async def send(client: httpx.AsyncClient, channel: Channel, message: OutboxMessage, *,
               base_url: str, now: datetime) -> str | None:
    """Post one message; return None on success or a short error (never the URL: it holds the
    bot's token)."""
    out = build_request(channel, message, base_url=base_url, now=now)
    try:
        response = await client.post(out.url, content=out.body, headers=out.headers)
    except httpx.TimeoutException:
        return "超时"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {str(exc).replace(channel.url, '<url>')[:160]}"
    return _response_error(response)


# ---- claiming and delivery ------------------------------------------------------------------

def held_kinds(settings: Settings) -> frozenset[str]:
    """Kinds that wait for a batch (quiet time) or the daily digest instead of going at once."""
    if settings.notify_digest:
        return frozenset(MESSAGE_KINDS) - NEVER_HELD
    if settings.notify_quiet_hours > 0:
        return SUBMITTER_KINDS
    return frozenset()


def backoff(settings: Settings, tries: int) -> timedelta:
    seconds = settings.notify_backoff_seconds * (2 ** max(0, tries - 1))
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


async def claim(now: datetime, *, limit: int, skip_kinds: Iterable[str] = (),
                lease: timedelta, ids: list[uuid.UUID] | None = None) -> list[OutboxMessage]:
    """Take up to ``limit`` due messages for this worker: one transaction that locks them
    (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent workers take disjoint rows) and
    marks them ``sending`` with a lease. A worker that dies mid-send leaves its rows to be taken
    again when the lease ends. SQLite has no row locks: its transactions run one at a time."""
    async with in_transaction() as conn:
        qs = OutboxMessage.filter(status__in=["pending", "sending"], next_attempt_at__lte=now)
        skip = list(skip_kinds)
        if skip:
            qs = qs.exclude(kind__in=skip)
        if ids is not None:
            qs = qs.filter(id__in=ids)
        # Objects, not values_list(): Tortoise drops FOR UPDATE from values/values_list queries.
        locked = await qs.order_by("next_attempt_at", "id").limit(limit).select_for_update(
            skip_locked=True).using_db(conn).only("id")
        taken = [m.id for m in locked]
        if not taken:
            return []
        # The status condition again: a second guard should the lock ever be missing.
        await OutboxMessage.filter(
            id__in=taken, status__in=["pending", "sending"], next_attempt_at__lte=now
        ).using_db(conn).update(status="sending", tries=F("tries") + 1,
                                next_attempt_at=now + lease)
    return await OutboxMessage.filter(id__in=taken).select_related("channel")


@dataclass
class Delivery:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


async def _settle(settings: Settings, message: OutboxMessage, error: str | None,
                  now: datetime, result: Delivery) -> None:
    today = now.astimezone(settings.tz).date()
    mine = OutboxMessage.filter(id=message.id, status="sending")
    if error is None:
        await mine.update(status="sent", settled_on=today, next_attempt_at=None, last_error="")
        result.sent += 1
        return
    result.errors.append(error)
    log.warning("notification to channel %s failed (try %s): %s", message.channel_id,  # type: ignore[attr-defined]
                message.tries, error)
    if message.tries >= settings.notify_max_tries:
        await mine.update(status="failed", settled_on=today, next_attempt_at=None,
                          last_error=error[:255])
        result.failed += 1
    else:
        await mine.update(status="pending", next_attempt_at=now + backoff(settings, message.tries),
                          last_error=error[:255])
        result.retrying += 1


async def deliver_due(settings: Settings, *, now: datetime | None = None,
                      client: httpx.AsyncClient | None = None,
                      ids: list[uuid.UUID] | None = None, batch: int = CLAIM_BATCH) -> Delivery:
    """Deliver every message due at ``now``; failures are retried later with backoff."""
    now = now or datetime.now(UTC)
    result = Delivery()
    lease = timedelta(seconds=max(60.0, settings.notify_timeout_seconds * 3))
    skip = held_kinds(settings)
    own_client = client is None
    http = client or httpx.AsyncClient(timeout=settings.notify_timeout_seconds)
    try:
        for _ in range(1000):
            messages = await claim(now, limit=batch, skip_kinds=skip, lease=lease, ids=ids)
            if not messages:
                break

            async def one(m: OutboxMessage) -> None:
                if not m.channel.enabled:
                    error: str | None = "渠道已停用"
                else:
                    error = await send(http, m.channel, m, base_url=settings.base_url, now=now)
                await _settle(settings, m, error, now, result)

            await asyncio.gather(*(one(m) for m in messages))
    finally:
        if own_client:
            await http.aclose()
    return result


async def send_now(settings: Settings, message: OutboxMessage, *,
                   now: datetime | None = None) -> Delivery:
    """Deliver one message right away (the admin's "send test" button)."""
    return await deliver_due(settings, now=now, ids=[message.id])


async def retry(message_id: uuid.UUID, now: datetime) -> bool:
    updated = await OutboxMessage.filter(id=message_id, status="failed").update(
        status="pending", tries=0, next_attempt_at=now, settled_on=None)
    return updated > 0


# ---- quiet-time batching and the daily digest -----------------------------------------------

def release_time(settings: Settings, now: datetime) -> datetime:
    """When held messages go out: the digest hour, or the next quiet-time slot boundary (every N
    hours from local midnight). Slot boundaries are fixed, so the batch time says nothing about
    when within the slot a case was written. During the digest hour itself messages go at once:
    that is when the morning's reminders are written, and they belong in that day's digest."""
    local = now.astimezone(settings.tz)
    day = local.date()
    if settings.notify_digest:
        at = datetime.combine(day, time(settings.notify_hour % 24), tzinfo=settings.tz)
        return at if local < at + timedelta(hours=1) else at + timedelta(days=1)
    step = max(1, settings.notify_quiet_hours)
    start = midnight(day, settings.tz)
    k = int((local - start) / timedelta(hours=step)) + 1
    boundary = start + timedelta(hours=step * k)
    nxt = midnight(day + timedelta(days=1), settings.tz)
    return min(boundary, nxt)


async def hold(settings: Settings, now: datetime) -> int:
    """Move new messages of the held kinds to ``held`` until their release time."""
    kinds = held_kinds(settings)
    if not kinds:
        return 0
    return await OutboxMessage.filter(status="pending", kind__in=list(kinds), tries=0).update(
        status="held", next_attempt_at=release_time(settings, now))


def _batch_note(settings: Settings, rows: list[OutboxMessage], day: date) -> Note:
    by_kind: dict[str, list[OutboxMessage]] = defaultdict(list)
    for r in rows:
        by_kind[r.kind].append(r)
    lines: list[str] = []
    new = by_kind.pop("new_case", [])
    if new:
        counts = Counter(r.summary for r in new)
        detail = "、".join(f"{name} {n}" for name, n in sorted(counts.items()))
        lines.append(f"新案件待受理 {len(new)} 件：{detail}")
    for kind in MESSAGE_KINDS:
        group = by_kind.get(kind)
        if group:
            # Sorted, so the order of the list reveals nothing about the order of events.
            lines.append(f"{MESSAGE_KINDS[kind]} {len(group)} 件："
                         + "、".join(sorted(r.summary for r in group)))
    title = f"每日汇总（{day.isoformat()}）" if settings.notify_digest else "待处理汇总"
    only_new = bool(new) and not by_kind
    return Note("batch", title, lines, QUEUE_NEW if only_new else QUEUE_OPEN)


async def flush_held(settings: Settings, now: datetime) -> int:
    """Turn held messages whose release time has come into one batch message per channel."""
    today = now.astimezone(settings.tz).date()
    written = 0
    async with in_transaction() as conn:
        rows = await OutboxMessage.filter(
            status="held", next_attempt_at__lte=now
        ).select_for_update(skip_locked=True).using_db(conn)
        per_channel: dict[int, list[OutboxMessage]] = defaultdict(list)
        for r in rows:
            per_channel[r.channel_id].append(r)  # type: ignore[attr-defined]
        for channel_id, group in per_channel.items():
            note = _batch_note(settings, group, today)
            await OutboxMessage.create(
                id=uuid.uuid4(), channel_id=channel_id, kind="batch", title=note.title,
                text="\n".join(note.lines), path=note.path, status="pending",
                next_attempt_at=now, created_on=today, using_db=conn)
            await OutboxMessage.filter(id__in=[r.id for r in group]).using_db(conn).update(
                status="batched", settled_on=today, next_attempt_at=None)
            written += 1
    return written


async def purge_settled(today: date, keep_days: int = 30) -> int:
    """Delete sent and batched messages after a while (failed ones stay for the admin)."""
    return await OutboxMessage.filter(
        status__in=["sent", "batched"], settled_on__lt=today - timedelta(days=keep_days)
    ).delete()
