"""Issue 17: urgent categories counted in hours, the worker's opt-in for an immediate
notification, the escalation ladder and 催办, with an injected clock on both databases."""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from suggestbox import cases, notify, urgency, worker
from suggestbox.models import (
    Case,
    Category,
    Channel,
    EscalationLevel,
    EscalationStep,
    Event,
    OutboxMessage,
    Unit,
)
from suggestbox.settings import Settings
from tests.conftest import (
    add_user,
    form_token,
    login,
    make_client,
    seed_case,
    submit,
    track,
    workshop_today,
)
from tests.test_notify import BASE, Hook, at, channel, hook, napp, nsettings  # noqa: F401

TZ = ZoneInfo("Asia/Shanghai")
URGENT = 4  # 安全隐患: migration 0014 makes it urgent, 4 h to accept and 24 h to answer
BODY = "变电所门口的接地线夹松了，风一吹就晃。"


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


async def urgent_case(settings: Settings, now: datetime, *, immediate: bool = False,
                      category: int = URGENT, body: str = BODY, desk: Unit | None = None
                      ) -> Case:
    """A case submitted at ``now`` the way the submit page does it."""
    workshop = await Unit.filter(kind="workshop").order_by("id").first()
    done = await cases.submit_case(
        secret_key="k" * 32, nonce=secrets.token_urlsafe(12), category_id=category, team=None,
        body=body, today=now.astimezone(TZ).date(), tz=TZ, workshop=workshop, desk=desk,
        clock_start=urgency.clock_start(settings, now, immediate=immediate),
        notify_now=immediate)
    return await Case.get(id=done.case.id).select_related("category")


# ---- the clock ------------------------------------------------------------------------------

def test_the_clock_starts_at_the_hour_the_leaders_are_told(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, database_url="sqlite://:memory:", secret_key="x" * 32,
                 notify_quiet_hours=2)
    day = date(2026, 11, 27)
    written = at(day, 10, 17)
    # Batched (every 2 h from midnight): the 12:00 batch; asked for at once: the next full hour.
    assert urgency.clock_start(s, written, immediate=False) == at(day, 12)
    assert urgency.clock_start(s, written, immediate=True) == at(day, 11)
    assert urgency.clock_start(s, at(day, 10), immediate=True) == at(day, 10)
    assert urgency.clock_start(s, at(day, 23, 30), immediate=False) == at(day + timedelta(1), 0)
    # Nothing is batched: the message goes at once, the clock starts at the next full hour.
    assert urgency.clock_start(s.with_(notify_quiet_hours=0), written,
                               immediate=False) == at(day, 11)
    # A daily digest at 8: the next morning's digest.
    digest = s.with_(notify_digest=True, notify_hour=8)
    assert urgency.clock_start(digest, written, immediate=False) == at(day + timedelta(1), 8)
    # Stored to the hour, never the minute the worker wrote.
    for now in (written, at(day, 10, 59), at(day, 11, 1)):
        start = urgency.clock_start(s, now, immediate=True)
        assert (start.minute, start.second, start.microsecond) == (0, 0, 0)


