"""Notifications: outbox written with the event, real HTTP to a local webhook server, signatures,
retries with backoff, batching and digest, reminders with an injected clock, concurrent workers
on PostgreSQL, the admin page and the inline worker."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from suggestbox import cases, notify, worker
from suggestbox.app import create_app
from suggestbox.models import Case, Channel, OutboxMessage, StaffUser
from suggestbox.settings import Settings
from tests.conftest import (
    ROOT,
    add_user,
    login,
    make_client,
    seed_case,
    submit,
    workshop_today,
)

TZ = ZoneInfo("Asia/Shanghai")
BASE = "http://box.example.cn"  # http: https would make the test client drop cookies
SECRET = "SECtest-secret-0123456789"
BODY = "三号库房的灭火器过期了，请尽快更换。"


# ---- a real local webhook server ------------------------------------------------------------

@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)


@dataclass
class Hook:
    url: str = ""
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=lambda: [BODY])
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, prefix: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(prefix)]


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        hook: Hook = self.server.hook
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with hook.lock:
            hook.requests.append(Received(self.path, dict(self.headers.items()), body))
        path = urllib.parse.urlsplit(self.path).path
        status, reply = 200, {"errcode": 0, "errmsg": "ok"}
        if path.startswith("/fail"):
            status, reply = 500, {"error": "boom"}
        elif path.startswith("/errcode"):
            reply = {"errcode": 310000, "errmsg": "sign not match"}
        elif path.startswith("/slow"):
            time.sleep(1.0)
        elif hook.delay:
            time.sleep(hook.delay)
        data = json.dumps(reply).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 resets bursts of parallel posts


TIME_RE = re.compile(r"\d{1,2}:\d{2}|T\d{2}|\d{9,}")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def assert_no_content_or_time(hook: Hook, request: Received) -> None:
    """DESIGN.md §1.7: no case text, no time finer than the day. Feishu's ``timestamp``/``sign``
    and DingTalk's query are the signature of the *sending* time, required by the protocol."""
    payload = request.json
    assert isinstance(payload, dict)
    content = {k: v for k, v in payload.items() if k not in ("timestamp", "sign")}
    text = json.dumps(content, ensure_ascii=False)
    bare = UUID_RE.sub("<case>", text)  # case links hold random keys, not times
    for body in hook.forbidden:
        assert body not in text
        assert body[:6] not in text
    assert not TIME_RE.search(bare), text


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = _Server(("127.0.0.1", 0), _Handler)
    h = Hook(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.hook = h  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield h
    server.shutdown()
    server.server_close()
    thread.join(5)
    for r in h.requests:  # every payload any test sent
        assert_no_content_or_time(h, r)


@pytest.fixture
def nsettings(settings: Settings) -> Settings:
    return settings.with_(inline_worker=False, base_url=BASE, notify_max_tries=3,
                          notify_backoff_seconds=30.0, notify_timeout_seconds=0.5)


@pytest.fixture
async def napp(nsettings: Settings) -> AsyncIterator[Any]:
    application = create_app(nsettings)
    async with application.router.lifespan_context(application):
        yield application


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ)


async def channel(hook: Hook, kind: str, path: str, secret: str = "",
                  user: StaffUser | None = None) -> Channel:
    return await Channel.create(name=f"{kind} 群", kind=kind, url=hook.url + path, secret=secret,
                                user=user)


# ---- payloads and signatures ----------------------------------------------------------------

