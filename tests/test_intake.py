"""Issue 16: cases recorded by staff (来源), paper slips with tear-off receipts, 我也遇到.
Both databases (the ``app`` fixture's parametrisation)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from suggestbox import cases, intake, receipts, supports
from suggestbox.models import Case, Event, SlipCode, Source, StaffUser, Support, Unit
from suggestbox.months import Month
from suggestbox.reports import build_report
from tests.conftest import (
    PASSWORD,
    RECEIPT_RE,
    add_user,
    form_token,
    login,
    make_client,
    seed_case,
    track,
    workshop_today,
)

TZ = ZoneInfo("Asia/Shanghai")
TALK = "谈心时反映：夜班结束后没有热水洗澡，冬天很难受。"


def token_of(html: str) -> str:
    m = re.search(r'name="token" value="([^"]+)"', html)
    assert m
    return m.group(1)


async def test_a_leader_records_a_talk_and_the_worker_follows_it(app):
    await add_user("lead", "leader")
    talk = await Source.get(name="谈心")
    async with make_client(app) as c:
        csrf = await login(c, "lead")
        page = await c.get("/staff/cases/new")
        assert "请不要写职工的姓名" in page.text and "扫码" not in re.sub(
            r"<p class=\"lead\">.*?</p>", "", page.text, flags=re.S)
        # Wrong first: no source chosen. Every choice made survives.
        data = {"csrf": csrf, "token": token_of(page.text), "category": "3", "body": TALK}
        r = await c.post("/staff/cases/new", data=data)
        assert r.status_code == 422 and "请选择来源" in r.text
        assert TALK in r.text and re.search(r'value="3" checked', r.text)
        assert await Case.all().count() == 0
        data.update(source=str(talk.id), token=token_of(r.text))
        r = await c.post("/staff/cases/new", data=data)
        assert r.status_code == 200, r.text
        receipt = RECEIPT_RE.search(r.text).group(1)
        assert "只显示这一次" in r.text and r.headers["cache-control"] == "no-store"
        # The same form again (a reload): nothing new.
        again = await c.post("/staff/cases/new", data=data)
        assert again.status_code == 422 and "已经提交过了" in again.text
    case = await Case.get()
    assert case.source_id == talk.id and case.body == TALK and case.status == "new"
    first = await Event.get(case_id=case.id)
    lead = await StaffUser.get(username="lead")
    assert (first.action, first.actor_id, first.by_submitter) == ("submit", lead.id, False)
    assert first.at.astimezone(TZ).time() == datetime.min.time()  # the day only
    async with make_client(app) as worker:
        shown = await track(worker, receipt)
        assert shown.status_code == 200 and "由工作人员代为录入（来源：谈心）" in shown.text


async def test_paper_slips_hold_only_hashes_and_each_code_enters_once(app, settings):
    await add_user("adm", "admin")
    async with make_client(app) as c:
        csrf = await login(c, "adm")
        page = await c.get("/admin/slips")
        assert "打印和录入纸条的人能看到这些回执码" in page.text
        bad = await c.post("/admin/slips", data={"csrf": csrf, "count": "0"})
        assert bad.status_code == 422 and "1 到 200" in bad.text
        printed = await c.post("/admin/slips", data={"csrf": csrf, "count": "3"})
        assert printed.status_code == 200
        codes = re.findall(r'data-code="([0-9A-Z-]{19})"', printed.text)
        assert len(codes) == 3 and len(set(codes)) == 3
        assert printed.text.count("<section class=\"slip\"") == 3
    rows = await SlipCode.all()
    assert len(rows) == 3
    stored = " ".join(f"{r.id} {r.expires_on}" for r in rows)
    for code in codes:
        assert code not in stored and code.replace("-", "") not in stored
        assert receipts.receipt_hash(settings.secret_key, code) in {r.id for r in rows}
    assert {r.expires_on for r in rows} == {workshop_today() + timedelta(days=365)}

    lead = await add_user("lead", "leader")
    main = await Unit.get(code="main")
    entered = await intake.record_case(
        secret_key=settings.secret_key, actor=lead, workshop=main, source_id=None,
        category_id=1, team=None, body="纸条：更衣室的灯坏了三盏。", today=workshop_today(),
        tz=TZ, slip_code=codes[0].lower().replace("-", " "))
    assert entered.case.source_id == (await Source.get(key="paper")).id
    assert await SlipCode.all().count() == 2
    async with make_client(app) as worker:
        assert "由工作人员代为录入（来源：纸质意见箱）" in (await track(worker, codes[0])).text
    async def refused(code: str, why: str) -> None:
        try:
            await intake.record_case(
                secret_key=settings.secret_key, actor=lead, workshop=main, source_id=None,
                category_id=1, team=None, body="再录一次。", today=workshop_today(), tz=TZ,
                slip_code=code)
        except cases.DomainError as e:
            assert why in e.message, e.message
        else:
            raise AssertionError(f"{code} was entered")

    missing = "没有这个纸条回执码"
    for code, why in ((codes[0], missing), ("ABCD-EFGH-JKMN-PQRS", missing), ("12345", "16 位")):
        await refused(code, why)
    # An expired code is refused, and the nightly purge removes it.
    await SlipCode.filter(id=receipts.receipt_hash(settings.secret_key, codes[1])).update(
        expires_on=workshop_today() - timedelta(days=1))
    await refused(codes[1], "过期")
    assert await intake.purge_slips(workshop_today()) == 1
    assert await Case.all().count() == 1


async def test_another_workshops_slip_and_staff_are_refused(app, settings):
    from suggestbox import auth, depot

    b = await depot.add_unit("b", "二车间")
    main = await Unit.get(code="main")
    lead_b = await auth.add_user("lead_b", "leader", PASSWORD, unit=b)
    codes = await intake.print_slips(settings.secret_key, main, 1, workshop_today(), 365)
    try:
        await intake.record_case(
            secret_key=settings.secret_key, actor=lead_b, workshop=b, source_id=None,
            category_id=1, team=None, body="别的车间的纸条。", today=workshop_today(), tz=TZ,
            slip_code=codes[0])
    except cases.DomainError as e:
        assert "不是本车间" in e.message
    else:
        raise AssertionError("B entered A's slip")
    async with make_client(app) as c:
        await login(c, "lead_b")
        assert (await c.get("/staff/cases/new?w=main")).status_code == 404
        assert (await c.get("/staff/cases/new")).status_code == 200


async def test_supports_count_once_per_browser_and_follow_a_merge(app):
    lead = await add_user("lead", "leader")
    now = datetime.now(UTC)
    main_case = await seed_case("食堂夜班没有热菜，只能吃泡面。")
    dup = await seed_case("夜班食堂没热饭。")
    for c in (main_case, dup):
        await cases.apply(c.id, "accept", lead, now=now, tz=TZ, assignee_id=lead.id)
        await cases.apply(c.id, "publish", lead, now=now, tz=TZ, summary="夜班食堂没有热菜")
    async with make_client(app) as one, make_client(app) as two:
        board = await one.get("/board")
        assert "征集意见" in board.text and "我也遇到（<span data-supports>0<" in board.text
        r = await one.post(f"/board/{main_case.id}/support")
        assert r.status_code == 303 and r.headers["location"].endswith("?supported=1")
        r = await one.post(f"/board/{main_case.id}/support")  # the same browser again
        assert r.headers["location"].endswith("?supported=again")
        page = await one.get(r.headers["location"])
        assert "同一条只计一次" in page.text and "我也遇到（<span data-supports>1<" in page.text
        await two.post(f"/board/{main_case.id}/support")
        await two.post(f"/board/{dup.id}/support")
        assert "我也遇到（<span data-supports>2<" in (await one.get("/board")).text
        assert (await one.post(f"/board/{uuid.uuid4()}/support")).status_code == 404
    rows = await Support.all().values("case_id", "day", "count")
    assert sorted((str(r["case_id"]), r["day"], r["count"]) for r in rows) == sorted([
        (str(main_case.id), workshop_today(), 2), (str(dup.id), workshop_today(), 1)])
    # A merge carries the duplicate's presses to the main case.
    await cases.apply(dup.id, "merge", lead, now=now, tz=TZ, merge_into=main_case.number)
    await main_case.refresh_from_db()
    assert main_case.supports == 3


async def test_support_refuses_unpublished_cases(app):
    case = await seed_case("没有公示的事。")
    async with make_client(app) as c:
        assert (await c.post(f"/board/{case.id}/support")).status_code == 404
    try:
        await supports.press(case.id, workshop_today())
    except cases.DomainError:
        pass
    else:
        raise AssertionError("an unpublished case took a press")
    assert await Support.all().count() == 0


async def test_report_counts_sources_and_supports_by_hand(app, settings):
    """March 2026 by hand: received 扫码 2 (one answered), 谈心 1, 纸质意见箱 1; presses on
    Mar 1 (2) and Mar 31 (3) count, Feb 28 (4) and Apr 1 (5) do not: 我也遇到 = 5."""
    lead = await add_user("lead", "leader")
    main = await Unit.get(code="main")
    talk = await Source.get(name="谈心")
    mar = date(2026, 3, 10)
    qr1 = await cases.submit_case(secret_key="k" * 32, nonce="n1", category_id=1, team=None,
                                  body="扫码一。", today=mar, tz=TZ)
    await cases.submit_case(secret_key="k" * 32, nonce="n2", category_id=1, team=None,
                            body="扫码二。", today=mar, tz=TZ)
    await intake.record_case(secret_key="k" * 32, actor=lead, workshop=main, source_id=talk.id,
                             category_id=2, team=None, body="谈心一。", today=mar, tz=TZ)
    slip = await intake.print_slips("k" * 32, main, 1, mar, 365)
    await intake.record_case(secret_key="k" * 32, actor=lead, workshop=main, source_id=None,
                             category_id=2, team=None, body="纸条一。", today=mar, tz=TZ,
                             slip_code=slip[0])
    at = datetime(2026, 3, 12, 2, 0, tzinfo=UTC)
    await cases.apply(qr1.case.id, "accept", lead, now=at, tz=TZ, assignee_id=lead.id)
    await cases.apply(qr1.case.id, "reply", lead, now=at, tz=TZ, body="已处理。")
    for day, n in ((date(2026, 2, 28), 4), (date(2026, 3, 1), 2), (date(2026, 3, 31), 3),
                   (date(2026, 4, 1), 5)):
        await Support.create(id=uuid.uuid4(), case_id=qr1.case.id, day=day, count=n)
    report = await build_report(Month(2026, 3), tz=TZ, units=(main.id,),
                                now=datetime(2026, 5, 1, tzinfo=UTC))
    assert report.figures.totals["supports"] == 5
    assert report.figures.totals["received"] == 4
    got = {g.label: (g.received, g.answered, g.closed) for g in report.by_source}
    assert got["扫码"] == (2, 1, 0) and got["谈心"] == (1, 0, 0) and got["纸质意见箱"] == (1, 0, 0)
    assert got["座谈会"] == (0, 0, 0)  # active sources show with zeros
    again = await build_report(Month(2026, 3), tz=TZ, units=(main.id,),
                               now=datetime(2026, 6, 1, tzinfo=UTC))
    assert again.as_dict()["by_source"] == report.as_dict()["by_source"]


async def test_supports_and_slips_keep_no_identity(app, settings: Any):
    """DESIGN.md §1: a press stores a case, a day and a count; a slip a hash and a day; no
    address, no agent, nothing that ties a press to the presser's own case."""
    from tortoise import connections

    lead = await add_user("lead", "leader")
    now = datetime.now(UTC)
    theirs = await seed_case("别人反映的事：工具柜锁坏了。")
    await cases.apply(theirs.id, "accept", lead, now=now, tz=TZ, assignee_id=lead.id)
    await cases.apply(theirs.id, "publish", lead, now=now, tz=TZ, summary="工具柜锁坏了")
    ua = "Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.50 probe-7f3a9"
    transport = __import__("httpx").ASGITransport(app=app, client=("198.51.100.23", 40000))
    async with __import__("httpx").AsyncClient(transport=transport, base_url="http://testserver",
                                               headers={"user-agent": ua}) as web:
        page = await web.get("/")
        r = await web.post("/", data={"token": form_token(page.text), "category": "1",
                                      "body": "我自己反映的事：更衣室漏水。"})
        assert r.status_code == 303
        await web.post(f"/board/{theirs.id}/support")
    conn = connections.get("default")
    columns = list((await conn.execute_query_dict("SELECT * FROM support"))[0].keys())
    assert sorted(columns) == ["case_id", "count", "day", "id"]
    dump = ""
    for t in ("support", "slip_code", "case", "event", "used_form_token"):
        for row in await conn.execute_query_dict(f'SELECT * FROM "{t}"'):
            dump += " ".join(str(v) for v in row.values()) + "\n"
    assert "198.51.100.23" not in dump and "probe-7f3a9" not in dump
    support = await Support.get()
    assert support.case_id == theirs.id and isinstance(support.day, date)
    assert not isinstance(support.day, datetime)


async def test_case_page_offers_similar_open_cases_and_merges_in_one_step(app):
    await add_user("lead", "leader")
    a = await seed_case("二号库房门口的台阶松动了，晚上看不清容易崴脚。")
    b = await seed_case("库房门口台阶松了，差点崴脚，请修一下。")
    other = await seed_case("食堂的饭菜太咸了。")
    async with make_client(app) as c:
        csrf = await login(c, "lead")
        page = await c.get(f"/staff/cases/{b.id}")
        assert "相似的未办结案件" in page.text
        assert a.number in page.text and other.number not in page.text
        r = await c.post(f"/staff/cases/{b.id}/act", data={
            "csrf": csrf, "action": "merge", "merge_into": a.number})
        assert r.status_code == 303
    await b.refresh_from_db()
    assert b.status == "merged" and b.merged_into_id == a.id