async def test_overdue_in_hours_for_urgent_categories_and_days_for_the_rest(app, settings):
    s = settings.with_(notify_quiet_hours=2)
    day = workshop_today()
    case = await urgent_case(s, at(day, 10, 17))
    assert case.clock_at == at(day, 12)  # the batch boundary
    cat = case.category
    assert (cat.urgent, cat.respond_hours, cat.answer_hours) == (True, 4, 24)
    assert urgency.due_at(case, cat, TZ) == at(day, 16)
    assert urgency.hours_left(case, cat, at(day, 13, 30)) == 3  # 2.5 h left: shown as 3
    assert urgency.hours_left(case, cat, at(day, 15, 59)) == 1
    assert not urgency.overdue(case, cat, at(day, 15, 59), TZ)
    assert urgency.overdue(case, cat, at(day, 16), TZ)
    assert urgency.hours_left(case, cat, at(day, 16, 30)) == 0  # 超时, under an hour
    assert urgency.hours_left(case, cat, at(day, 18, 10)) == -2
    # Accepted: now the answer's 24 hours, from the same clock.
    leader = await add_user("lead", "leader")
    await cases.apply(case.id, "accept", leader, now=at(day, 17), tz=TZ, assignee_id=leader.id)
    case = await Case.get(id=case.id).select_related("category")
    assert urgency.due_at(case, cat, TZ) == at(day + timedelta(1), 12)
    assert not urgency.overdue(case, cat, at(day + timedelta(1), 11, 59), TZ)
    assert urgency.overdue(case, cat, at(day + timedelta(1), 12), TZ)
    await cases.apply(case.id, "reply", leader, now=at(day, 18), tz=TZ, body="已紧固。")
    case = await Case.get(id=case.id).select_related("category")
    assert urgency.due_at(case, cat, TZ) is None  # answered: nothing is due

    # Another category keeps no clock and runs on days: 意见, 7 days after it was received.
    plain = await urgent_case(s, at(day, 10, 17), category=1, body="食堂饭菜太咸了，希望改进。")
    assert plain.clock_at is None
    assert urgency.hours_left(plain, plain.category, at(day, 11)) is None
    assert urgency.due_at(plain, plain.category, TZ) == at(day + timedelta(8), 0)
    # A 安全隐患 recorded without a clock (older cases, staff records) runs on days too: 2 days.
    old = await seed_case(BODY, category_id=URGENT)
    old = await Case.get(id=old.id).select_related("category")
    assert old.clock_at is None and urgency.hours_left(old, old.category, at(day, 11)) is None
    assert urgency.due_at(old, old.category, TZ) == at(old.received_on + timedelta(3), 0)


# ---- the worker's choice: at once, or with the batch ----------------------------------------

async def test_opt_in_goes_at_once_and_the_rest_waits_for_the_batch(napp, nsettings, hook):
    s = nsettings.with_(notify_quiet_hours=2)
    hook.forbidden = [BODY, "另一处隐患：三号库房的消防通道被堆放的材料堵住了。"]
    await channel(hook, "wecom", "/group/send?key=g")
    day = workshop_today()
    written = at(day, 10, 17)
    now_case = await urgent_case(s, written, immediate=True)
    later_case = await urgent_case(s, written, body=hook.forbidden[1])
    kinds = sorted(await OutboxMessage.all().values_list("kind", flat=True))
    assert kinds == ["new_case", "urgent_case"]
    # The worker's tick at 10:17: the opt-in goes now, the other is held for the 12:00 batch.
    result = await worker.tick(s, now=written)
    assert result.delivery.sent == 1
    (first,) = hook.requests
    text = first.json["markdown"]["content"]
    assert "紧急：新案件待受理" in text and "提交人要求立即通知值班领导" in text
    assert "请在 4 小时内受理" in text and "类别：安全隐患" in text
    held = await OutboxMessage.get(kind="new_case")
    assert held.status == "held" and held.next_attempt_at == at(day, 12)
    assert (await worker.tick(s, now=at(day, 11, 59))).delivery.sent == 0
    assert (await worker.tick(s, now=at(day, 12))).delivery.sent == 1
    assert len(hook.requests) == 2 and "待处理汇总" in hook.requests[1].json["markdown"]["content"]
    # The clocks: the next full hour for the opt-in, the batch boundary for the other. The
    # choice itself is stored nowhere else on the case.
    assert now_case.clock_at == at(day, 11) and later_case.clock_at == at(day, 12)
    columns = set(Case._meta.fields_map)
    assert not {c for c in columns if "notify" in c or "immediate" in c}
    # Every payload: no text, no time finer than the day (the hook fixture checks it too).
    for r in hook.requests:
        assert not re.search(r"\d{1,2}:\d{2}", r.body.decode())