async def test_exact_payload_per_channel_type_with_signatures(napp, nsettings, hook):
    await channel(hook, "wecom", "/wecom/cgi-bin/webhook/send?key=wk")
    await channel(hook, "dingtalk", "/dingtalk/robot/send?access_token=dt", SECRET)
    await channel(hook, "feishu", "/feishu/open-apis/bot/v2/hook/fs", SECRET)
    await channel(hook, "json", "/json/hook", SECRET)
    case = await seed_case(BODY, category_id=1)
    # Written in the submission, not sent by it.
    assert hook.requests == []
    rows = await OutboxMessage.all()
    assert len(rows) == 4 and {r.status for r in rows} == {"pending"}
    assert {r.next_attempt_at for r in rows} == {at(case.received_on, 0)}  # midnight, not now
    now = datetime(2099, 3, 5, 1, 2, 3, 456000, tzinfo=UTC)
    result = await notify.deliver_due(nsettings, now=now)
    assert result.sent == 4 and result.failed == 0
    link = f"{BASE}/staff/cases?status=new"
    title = "职工百宝箱：新案件待受理"
    markdown = (f"**{title}**\n> 类别：意见\n> 请到待受理队列查看并受理。\n[打开工作台]({link})")

    (wecom,) = hook.on("/wecom")
    assert wecom.path == "/wecom/cgi-bin/webhook/send?key=wk"
    assert wecom.json == {"msgtype": "markdown", "markdown": {"content": markdown}}
    assert wecom.headers["Content-Type"] == "application/json; charset=utf-8"

    (ding,) = hook.on("/dingtalk")
    ts_ms = ding.query["timestamp"][0]
    assert ts_ms == str(int(now.timestamp() * 1000))
    expected = base64.b64encode(hmac.new(SECRET.encode(), f"{ts_ms}\n{SECRET}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert ding.query["sign"] == [expected] and ding.query["access_token"] == ["dt"]
    assert ding.path == (f"/dingtalk/robot/send?access_token=dt&timestamp={ts_ms}"
                         f"&sign={urllib.parse.quote_plus(expected)}")
    assert ding.json == {"msgtype": "markdown", "markdown": {"title": title, "text": markdown}}

    (fei,) = hook.on("/feishu")
    ts = fei.json["timestamp"]
    assert ts == str(int(now.timestamp()))
    key = f"{ts}\n{SECRET}".encode()
    assert fei.json == {
        "timestamp": ts,
        "sign": base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode(),
        "msg_type": "text",
        "content": {"text": f"{title}\n类别：意见\n请到待受理队列查看并受理。\n查看：{link}"},
    }

    (generic,) = hook.on("/json")
    assert generic.json == {
        "source": "suggestbox", "event": "new_case", "title": title,
        "lines": ["类别：意见", "请到待受理队列查看并受理。"], "url": link,
        "day": case.received_on.isoformat(),
    }
    assert generic.headers["X-Suggestbox-Signature"] == "sha256=" + hmac.new(
        SECRET.encode(), generic.body, hashlib.sha256).hexdigest()
    rows = await OutboxMessage.all()
    assert {r.status for r in rows} == {"sent"} and all(r.next_attempt_at is None for r in rows)
    assert {r.tries for r in rows} == {1}


async def test_unsigned_channels_and_relative_link_without_base_url(napp, nsettings, hook):
    s = nsettings.with_(base_url="")
    await channel(hook, "dingtalk", "/dingtalk/robot/send?access_token=dt")
    await channel(hook, "feishu", "/feishu/hook")
    await seed_case(BODY)
    assert (await notify.deliver_due(s)).sent == 2
    (ding,) = hook.on("/dingtalk")
    assert ding.path == "/dingtalk/robot/send?access_token=dt"
    assert "[打开工作台](/staff/cases?status=new)" in ding.json["markdown"]["text"]
    (fei,) = hook.on("/feishu")
    assert set(fei.json) == {"msg_type", "content"}
    assert fei.json["content"]["text"].endswith("查看：/staff/cases?status=new")


# ---- delivery that never loses or blocks ----------------------------------------------------

async def test_failing_endpoint_retried_with_backoff_then_failed(napp, nsettings, hook):
    await add_user("admin1", "admin")
    await channel(hook, "wecom", "/fail/send?key=x")
    async with make_client(napp) as c:
        started = time.monotonic()
        await submit(c, BODY)  # asserts the 303: the submission succeeded
        assert time.monotonic() - started < 5
        assert hook.requests == []  # nothing was sent while submitting
        assert await Case.all().count() == 1
        (row,) = await OutboxMessage.all()
        assert row.status == "pending" and row.tries == 0
        t0 = datetime.now(UTC) + timedelta(days=1)
        r1 = await notify.deliver_due(nsettings, now=t0)
        assert (r1.sent, r1.retrying, r1.failed) == (0, 1, 0)
        await row.refresh_from_db()
        assert row.tries == 1 and row.status == "pending" and row.last_error == "HTTP 500"
        assert row.next_attempt_at == t0 + timedelta(seconds=30)
        # Not before the backoff has passed.
        assert (await notify.deliver_due(nsettings, now=t0 + timedelta(seconds=29))).retrying == 0
        assert len(hook.requests) == 1
        t1 = t0 + timedelta(seconds=30)
        assert (await notify.deliver_due(nsettings, now=t1)).retrying == 1
        await row.refresh_from_db()
        assert row.tries == 2 and row.next_attempt_at == t1 + timedelta(seconds=60)  # doubled
        t2 = t1 + timedelta(seconds=60)
        r3 = await notify.deliver_due(nsettings, now=t2)
        assert r3.failed == 1
        await row.refresh_from_db()
        assert row.status == "failed" and row.tries == 3 and row.next_attempt_at is None
        assert row.settled_on == t2.astimezone(TZ).date()
        assert (await notify.deliver_due(nsettings, now=t2 + timedelta(days=1))).failed == 0
        assert len(hook.requests) == 3
        # The failure is visible to admins, and can be retried.
        csrf = await login(c, "admin1")
        page = await c.get("/admin/channels")
        assert page.status_code == 200
        assert "发送失败" in page.text and "HTTP 500" in page.text
        assert "有 1 条通知发送失败" in page.text
        r = await c.post("/admin/channels", data={"csrf": csrf, "op": "retry",
                                                  "message": str(row.id)})
        assert r.status_code == 303
        await row.refresh_from_db()
        assert row.status == "pending" and row.tries == 0


async def test_bot_error_code_and_timeout_count_as_failures(napp, nsettings, hook):
    await channel(hook, "dingtalk", "/errcode/robot/send?access_token=dt", SECRET)
    await channel(hook, "wecom", "/slow/send?key=x")
    await seed_case(BODY)
    result = await notify.deliver_due(nsettings)
    assert result.retrying == 2
    errors = {m.channel.kind: m.last_error
              for m in await OutboxMessage.all().select_related("channel")}
    assert errors == {"dingtalk": "errcode 310000: sign not match", "wecom": "超时"}
    assert all("127.0.0.1" not in e for e in errors.values())  # never the webhook URL


async def test_outbox_rows_share_the_transaction_of_the_event(napp, nsettings, hook, monkeypatch):
    await channel(hook, "wecom", "/wecom/send?key=x")
    original = notify.enqueue_for_event

    async def broken(*args: Any, **kwargs: Any) -> int:
        written = await original(*args, **kwargs)
        assert written == 1
        raise RuntimeError("fail after writing the outbox row")

    monkeypatch.setattr(notify, "enqueue_for_event", broken)
    with pytest.raises(RuntimeError):
        await seed_case(BODY)
    assert await Case.all().count() == 0
    assert await OutboxMessage.all().count() == 0  # rolled back together
    monkeypatch.setattr(notify, "enqueue_for_event", original)
    await seed_case(BODY)
    assert await Case.all().count() == 1 and await OutboxMessage.all().count() == 1


# ---- events ---------------------------------------------------------------------------------

async def test_events_route_to_personal_or_group_channels(napp, nsettings, hook):
    leader = await add_user("leader1", "leader")
    handler = await add_user("handler1", "handler")
    other = await add_user("handler2", "handler")
    await channel(hook, "wecom", "/group/send?key=g")
    await channel(hook, "feishu", "/personal/hook", user=handler)
    case = await seed_case(BODY, category_id=4)
    now = datetime.now(UTC)
    deadline = cases.local_today(TZ, now) + timedelta(days=3)
    await cases.apply(case.id, "accept", leader, now=now, tz=TZ, assignee_id=handler.id,
                      deadline=deadline)
    await cases.apply(case.id, "start", handler, now=now, tz=TZ)
    await cases.apply(case.id, "reply", handler, now=now, tz=TZ, body="已更换。")
    await cases.apply(case.id, "rate", None, now=now, tz=TZ, rating="unsatisfied",
                      body="只换了一个，不够。")
    await cases.apply(case.id, "transfer", leader, now=now, tz=TZ, assignee_id=other.id)
    await cases.apply(case.id, "return", other, now=now, tz=TZ, body="不归我管。")
    rows = await OutboxMessage.all().select_related("channel")
    got = Counter((r.kind, r.channel.url.rsplit("/", 2)[1]) for r in rows)
    assert got == Counter({
        ("new_case", "group"): 1,
        ("assigned", "personal"): 1,  # to the assignee's own channel, not the group
        ("unsatisfied", "group"): 1, ("unsatisfied", "personal"): 1,
        ("assigned", "group"): 1,  # handler2 has no channel: the group hears it
        ("returned", "group"): 1,
    })
    assert (await notify.deliver_due(nsettings)).sent == 6
    (text,) = [r.json["content"]["text"] for r in hook.on("/personal")
               if "已交办" in r.json["content"]["text"]]
    number = case.id.hex[:8].upper()
    assert f"编号：{number}" in text and "承办人：handler1" in text
    assert f"办理期限：{deadline.isoformat()}" in text
    assert f"{BASE}/staff/cases/{case.id}" in text
    hook.forbidden += ["已更换。", "只换了一个，不够。", "不归我管。"]


# ---- deadlines: reminders and escalation with an injected clock -----------------------------

async def test_due_tomorrow_and_overdue_with_injected_clock(napp, nsettings, hook):
    leader = await add_user("leader1", "leader")
    handler = await add_user("handler1", "handler")
    await channel(hook, "wecom", "/group/send?key=g")
    await channel(hook, "dingtalk", "/personal/send?access_token=p", SECRET, user=handler)
    case = await seed_case(BODY, category_id=2)
    waiting = await seed_case("另一件一直没人受理的事情。", category_id=4)  # 安全隐患: 2 days
    hook.forbidden.append("另一件一直没人受理的事情。")
    real_now = datetime.now(UTC)
    today = cases.local_today(TZ, real_now)
    deadline = today + timedelta(days=3)
    await cases.apply(case.id, "accept", leader, now=real_now, tz=TZ, assignee_id=handler.id,
                      deadline=deadline)
    await OutboxMessage.all().delete()
    # seed_case uses the machine's date; pin it to the workshop's day for this clock.
    await Case.filter(id=waiting.id).update(received_on=today)
    waiting = await Case.get(id=waiting.id)

    async def reminders(now: datetime) -> list[tuple[str, str]]:
        before = {r.id for r in await OutboxMessage.all()}
        await worker.remind(nsettings, now)
        rows = await OutboxMessage.exclude(id__in=list(before)).select_related("channel")
        return sorted((r.kind, r.channel.url.rsplit("/", 2)[1]) for r in rows)

    eve = deadline - timedelta(days=1)  # today + 2
    assert await reminders(at(eve, 7, 59)) == []  # before the morning hour
    assert await reminders(at(eve, 8, 0)) == [("due_tomorrow", "personal")]
    assert await reminders(at(eve, 17, 0)) == []  # once per case and deadline
    # The waiting case was due received_on + 2 days (its category, never accepted): it
    # escalates to the leaders the day after. The accepted case is due today: not overdue yet.
    assert waiting.received_on + timedelta(days=3) == deadline
    assert await reminders(at(deadline, 9)) == [("overdue", "group")]
    after = deadline + timedelta(days=1)
    assert await reminders(at(after, 9)) == [("overdue", "group")]  # to the leaders only
    assert await reminders(at(after + timedelta(days=1), 9)) == []
    # A new deadline (the leader extends it) gets its own reminder. Closed cases get none.
    assert await Case.filter(id=waiting.id).update(status="closed") == 1
    await Case.filter(id=case.id).update(deadline=after + timedelta(days=2))
    assert await reminders(at(after + timedelta(days=1), 9)) == [("due_tomorrow", "personal")]

    assert (await notify.deliver_due(nsettings, now=at(after + timedelta(days=1), 9))).sent == 4
    texts = sorted(r.json["markdown"]["content"] for r in hook.on("/group"))
    assert len(texts) == 2
    assert any(f"编号：{case.id.hex[:8].upper()}" in t and "案件已超期（升级提醒）" in t
               and "已超期 1 天" in t for t in texts)
    assert any(f"编号：{waiting.id.hex[:8].upper()}" in t and "案件超期未受理" in t
               and "承办人：（未交办）" in t for t in texts)
    dues = [r.json["markdown"] for r in hook.on("/personal")]
    assert len(dues) == 2 and all("案件明天到期" in d["title"] for d in dues)
    assert any(f"办理期限：{deadline.isoformat()}" in d["text"] for d in dues)


async def test_overdue_cases_report_helper(napp, nsettings):
    case = await seed_case(BODY, category_id=4)  # 安全隐患: 2 days, never accepted
    assert await worker.overdue_cases(case.received_on + timedelta(days=2)) == []
    found = await worker.overdue_cases(case.received_on + timedelta(days=3))
    assert [(c.id, d) for c, d in found] == [(case.id, case.received_on + timedelta(days=2))]


# ---- quiet-time batching and the daily digest -----------------------------------------------

async def test_quiet_time_batches_new_cases_at_slot_boundaries(napp, nsettings, hook):
    s = nsettings.with_(notify_quiet_hours=4)
    await channel(hook, "wecom", "/group/send?key=g")
    for category in (1, 1, 4):
        await seed_case(BODY, category_id=category)
    day = workshop_today()
    r = await worker.tick(s, now=at(day, 9, 10))
    assert r.delivery.sent == 0 and hook.requests == []
    held = await OutboxMessage.all()
    assert {m.status for m in held} == {"held"}
    assert {m.next_attempt_at for m in held} == {at(day, 12)}  # the slot boundary
    assert (await worker.tick(s, now=at(day, 11, 59))).delivery.sent == 0
    r = await worker.tick(s, now=at(day, 12, 0))
    assert r.batches == 1 and r.delivery.sent == 1
    (batch,) = hook.requests
    content = batch.json["markdown"]["content"]
    assert "新案件待受理 3 件：安全隐患 1、意见 2" in content
    assert f"{BASE}/staff/cases?status=new" in content
    assert Counter(m.status for m in await OutboxMessage.all()) == {"batched": 3, "sent": 1}


async def test_daily_digest_instead_of_one_message_per_event(napp, nsettings, hook):
    s = nsettings.with_(notify_digest=True, notify_hour=8)
    leader = await add_user("leader1", "leader")
    handler = await add_user("handler1", "handler")
    await channel(hook, "json", "/group/hook")
    case = await seed_case(BODY, category_id=2)
    await seed_case(BODY, category_id=2)
    await cases.apply(case.id, "accept", leader, now=datetime.now(UTC), tz=TZ,
                      assignee_id=handler.id)
    day = workshop_today() + timedelta(days=1)
    assert (await worker.tick(s, now=at(day, 7, 30))).delivery.sent == 0
    assert {m.next_attempt_at for m in await OutboxMessage.all()} == {at(day, 8)}
    r = await worker.tick(s, now=at(day, 8, 0))
    assert r.delivery.sent == 1
    (digest,) = hook.requests
    assert digest.json["title"] == f"职工百宝箱：每日汇总（{day.isoformat()}）"
    lines = digest.json["lines"]
    assert lines[0] == "新案件待受理 2 件：建议 2"
    assert lines[1].startswith("已交办 1 件：" + case.id.hex[:8].upper())
    assert digest.json["url"] == f"{BASE}/staff/cases?status=open"
    # After the digest hour, events wait for the next day's digest.
    await seed_case(BODY, category_id=1)
    assert (await worker.tick(s, now=at(day, 9, 0))).delivery.sent == 0
    assert await OutboxMessage.filter(status="held").values_list(
        "next_attempt_at", flat=True) == [at(day + timedelta(days=1), 8)]
    # Test messages are never held.
    test = await notify.enqueue_test(await Channel.get(), today=cases.local_today(TZ), tz=TZ)
    assert (await notify.send_now(s, test)).sent == 1


# ---- two concurrent workers on PostgreSQL ---------------------------------------------------

async def _fill(hook: Hook, n: int) -> Channel:
    ch = await channel(hook, "json", "/count/hook")
    today = workshop_today()
    for i in range(n):
        await OutboxMessage.create(
            id=uuid.uuid4(), channel=ch, kind="test", title=f"编号 {i}", text="并发测试",
            status="pending", next_attempt_at=at(today, 0), created_on=today)
    return ch


def _delivered(hook: Hook) -> Counter[str]:
    return Counter(r.json["title"] for r in hook.on("/count"))


async def test_two_concurrent_workers_in_process_deliver_each_once_on_postgres(
        pg_url, tmp_path, hook):
    s = Settings(data_dir=tmp_path / "data", database_url=pg_url, secret_key="k" * 32,
                 inline_worker=False)
    application = create_app(s)
    async with application.router.lifespan_context(application):
        await _fill(hook, 60)
        hook.delay = 0.02
        a, b = await asyncio.gather(notify.deliver_due(s, batch=4), notify.deliver_due(s, batch=4))
        assert a.sent + b.sent == 60 and a.sent > 0 and b.sent > 0
        assert set(_delivered(hook).values()) == {1} and len(_delivered(hook)) == 60
        assert {(m.status, m.tries) for m in await OutboxMessage.all()} == {("sent", 1)}


async def test_two_worker_processes_deliver_each_once_on_postgres(pg_url, tmp_path, hook):
    s = Settings(data_dir=tmp_path / "data", database_url=pg_url, secret_key="k" * 32,
                 inline_worker=False)
    application = create_app(s)
    async with application.router.lifespan_context(application):
        await _fill(hook, 80)
        hook.delay = 0.1
        env = {**os.environ, "SUGGESTBOX_DATABASE_URL": pg_url,
               "SUGGESTBOX_DATA_DIR": str(tmp_path / "data"), "SUGGESTBOX_SECRET_KEY": "k" * 32}
        procs = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "suggestbox.cli", "remind", env=env, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
        results = await asyncio.wait_for(
            asyncio.gather(*(proc.communicate() for proc in procs)), timeout=120)
        outs = [out.decode() for out, _ in results]
        assert [proc.returncode for proc in procs] == [0, 0], outs
        sent = [int(re.search(r"已发送 (\d+)", o).group(1)) for o in outs]  # type: ignore[union-attr]
        assert sum(sent) == 80, outs
        assert set(_delivered(hook).values()) == {1} and len(_delivered(hook)) == 80
        assert {(m.status, m.tries) for m in await OutboxMessage.all()} == {("sent", 1)}
        print(f"two worker processes delivered {sent[0]} + {sent[1]} messages")


# ---- admin page -----------------------------------------------------------------------------

async def test_admin_channels_page(napp, hook):
    await add_user("admin1", "admin")
    await add_user("leader1", "leader")
    async with make_client(napp) as c, make_client(napp) as lc:
        await login(lc, "leader1")
        assert (await lc.get("/admin/channels")).status_code == 403
        csrf = await login(c, "admin1")
        admin_page = await c.get("/admin")
        assert 'href="/admin/channels"' in admin_page.text
        page = await c.get("/admin/channels")
        assert page.status_code == 200 and "还没有通知渠道" in page.text
        bad = await c.post("/admin/channels", data={
            "csrf": csrf, "op": "add", "name": "领导群", "kind": "wecom", "url": "ftp://x"})
        assert bad.status_code == 422 and "https://" in bad.text and 'value="领导群"' in bad.text
        assert (await c.post("/admin/channels", data={
            "op": "add", "name": "x", "kind": "wecom", "url": hook.url})).status_code == 403
        r = await c.post("/admin/channels", data={
            "csrf": csrf, "op": "add", "name": "领导群", "kind": "wecom",
            "url": hook.url + "/wecom/send?key=secret-token"})
        assert r.status_code == 303
        ch = await Channel.get()
        page = await c.get("/admin/channels")
        assert "领导群" in page.text and "secret-token" not in page.text  # URL masked
        r = await c.post("/admin/channels", data={"csrf": csrf, "op": "test", "id": str(ch.id)})
        assert r.status_code == 303 and r.headers["location"].endswith("notice=sent")
        (test,) = hook.on("/wecom")
        assert "测试消息" in test.json["markdown"]["content"]
        r = await c.post("/admin/channels", data={"csrf": csrf, "op": "disable",
                                                  "id": str(ch.id)})
        assert r.status_code == 303 and not (await Channel.get()).enabled
        await seed_case(BODY)
        assert await OutboxMessage.filter(kind="new_case").count() == 0  # disabled: not used
        assert (await c.post("/admin/channels", data={"csrf": csrf, "op": "delete",
                                                      "id": "abc"})).status_code == 400
        r = await c.post("/admin/channels", data={"csrf": csrf, "op": "delete", "id": str(ch.id)})
        assert r.status_code == 303 and await Channel.all().count() == 0
        assert await OutboxMessage.all().count() == 0


# ---- the inline worker in the app's lifespan ------------------------------------------------

async def test_inline_worker_delivers_in_the_background(settings, hook):
    s = settings.with_(inline_worker=True, notify_poll_seconds=0.1)
    application = create_app(s)
    async with application.router.lifespan_context(application):
        await channel(hook, "wecom", "/wecom/send?key=x")
        async with make_client(application) as c:
            await submit(c, BODY)
        for _ in range(100):
            if hook.requests:
                break
            await asyncio.sleep(0.05)
        assert len(hook.on("/wecom")) == 1
    # The lifespan ended: the task was cancelled cleanly (no warnings, no pending task).


def test_cli_parser_has_worker_and_remind() -> None:
    from suggestbox.cli import build_parser

    assert build_parser().parse_args(["worker", "--once"]).once is True
    assert build_parser().parse_args(["remind"]).command == "remind"
