"""Case handling: login, sessions, queue, the state machine through HTTP, authorization."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from suggestbox.cases import RULES
from suggestbox.models import Case, Event, StaffSession
from tests.conftest import (
    PASSWORD,
    act,
    add_user,
    csrf_of,
    form_token,
    login,
    make_client,
    seed_case,
    submit,
    track,
)


async def test_whole_loop_through_http(app):
    """submit → accept → assign → start → reply → rate 不满意 → reply → rate 满意 → close."""
    await add_user("leader1", "leader")
    await add_user("handler1", "handler")
    handler = await __import__("suggestbox.models", fromlist=["StaffUser"]).StaffUser.get(
        username="handler1")
    async with make_client(app) as worker, make_client(app) as leader, \
            make_client(app) as handler_c:
        receipt = await submit(worker, "班组的劳保鞋尺码不全，希望补发。", category=3)
        case = await Case.get()
        lc = await login(leader, "leader1")
        queue = await leader.get("/staff/cases")
        assert case.number in queue.text and "劳保鞋" in queue.text
        r = await act(leader, lc, case.id, "accept", assignee=handler.id)
        assert r.status_code == 303, r.text
        await case.refresh_from_db()
        assert case.status == "accepted" and case.assignee_id == handler.id
        assert case.deadline is not None and case.responded_at is not None
        hc = await login(handler_c, "handler1")
        assert (await act(handler_c, hc, case.id, "start")).status_code == 303
        assert (await act(handler_c, hc, case.id, "note", body="已联系库房。")).status_code == 303
        r = await act(handler_c, hc, case.id, "reply", body="已补发 42、43 码，本周五到货。")
        assert r.status_code == 303
        page = await track(worker, receipt)
        assert "已答复" in page.text and "42、43 码" in page.text
        assert "已联系库房" not in page.text  # internal notes never reach the submitter
        # 不满意 with a comment reopens the case.
        bad = await worker.post("/track/rate", data={
            "token": form_token(page.text), "receipt": receipt, "rating": "unsatisfied",
            "body": "到货的还是不够。"})
        assert bad.status_code == 200, bad.text
        await case.refresh_from_db()
        assert case.status == "in_progress" and case.reopen_count == 1
        assert (await act(handler_c, hc, case.id, "reply", body="又补了一批。")).status_code == 303
        # Closing before a rating or the window is refused.
        r = await act(leader, lc, case.id, "close")
        assert r.status_code == 422 and "尚未评价" in r.text
        page = await track(worker, receipt)
        good = await worker.post("/track/rate", data={
            "token": form_token(page.text), "receipt": receipt, "rating": "satisfied"})
        assert good.status_code == 200 and "感谢您的评价" in good.text
        assert (await act(leader, lc, case.id, "close")).status_code == 303
        await case.refresh_from_db()
        assert case.status == "closed" and case.rating == "satisfied"
        assert "已办结" in (await track(worker, receipt)).text
    actions = [e.action for e in await Event.filter(case_id=case.id).order_by("seq")]
    assert actions == ["submit", "accept", "start", "note", "reply", "rate_unsatisfied", "reply",
                       "rate", "close"]


async def test_reject_needs_reason_shown_to_submitter(app):
    await add_user("leader1", "leader")
    async with make_client(app) as c:
        receipt = await submit(c, "希望每天发两次加班餐。")
        case = await Case.get()
        csrf = await login(c, "leader1")
        r = await act(c, csrf, case.id, "reject", body="")
        assert r.status_code == 422 and "理由" in r.text
        assert await Event.filter(case_id=case.id).count() == 1
        r = await act(c, csrf, case.id, "reject", body="超出车间权限，已转工会反映。")
        assert r.status_code == 303
        page = await track(c, receipt)
        assert "不予受理" in page.text and "已转工会反映" in page.text


async def test_merge_shows_main_case_to_duplicate_submitter(app):
    await add_user("leader1", "leader")
    await add_user("h1", "handler")
    from suggestbox.models import StaffUser

    h1 = await StaffUser.get(username="h1")
    async with make_client(app) as c:
        r1 = await submit(c, "二号库房的灭火器过期了。")
        r2 = await submit(c, "库房灭火器已经过期好几个月。")
        main = await Case.get(body__contains="二号库房")
        dup = await Case.get(body__contains="好几个月")
        csrf = await login(c, "leader1")
        assert (await act(c, csrf, dup.id, "merge", merge_into="ZZZZZZZZ")).status_code == 422
        assert (await act(c, csrf, dup.id, "merge", merge_into=dup.number)).status_code == 422
        assert (await act(c, csrf, dup.id, "merge", merge_into=main.number)).status_code == 303
        await act(c, csrf, main.id, "accept", assignee=h1.id)
        page = await track(c, r2)
        assert "重复" in page.text and "已受理" in page.text
        assert (await track(c, r1)).status_code == 200


async def test_transfer_and_return(app):
    await add_user("leader1", "leader")
    await add_user("h1", "handler")
    await add_user("h2", "handler")
    from suggestbox.models import StaffUser

    h1, h2 = await StaffUser.get(username="h1"), await StaffUser.get(username="h2")
    async with make_client(app) as lead, make_client(app) as c1, make_client(app) as c2:
        await submit(lead, "宿舍空调漏水。")
        case = await Case.get()
        lc = await login(lead, "leader1")
        await act(lead, lc, case.id, "accept", assignee=h1.id)
        assert (await act(lead, lc, case.id, "transfer", assignee=h1.id)).status_code == 422
        assert (await act(lead, lc, case.id, "transfer", assignee=h2.id)).status_code == 303
        c1c = await login(c1, "h1")
        # h1 no longer sees the case at all.
        assert (await c1.get(f"/staff/cases/{case.id}")).status_code == 404
        assert (await act(c1, c1c, case.id, "reply", body="越权答复")).status_code == 404
        c2c = await login(c2, "h2")
        assert (await act(c2, c2c, case.id, "return", body="")).status_code == 422
        assert (await act(c2, c2c, case.id, "return", body="不属于本班组。")).status_code == 303
        await case.refresh_from_db()
        assert case.status == "new" and case.assignee_id is None


async def test_illegal_transitions_refused_and_write_no_event(app):
    await add_user("leader1", "leader")
    async with make_client(app) as c:
        await submit(c, "测试非法操作的案件。")
        case = await Case.get()
        csrf = await login(c, "leader1")
        for action, extra in [("reply", {"body": "x"}), ("close", {}), ("start", {}),
                              ("reopen", {"body": "x"}), ("bogus", {}), ("submit", {}),
                              ("rate", {"rating": "satisfied"})]:
            r = await act(c, csrf, case.id, action, **extra)
            assert r.status_code == 422, (action, r.status_code)
        assert await Event.filter(case_id=case.id).count() == 1
        await case.refresh_from_db()
        assert case.status == "new"


async def test_every_rule_is_listed_with_labels():
    for name, rule in RULES.items():
        assert rule.label and rule.roles, name


# ---- sessions and login ---------------------------------------------------------------------

async def test_logout_disable_and_password_change_revoke_sessions(app):
    from suggestbox import auth
    from suggestbox.models import StaffUser

    await add_user("leader1", "leader")
    async with make_client(app) as c:
        csrf = await login(c, "leader1")
        r = await c.post("/staff/logout", data={"csrf": csrf})
        assert r.status_code == 303
        assert (await c.get("/staff/cases")).status_code == 303
    async with make_client(app) as c, make_client(app) as other:
        await login(c, "leader1")
        cookie = c.cookies.get("sb_staff")
        await auth.set_active(await StaffUser.get(username="leader1"), False)
        other.cookies.set("sb_staff", cookie)
        assert (await other.get("/staff/cases")).status_code == 303
        await auth.set_active(await StaffUser.get(username="leader1"), True)
    async with make_client(app) as c, make_client(app) as second:
        csrf = await login(c, "leader1")
        await login(second, "leader1")
        r = await c.post("/staff/account", data={"csrf": csrf, "current": PASSWORD,
                                                 "password": "new-pass-123",
                                                 "password2": "new-pass-123"})
        assert r.status_code == 303
        assert (await second.get("/staff/cases")).status_code == 303
        assert (await c.get("/staff/cases")).status_code == 303
        await login(c, "leader1", "new-pass-123")
    assert await StaffSession.all().count() == 1


async def test_session_id_rotates_and_cookie_flags(app):
    await add_user("leader1", "leader")
    async with make_client(app) as c:
        await login(c, "leader1")
        first = c.cookies.get("sb_staff")
        r = await c.post("/staff/login", data={"username": "leader1", "password": PASSWORD})
        assert c.cookies.get("sb_staff") != first
        header = r.headers["set-cookie"].lower()
        assert "httponly" in header and "samesite=lax" in header
        assert await StaffSession.all().count() == 1  # the old one ended
        stored = await StaffSession.get()
        assert stored.id != c.cookies.get("sb_staff")


async def test_idle_and_absolute_timeouts(app):
    await add_user("leader1", "leader")
    async with make_client(app) as c:
        await login(c, "leader1")
        s = await StaffSession.get()
        s.last_seen_at = datetime.now(UTC) - timedelta(hours=3)
        await s.save()
        assert (await c.get("/staff/cases")).status_code == 303
        await login(c, "leader1")
        s = await StaffSession.get()
        s.created_at = datetime.now(UTC) - timedelta(hours=13)
        await s.save()
        assert (await c.get("/staff/cases")).status_code == 303


async def test_login_throttling(app, settings):
    await add_user("leader1", "leader")
    async with make_client(app) as c:
        for _ in range(settings.login_fail_limit):
            r = await c.post("/staff/login", data={"username": "leader1", "password": "wrong"})
            assert r.status_code in (422, 429)
        r = await c.post("/staff/login", data={"username": "leader1", "password": PASSWORD})
        assert r.status_code == 429 and "秒后再试" in r.text
    # Another address is not locked out by one person's guesses...
    import httpx

    def client_from(address: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 9)),
                                 base_url="http://testserver")

    async with client_from("198.51.100.1") as other:
        r = await other.post("/staff/login", data={"username": "leader1", "password": PASSWORD})
        assert r.status_code == 303
    # ...but guessing one account from many addresses stops at the account's own limit.
    per_address = settings.login_fail_limit - 1
    addresses = -(-settings.login_account_fail_limit // per_address)
    for i in range(addresses):
        async with client_from(f"198.51.100.{10 + i}") as c:
            for _ in range(per_address):
                await c.post("/staff/login", data={"username": "leader1", "password": "wrong"})
    async with client_from("198.51.100.99") as c:
        r = await c.post("/staff/login", data={"username": "leader1", "password": PASSWORD})
        assert r.status_code == 429


async def test_queue_filters_search_and_paging(app, settings):
    from suggestbox.models import Team

    await add_user("leader1", "leader")
    await Team.create(code="w1", name="检修一班")
    async with make_client(app) as c:
        team = await Team.get(code="w1")
        for i in range(35):
            await seed_case(f"第{i}号意见：设备保养。", team=team if i % 2 else None)
        await submit(c, "关于食堂菜价的意见。", category=2)
        csrf = await login(c, "leader1")
        assert csrf
        page = await c.get("/staff/cases?q=食堂")
        assert "食堂菜价" in page.text and "设备保养" not in page.text
        page = await c.get(f"/staff/cases?team={team.id}")
        assert page.text.count("检修一班</td>") == 17
        page1 = await c.get("/staff/cases")
        assert "下一页" in page1.text and "全部 36" in page1.text
        import re

        nxt = re.search(r'href="\?([^"]*after=[^"]+)"', page1.text).group(1).replace("&amp;", "&")
        page2 = await c.get("/staff/cases?" + nxt)
        ids1 = set(re.findall(r"/staff/cases/([0-9a-f-]{36})", page1.text))
        ids2 = set(re.findall(r"/staff/cases/([0-9a-f-]{36})", page2.text))
        assert len(ids1) == settings.page_size and len(ids2) == 36 - settings.page_size
        assert not ids1 & ids2
        assert (await c.get("/staff/cases?after=garbage")).status_code == 400


async def test_csrf_required_on_staff_posts(app):
    await add_user("admin1", "admin")
    async with make_client(app) as c:
        await submit(c)
        case = await Case.get()
        csrf = await login(c, "admin1")
        page = await c.get("/admin")
        assert csrf_of(page.text) == csrf
        for path, data in [
            (f"/staff/cases/{case.id}/act", {"action": "note", "body": "x"}),
            ("/staff/logout", {}),
            ("/staff/account", {"current": PASSWORD, "password": "abcdefgh1",
                                "password2": "abcdefgh1"}),
            ("/admin/users", {"op": "add", "username": "x1", "role": "handler",
                              "password": "abcdefgh1"}),
            ("/admin/teams", {"code": "t1", "name": "x"}),
            ("/admin/categories", {"name": "新类别", "deadline_days": "3"}),
        ]:
            for bad in (None, "forged"):
                payload = dict(data, **({"csrf": bad} if bad else {}))
                r = await c.post(path, data=payload)
                assert r.status_code == 403, (path, bad, r.status_code)
        assert await Event.filter(action="note").count() == 0


@pytest.mark.parametrize("role", ["anonymous", "handler", "other_handler", "leader", "admin"])
async def test_authorization_matrix(app, role):
    from suggestbox.models import StaffUser

    await add_user("h1", "handler")
    await add_user("h2", "handler")
    await add_user("lead", "leader")
    await add_user("adm", "admin")
    h1 = await StaffUser.get(username="h1")
    async with make_client(app) as c:
        await submit(c)
        case = await Case.get()
        async with make_client(app) as lc:
            lcsrf = await login(lc, "lead")
            await act(lc, lcsrf, case.id, "accept", assignee=h1.id)
        user = {"handler": "h1", "other_handler": "h2", "leader": "lead", "admin": "adm"}.get(role)
        csrf = await login(c, user) if user else "none"
        expected_case = {"anonymous": 303, "handler": 200, "other_handler": 404, "leader": 200,
                         "admin": 200}[role]
        expected_admin = {"anonymous": 303, "admin": 200}.get(role, 403)
        assert (await c.get("/staff/cases")).status_code == (303 if role == "anonymous" else 200)
        assert (await c.get(f"/staff/cases/{case.id}")).status_code == expected_case
        assert (await c.get("/admin")).status_code == expected_admin
        r = await c.post("/admin/teams", data={"csrf": csrf, "code": "t9", "name": "九班"})
        assert r.status_code == (303 if role == "admin" else expected_admin)
        # Leader-only action: accept is already done; transfer is leader/admin only.
        h2 = await StaffUser.get(username="h2")
        r = await act(c, csrf, case.id, "transfer", assignee=h2.id)
        assert r.status_code == {"anonymous": 303, "handler": 422, "other_handler": 404,
                                 "leader": 303, "admin": 303}[role]


@pytest.mark.parametrize("path", [
    "/board?month=9999-12", "/board?month=0000-00", "/board?category=%C2%B2",
    "/board?page=%C2%B2", "/board?page=99999999999999999999", "/staff/cases/%E4%B8%AD",
    "/staff/cases?category=%C2%B2&team=99999999999999999999",
])
async def test_odd_query_values_never_give_500(client, path):
    await add_user("lead", "leader")
    await login(client, "lead")  # signed in, so the staff pages really parse the values
    r = await client.get(path)
    assert r.status_code in (200, 400, 404), (path, r.status_code)


async def test_admin_forms_refuse_odd_ids(app):
    await add_user("adm", "admin")
    async with make_client(app) as c:
        csrf = await login(c, "adm")
        for path, data in [
            ("/admin/users", {"op": "disable", "id": "²"}),
            ("/admin/users", {"op": "disable", "id": "99999999999999999999"}),
            ("/admin/teams", {"id": "²", "code": "t1", "name": "一班"}),
            ("/admin/categories", {"id": "99999999999999999999", "name": "x",
                                   "deadline_days": "3"}),
        ]:
            r = await c.post(path, data={"csrf": csrf, **data})
            assert r.status_code in (400, 404, 422), (path, data, r.status_code)


async def test_reopen_clears_the_rating_so_the_new_answer_is_rated(app):
    from suggestbox.models import StaffUser

    await add_user("lead", "leader")
    async with make_client(app) as w, make_client(app) as lead:
        receipt = await submit(w, "澡堂的热水器坏了。")
        case = await Case.get()
        csrf = await login(lead, "lead")
        me = await StaffUser.get(username="lead")
        await act(lead, csrf, case.id, "accept", assignee=me.id)
        await act(lead, csrf, case.id, "reply", body="已报修。")
        page = await track(w, receipt)
        await w.post("/track/rate", data={"token": form_token(page.text), "receipt": receipt,
                                          "rating": "satisfied"})
        r = await act(lead, csrf, case.id, "reopen", body="又坏了，重新办理。")
        assert r.status_code == 303
        await case.refresh_from_db()
        assert case.rating is None and case.status == "in_progress"
        await act(lead, csrf, case.id, "reply", body="已更换新热水器。")
        assert (await act(lead, csrf, case.id, "close")).status_code == 422  # not rated yet
        page = await track(w, receipt)
        assert "评价答复" in page.text
        # A forged second rating after 满意 is refused on both paths.
        await w.post("/track/rate", data={"token": form_token(page.text), "receipt": receipt,
                                          "rating": "basic"})
        page = await track(w, receipt)
        r = await w.post("/track/rate", data={"token": form_token(page.text), "receipt": receipt,
                                              "rating": "unsatisfied", "body": "改主意了"})
        assert r.status_code == 422 and "已经评价过" in r.text
        await case.refresh_from_db()
        assert case.rating == "basic" and case.status == "answered"


async def test_current_password_check_is_throttled(app, settings):
    await add_user("lead", "leader")
    async with make_client(app) as c:
        csrf = await login(c, "lead")
        wrong = {"csrf": csrf, "current": "nope", "password": "abcdefgh9", "password2": "abcdefgh9"}
        codes = [(await c.post("/staff/account", data=wrong)).status_code
                 for _ in range(settings.login_account_fail_limit + 1)]
        assert codes[0] == 422 and codes[-1] == 429
        right = dict(wrong, current=PASSWORD)
        assert (await c.post("/staff/account", data=right)).status_code == 429


def test_data_dir_is_owner_only(tmp_path):
    from suggestbox.settings import Settings

    s = Settings(data_dir=tmp_path / "d", database_url=f"sqlite://{tmp_path / 'd' / 'x.sqlite3'}")
    s.prepare()
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "d" / "secret_key").stat().st_mode & 0o777 == 0o600