async def test_the_opt_in_changes_nothing_for_other_categories(napp, nsettings, hook):
    s = nsettings.with_(notify_quiet_hours=2)
    await channel(hook, "wecom", "/group/send?key=g")
    case = await urgent_case(s, at(workshop_today(), 10, 17), immediate=True, category=1,
                             body="食堂饭菜太咸了，希望改进。")
    assert case.clock_at is None
    assert await OutboxMessage.all().values_list("kind", flat=True) == ["new_case"]


# ---- the escalation ladder ------------------------------------------------------------------

async def test_the_ladder_takes_each_level_once_in_order(napp, nsettings, hook):
    s = nsettings.with_(notify_quiet_hours=2)
    workshop = await Unit.filter(kind="workshop").order_by("id").first()
    assert workshop is not None
    leader = await add_user("lead", "leader")
    handler = await add_user("h1", "handler")
    await Channel.create(name="车间群", kind="wecom", url=hook.url + "/unit?key=u",
                         unit=workshop)
    await Channel.create(name="段领导群", kind="wecom", url=hook.url + "/depot?key=d")
    await channel(hook, "wecom", "/personal?key=p", user=handler)
    # The workshop's own ladder replaces the depot's one step.
    levels = [await EscalationLevel.create(unit=workshop, after_hours=h, target=t)
              for h, t in ((48, "depot"), (0, "assignee"), (24, "unit"))]
    day = workshop_today()
    case = await urgent_case(s, at(day, 10, 17))  # clock 12:00, due to accept at 16:00
    await cases.apply(case.id, "accept", leader, now=at(day, 13), tz=TZ,
                      assignee_id=handler.id)  # answer due 12:00 the next day
    await OutboxMessage.all().delete()
    due = at(day + timedelta(1), 12)

    async def step(now: datetime) -> list[str]:
        before = {m.id for m in await OutboxMessage.all()}
        await worker.escalate(s, now)
        rows = await OutboxMessage.exclude(id__in=list(before)).select_related("channel")
        return sorted(r.channel.url.split("?")[0].rsplit("/", 1)[1] for r in rows)

    assert await step(due - timedelta(minutes=1)) == []
    # Urgent cases escalate at any hour, not only after the morning reminder hour.
    assert await step(due) == ["personal"]
    assert await step(due + hours(5)) == []  # once per level, case and deadline
    assert await step(due + hours(24)) == ["unit"]
    # The worker was down for days: the last level once, never the earlier ones again.
    assert await step(due + hours(100)) == ["depot"]
    assert await step(due + hours(101)) == []
    timeline = await Event.filter(case_id=case.id, action="escalate").order_by("seq")
    assert [e.body for e in timeline] == [
        "超期升级：通知承办人（到期时）", "超期升级：通知本单位领导群（期限后 24 小时）",
        "超期升级：通知段领导群（期限后 48 小时）"]
    assert all(not e.public and not e.by_submitter and e.actor_id is None for e in timeline)  # type: ignore[attr-defined]
    keys = sorted(await EscalationStep.filter(case_id=case.id).values_list("id", flat=True))
    assert keys == sorted(f"{lv.id}:{case.id.hex}:{due.astimezone(UTC).isoformat()}"
                          for lv in levels)
    # Two workers at once still take nothing twice.
    await asyncio.gather(worker.escalate(s, due + hours(200)), worker.escalate(s, due + hours(200)))
    assert await Event.filter(case_id=case.id, action="escalate").count() == 3
    assert await hook_texts(s, hook, due + hours(200)) >= 3


async def hook_texts(s: Settings, hook: Hook, now: datetime) -> int:
    """Deliver what is due; every payload is checked by the hook fixture at the end."""
    await notify.deliver_due(s, now=now)
    texts = [r.json["markdown"]["content"] for r in hook.requests]
    assert all("升级提醒" in t and "已超时" in t for t in texts)
    return len(texts)


async def test_day_based_cases_climb_only_after_the_morning_hour(napp, nsettings, hook):
    s = nsettings.with_(notify_hour=8)
    leader = await add_user("lead", "leader")
    await channel(hook, "wecom", "/group?key=g")
    await EscalationLevel.create(after_hours=24, target="depot")  # the depot's second step
    day = workshop_today()
    case = await seed_case("食堂饭菜太咸了，希望改进。", category_id=1)
    await cases.apply(case.id, "accept", leader, now=datetime.now(UTC), tz=TZ,
                      assignee_id=leader.id, deadline=day + timedelta(days=1))
    after = day + timedelta(days=2)  # the deadline has passed at 00:00 today
    assert await worker.escalate(s, at(after, 7, 59), days=False) == 0
    assert await worker.remind(s, at(after, 7, 59)) == 0  # no reminders before 8
    assert await worker.remind(s, at(after, 8)) == 1  # the depot's first step: the group
    assert await worker.remind(s, at(after, 23)) == 0
    assert await worker.remind(s, at(after + timedelta(days=1), 8)) == 1  # 24 h later
    steps = await Event.filter(case_id=case.id, action="escalate").order_by("seq")
    assert [e.body for e in steps] == ["超期升级：通知本单位领导群（到期时）",
                                       "超期升级：通知段领导群（期限后 24 小时）"]
    # A new deadline (the leader extends it) starts the ladder again.
    await Case.filter(id=case.id).update(deadline=after + timedelta(days=1))
    assert await worker.remind(s, at(after + timedelta(days=3), 9)) == 2


async def test_the_ladder_reads_past_due_cases_a_batch_at_a_time(napp, nsettings, hook,
                                                                  monkeypatch):
    """A backlog of past-due cases is read and escalated a few at a time (keyset on id): every
    case gets its step once, as when they were read all at once (issue 19: 327,000 past-due
    cases read at once took a worker to 1.1 GiB, and their keys overflowed asyncpg)."""
    monkeypatch.setattr(worker, "BATCH", 2)
    s = nsettings.with_(notify_hour=8)
    leader = await add_user("lead", "leader")
    await channel(hook, "wecom", "/group?key=g")
    day = workshop_today()
    ids = set()
    for i in range(5):
        case = await seed_case(f"食堂饭菜太咸了，希望改进，第 {i + 1} 件。", category_id=1)
        await cases.apply(case.id, "accept", leader, now=datetime.now(UTC), tz=TZ,
                          assignee_id=leader.id, deadline=day + timedelta(days=1))
        ids.add(case.id)
    waiting = await seed_case("更衣柜的锁坏了。", category_id=1)  # never accepted
    after = day + timedelta(days=2)
    due = await worker.overdue_cases(after + timedelta(days=30))
    assert {c.id for c, _ in due} == ids | {waiting.id} and len(due) == 6
    # Two queries (accepted with a deadline; new ones without), each read 2 rows at a time:
    # the waiting case is read but not past its category's days yet.
    assert [len(b) async for b in worker.overdue_batches(after)] == [2, 2, 1, 0]
    assert await worker.remind(s, at(after, 8)) == 5  # the depot's one step, once per case
    assert await worker.remind(s, at(after, 9)) == 0
    escalated = await Event.filter(action="escalate").values_list("case_id", flat=True)
    assert sorted(map(str, escalated)) == sorted(map(str, ids))


async def test_the_ladder_does_not_reread_cases_past_its_horizon(napp, nsettings, hook):
    """A case past due for longer than the longest level plus LADDER_GRACE is not read on
    every tick any more (issue 19); one within it still climbs."""
    s = nsettings.with_(notify_hour=8)
    leader = await add_user("lead", "leader")
    await channel(hook, "wecom", "/group?key=g")
    await EscalationLevel.create(after_hours=48, target="depot")
    day = workshop_today()
    old = await seed_case("去年的意见：澡堂的热水不够热。", category_id=1)
    recent = await seed_case("这周的意见：更衣柜的锁坏了。", category_id=1)
    for case, deadline in ((old, day - timedelta(days=12)), (recent, day - timedelta(days=2))):
        await cases.apply(case.id, "accept", leader, now=datetime.now(UTC), tz=TZ,
                          assignee_id=leader.id, deadline=day + timedelta(days=1))
        # Accepted long ago (the form refuses past days): set directly.
        await Case.filter(id=case.id).update(deadline=deadline)
    # Horizon: 48 h + 7 days before now, so a deadline 12 days ago is out, 2 days ago is in.
    assert worker.LADDER_GRACE == timedelta(days=7)
    assert await worker.remind(s, at(day, 9)) == 1  # the recent case: its first level
    escalated = await Event.filter(action="escalate").values_list("case_id", flat=True)
    assert set(escalated) == {recent.id}
    read = [c.id for b in [b async for b in worker.past_due_batches(s, at(day, 9), True)]
            for c, _ in b]
    assert old.id not in read and recent.id in read


async def test_a_desk_case_never_climbs_to_the_depot_group(napp, nsettings, hook):
    s = nsettings.with_(notify_quiet_hours=0)
    from suggestbox import depot

    desk = await depot.add_unit("jijian", "纪检", depot.DESK)
    await Channel.create(name="纪检群", kind="wecom", url=hook.url + "/desk?key=j", unit=desk)
    await Channel.create(name="段领导群", kind="wecom", url=hook.url + "/depot?key=d")
    await EscalationLevel.filter(unit_id=None).update(target="depot")
    day = workshop_today()
    case = await urgent_case(s, at(day, 10, 17), desk=desk)
    await OutboxMessage.all().delete()
    await worker.escalate(s, at(day, 16))  # clock 11:00 + 4 h
    rows = await OutboxMessage.all().select_related("channel")
    assert [r.channel.name for r in rows] == ["纪检群"]
    assert await Event.filter(case_id=case.id, action="escalate").count() == 1


# ---- 催办 from /track -----------------------------------------------------------------------

async def test_urge_once_per_day_after_the_deadline(napp, nsettings, hook):
    s = nsettings.with_(notify_quiet_hours=2)
    hook.forbidden = ["二号车间的地沟盖板坏了，晚上看不清容易踩空。"]
    await channel(hook, "wecom", "/group?key=g")
    handler = await add_user("h1", "handler")
    leader = await add_user("lead", "leader")
    await channel(hook, "wecom", "/personal?key=p", user=handler)
    async with make_client(napp) as worker_phone:
        receipt = await submit(worker_phone, hook.forbidden[0], category=1)
        case = await Case.get()
        await cases.apply(case.id, "accept", leader, now=datetime.now(UTC), tz=TZ,
                          assignee_id=handler.id, deadline=workshop_today())
        await OutboxMessage.all().delete()
        page = await track(worker_phone, receipt)
        assert "催一下" not in page.text  # due today: not overdue yet
        refused = await urge(worker_phone, page.text, receipt)
        assert refused.status_code == 422 and "还没有超过办理期限" in refused.text
        # The deadline passes.
        await Case.filter(id=case.id).update(deadline=workshop_today() - timedelta(days=1))
        page = await track(worker_phone, receipt)
        assert "这件事已经超过办理期限" in page.text
        done = await urge(worker_phone, page.text, receipt)
        assert done.status_code == 200 and "已催办" in done.text
        assert "今天已经催过了" in done.text and "您催办了一次" in done.text
        again = await urge(worker_phone, done.text, receipt)  # a new token, the same day
        replay = await urge(worker_phone, page.text, receipt)  # the used form again
        assert replay.status_code == 200 and "这份表单已经提交过了" in replay.text
        assert again.status_code == 422 and "今天已经催过了" in again.text
    case = await Case.get(id=case.id)
    assert case.urges == 1
    (event,) = await Event.filter(case_id=case.id, action="urge")
    assert event.by_submitter and event.public and event.actor_id is None  # type: ignore[attr-defined]
    assert event.at == datetime.combine(workshop_today(), datetime.min.time(), tzinfo=TZ)
    assert event.seq < 0  # unordered among the day's staff events, like a follow-up
    # The assignee and the leaders' group hear of it, with the quiet-time batch.
    rows = await OutboxMessage.all().select_related("channel")
    assert sorted((r.kind, r.status, r.channel.url.split("?")[0].rsplit("/", 1)[1])
                  for r in rows) == [("urged", "pending", "group"),
                                     ("urged", "pending", "personal")]
    await notify.hold(s, datetime.now(UTC))
    assert {r.status for r in await OutboxMessage.all()} == {"held"}
    assert (await worker.tick(s, now=at(workshop_today() + timedelta(days=1), 0))).batches == 2
    texts = [r.json["markdown"]["content"] for r in hook.requests]
    assert len(texts) == 2 and all("提交人催办" in t for t in texts)
    # Staff see the count on the queue and the case page.
    async with make_client(napp) as staff:
        await login(staff, "lead")
        queue = await staff.get("/staff/cases")
        assert "催办 1" in queue.text
        page = await staff.get(f"/staff/cases/{case.id}")
        assert re.search(r"data-urges>\s*1 次", page.text)


async def urge(client: Any, page_html: str, receipt: str) -> Any:
    return await client.post("/track/urge", data={"token": form_token(page_html),
                                                  "receipt": receipt})


async def test_urge_refused_cleanly_on_bad_input(napp):
    async with make_client(napp) as c:
        receipt = await submit(c, "三号库房的灭火器过期了，请尽快更换。")
        await Case.all().update(deadline=workshop_today() - timedelta(days=3))
        page = await track(c, receipt)
        token = form_token(page.text)
        bodies = [f"token={token}&receipt={receipt}%00".encode(),
                  f"token=%00&receipt={receipt}".encode(),
                  f"token={token}&receipt=".encode() + b"\xff\xfe\x00",
                  b"token=\xc3\x28&receipt=\x00"]
        for raw in bodies:
            r = await c.post("/track/urge", content=raw,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert r.status_code in (400, 403, 422), (raw, r.status_code)
            assert "催" in r.text or "回执码" in r.text or "页面已过期" in r.text or r.text
    assert await Event.filter(action="urge").count() == 0
    assert await Case.filter(urges__gt=0).count() == 0


# ---- pages -----------------------------------------------------------------------------------

async def test_without_batching_the_opt_in_is_not_offered(napp):
    from suggestbox import org

    await org.set_org("某某机务段", "0571-12345678")
    async with make_client(napp) as c:
        page = await c.get("/")
        # nsettings batches nothing: new cases are sent at once, the opt-in would change nothing.
        assert "立即通知值班领导" not in page.text
        assert "安全隐患：紧急危险请立即电话报告" in page.text and "0571-12345678" in page.text


async def test_submit_page_offers_the_opt_in_and_keeps_it_after_an_error(settings):
    from suggestbox import org
    from suggestbox.app import create_app

    app = create_app(settings.with_(notify_quiet_hours=2))
    async with app.router.lifespan_context(app), make_client(app) as c:
        await org.set_org("某某机务段", "0571-12345678")
        page = await c.get("/")
        assert "立即通知值班领导" in page.text
        assert "通知的时间会显示您大致何时提交" in page.text
        assert "每 2 小时汇总通知一次" in page.text
        r = await c.post("/", data={"token": form_token(page.text), "category": str(URGENT),
                                    "body": "短", "notify_now": "1"})
        assert r.status_code == 422
        assert re.search(r'name="notify_now" value="1" checked', r.text)
        assert re.search(rf'name="category" value="{URGENT}" checked', r.text)
        r = await c.post("/", data={"token": form_token(r.text), "category": str(URGENT),
                                    "body": BODY, "notify_now": "1"})
        assert r.status_code == 303
        receipt_page = await c.get(r.headers["location"])
        assert "须在 4 小时内受理、24 小时内答复" in receipt_page.text
        assert "紧急危险请立即电话报告" in receipt_page.text
        case = await Case.get()
        assert case.clock_at is not None and case.clock_at.minute == 0
        # Other categories: no clock, no urgent sentence on the receipt.
        page = await c.get("/")
        r = await c.post("/", data={"token": form_token(page.text), "category": "1",
                                    "body": "食堂饭菜太咸了，希望改进。", "notify_now": "1"})
        receipt_page = await c.get(r.headers["location"])
        assert "小时内受理" not in receipt_page.text
        assert await Case.filter(clock_at__isnull=True).count() == 1


async def test_admin_sets_urgency_and_the_ladder_with_errors_kept(napp):
    await add_user("boss", "admin")
    async with make_client(napp) as c:
        csrf = await login(c, "boss")
        cat = await Category.get(name="困难求助")
        base = {"csrf": csrf, "id": str(cat.id), "name": cat.name, "deadline_days": "5",
                "sort_order": "3", "active": "1", "urgent": "1", "respond_hours": "8",
                "answer_hours": "6"}
        r = await c.post("/admin/categories", data=base)
        assert r.status_code == 422 and "答复时限不能短于受理时限" in r.text
        assert 'name="answer_hours" value="6"' in r.text
        r = await c.post("/admin/categories", data={**base, "answer_hours": "abc"})
        assert r.status_code == 422 and "答复时限（小时）必须是整数" in r.text
        r = await c.post("/admin/categories", data={**base, "answer_hours": "48"})
        assert r.status_code == 303
        cat = await Category.get(id=cat.id)
        assert (cat.urgent, cat.respond_hours, cat.answer_hours) == (True, 8, 48)
        r = await c.post("/admin/ladder", data={"csrf": csrf, "after_hours": "-1",
                                                 "target": "depot"})
        assert r.status_code == 422 and "期限后小时数应在 0 到 1440 之间" in r.text
        r = await c.post("/admin/ladder", data={"csrf": csrf, "after_hours": "24",
                                                 "target": "nobody"})
        assert r.status_code == 422 and "请选择通知谁" in r.text
        r = await c.post("/admin/ladder", data={"csrf": csrf, "after_hours": "24\x00",
                                                 "target": "depot"})
        assert r.status_code in (400, 422)
        r = await c.post("/admin/ladder", data={"csrf": csrf, "after_hours": "72",
                                                 "target": "depot"})
        assert r.status_code == 303
    got = sorted(await EscalationLevel.filter(unit_id=None).values_list("after_hours", "target"))
    assert got == [(0, "unit"), (72, "depot")]



async def test_a_promise_past_its_date_climbs_the_ladder(napp, nsettings, hook):
    """Issue 18's 承诺完成日期 not carried out by its day escalates like a deadline."""
    s = nsettings.with_(notify_hour=8)
    leader = await add_user("lead", "leader")
    await channel(hook, "wecom", "/group?key=g")
    case = await seed_case("食堂饭菜太咸了，希望改进。", category_id=1)
    now = datetime.now(UTC)
    await cases.apply(case.id, "accept", leader, now=now, tz=TZ, assignee_id=leader.id)
    await cases.apply(case.id, "reply", leader, now=now, tz=TZ, body="下周起调整。")
    day = workshop_today()
    await Case.filter(id=case.id).update(promised_on=day - timedelta(days=2))
    await OutboxMessage.all().delete()
    assert await worker.remind(s, at(day, 9)) == 1
    assert await worker.remind(s, at(day, 10)) == 0  # once per level and promise
    (step,) = await Event.filter(case_id=case.id, action="escalate")
    assert step.body == "超期升级：通知本单位领导群（到期时）".replace("超期", "承诺逾期").replace(
        "（到期时）", "（逾期时）")
    await notify.deliver_due(s, now=at(day, 9))
    (message,) = hook.requests
    text = message.json["markdown"]["content"]
    assert "承诺逾期未落实（升级提醒）" in text and "已逾期 2 天" in text
    # Carried out: nothing more climbs.
    await Case.filter(id=case.id).update(carried_out_at=now)
    assert await worker.remind(s, at(day + timedelta(days=2), 9)) == 0
