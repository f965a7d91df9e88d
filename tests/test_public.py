"""The anonymous box: submit, receipt, replay, tracking, follow-ups, validation, throttling."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import datetime, time

import pytest

from suggestbox import receipts
from suggestbox.models import Case, Event, UsedFormToken
from tests.conftest import RECEIPT_RE, form_token, submit, track


async def test_submit_creates_one_case_and_shows_receipt_once(client):
    receipt = await submit(client, "车间东门的照明灯坏了三盏，晚上看不清。", category=4)
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", receipt)
    assert await Case.all().count() == 1
    case = await Case.get().prefetch_related("category")
    assert case.status == "new" and case.category.name == "安全隐患"
    assert case.receipt_hash != receipt and receipt not in case.receipt_hash
    # A reload shortly after shows the same receipt again (WeChat reloads when switching apps)
    again = await client.get("/receipt")
    assert f'data-receipt="{receipt}"' in again.text
    # ... and once the browser's window has ended, nobody sees it.
    client.cookies.clear()
    later = await client.get("/receipt")
    assert "data-receipt" not in later.text and "回执码已不能再显示" in later.text


async def test_replayed_form_does_not_create_a_second_case(client):
    page = await client.get("/")
    data = {"token": form_token(page.text), "category": "2", "body": "建议在休息室装一台饮水机。"}
    first = await client.post("/", data=data)
    second = await client.post("/", data=data)  # back button / WeChat retry
    assert first.status_code == second.status_code == 303
    assert await Case.all().count() == 1
    shown = await client.get("/receipt")
    receipt = RECEIPT_RE.search(shown.text).group(1)
    assert (await track(client, receipt)).status_code == 200


async def test_concurrent_duplicate_posts_create_one_case(client):
    page = await client.get("/")
    data = {"token": form_token(page.text), "category": "2", "body": "并发重复提交的测试内容。"}
    results = await asyncio.gather(*[client.post("/", data=data) for _ in range(5)])
    assert {r.status_code for r in results} == {303}
    assert await Case.all().count() == 1
    assert await UsedFormToken.all().count() == 1


async def test_team_from_qr_link_and_unknown_team_ignored(client):
    from suggestbox.models import Team

    await Team.create(code="w1", name="检修一班")
    page = await client.get("/?t=w1")
    assert "检修一班" in page.text
    await submit(client, "一班的工具柜锁坏了。", team="w1")
    unknown = await client.get("/?t=nope")
    assert unknown.status_code == 200 and 'name="team"' not in unknown.text
    await submit(client, "未知班组代码也能正常提交。", team="nope")
    teams = sorted([c.team_id is not None for c in await Case.all()])
    assert teams == [False, True]


async def test_times_are_day_precision(client, settings):
    await submit(client)
    case = await Case.get()
    event = await Event.get(case_id=case.id)
    assert event.by_submitter
    local = event.at.astimezone(settings.tz)
    assert local.time() == time(0, 0)
    assert local.date() == case.received_on == datetime.now(settings.tz).date()


@pytest.mark.parametrize(
    ("body", "category", "message"),
    [
        ("", "1", "请填写内容"),
        ("   \n\t  ", "1", "请填写内容"),
        ("太短", "1", "太短了"),
        ("长" * 2001, "1", "太长了"),
        ("含有\x07控制字符的内容", "1", "控制字符"),  # NUL: a 400 at the edge (edge.py)
        ("含有\ufffd坏字符的内容", "1", "编码错误"),
        ("正常的内容正常的内容", "", "请选择一个类别"),
        ("正常的内容正常的内容", "abc", "请选择一个类别"),
        ("正常的内容正常的内容", "999", "请选择一个类别"),
    ],
)
async def test_validation_rerenders_form_with_input_kept(client, body, category, message):
    page = await client.get("/")
    r = await client.post("/", data={"token": form_token(page.text), "category": category,
                                     "body": body})
    assert r.status_code == 422
    assert message in r.text
    if body.strip() and body.isprintable():
        assert body.strip()[:10] in r.text  # the input is kept
    assert await Case.all().count() == 0
    assert await UsedFormToken.all().count() == 0


async def test_limits_are_inclusive(client):
    await submit(client, "刚好五个字")
    await submit(client, "长" * 2000)
    assert await Case.all().count() == 2


async def test_missing_or_forged_form_token_is_refused(client):
    for token in ["", "forged.token.value", "1.abc.0123456789abcdef0123456789abcdef"]:
        r = await client.post("/", data={"token": token, "category": "1",
                                         "body": "没有有效令牌的提交。"})
        assert r.status_code == 422 and "表单已过期" in r.text
    assert await Case.all().count() == 0


async def test_cross_site_post_is_refused(client):
    page = await client.get("/")
    data = {"token": form_token(page.text), "category": "1", "body": "跨站提交的内容。"}
    r1 = await client.post("/", data=data, headers={"Sec-Fetch-Site": "cross-site"})
    r2 = await client.post("/", data=data, headers={"Origin": "https://evil.example"})
    assert r1.status_code == r2.status_code == 403
    ok = await client.post("/", data=data, headers={"Origin": "http://testserver",
                                                    "Sec-Fetch-Site": "same-origin"})
    assert ok.status_code == 303
    assert await Case.all().count() == 1


async def test_body_limit_gives_413(client):
    r = await client.post("/", content=b"body=" + b"x" * 400_000,
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and "太大" in r.text


async def test_security_headers(client):
    r = await client.get("/")
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    # Only our own script file, never inline script, and nothing from elsewhere.
    scripts = re.findall(r"<script[^>]*>", r.text)
    assert scripts == ['<script src="/static/similar.js" defer>']
    assert "http://" not in r.text.replace('xmlns="http://', "")


async def test_track_shows_status_and_accepts_followup(client, settings):
    receipt = await submit(client, "更衣室的热水经常不热。")
    # Lower case, no separators, look-alike O/I typed: still found.
    typed = receipt.replace("-", "").lower().replace("0", "o").replace("1", "i")
    r = await track(client, typed)
    assert r.status_code == 200 and "待受理" in r.text and "更衣室" not in r.text
    assert r.headers["cache-control"] == "no-store"
    token = form_token(r.text)
    f = await client.post("/track/followup", data={"token": token, "receipt": receipt,
                                                   "body": "补充：早班六点最明显。"})
    assert f.status_code == 200 and "已补充" in f.text and "早班六点最明显" in f.text
    again = await client.post("/track/followup", data={"token": token, "receipt": receipt,
                                                       "body": "补充：早班六点最明显。"})
    assert "已经提交过" in again.text
    events = await Event.filter(action="followup")
    assert len(events) == 1  # the replay added nothing
    assert events[0].at.astimezone(settings.tz).time() == time(0, 0)  # day precision
    empty = await client.post("/track/followup", data={
        "token": form_token(f.text), "receipt": receipt, "body": "  "})
    assert empty.status_code == 422 and "请填写补充说明" in empty.text


@pytest.mark.parametrize(("typed", "message"), [
    ("", "请输入回执码"),
    ("ABCD", "回执码是 16 位（现在 4 位）"),
    ("ABCD-EFGH-JKMN-PQR", "回执码是 16 位（现在 15 位）"),
    ("ABCD-EFGH-JKMN-PQRS", "没有找到"),
    ("A" * 200, "回执码是 16 位（现在 200 位）"),
    ("<script>", "只含数字和字母"),
    ("'; DROP TABLE case; --", "只含数字和字母"),
])
async def test_wrong_receipt_says_what_is_wrong_and_keeps_it(client, typed, message):
    await submit(client)
    r = await track(client, typed)
    assert r.status_code == 422 and message in r.text
    assert "no-store" in r.headers["cache-control"]
    # What was typed stays in the field (escaped), so one wrong character is one fix.
    if typed:
        value = re.search(r'id="receipt"[^>]*value="([^"]*)"', r.text).group(1)
        assert html.unescape(value) == typed[:64]


async def test_receipt_lookup_is_throttled_per_client_key(app, settings):
    import httpx

    from tests.conftest import make_client

    async with make_client(app) as c:
        for _ in range(settings.track_miss_limit):
            assert (await track(c, "0000-0000-0000-0000")).status_code == 422
        limited = await track(c, "0000-0000-0000-0000")
        assert limited.status_code == 429 and "稍后再试" in limited.text
    # Another address has its own budget.
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("198.51.100.9", 1)),
                              base_url="http://testserver")
    async with other:
        assert (await track(other, "0000-0000-0000-0000")).status_code == 422


async def test_client_key_is_hmac_not_address(app):
    throttle = app.state.throttle
    key = await throttle.client_key("203.0.113.7")
    assert "203.0.113.7" not in key and len(key) == 32
    assert key == await throttle.client_key("203.0.113.7")
    assert key != await throttle.client_key("203.0.113.8")


async def test_submissions_allow_a_shift_behind_one_address(app, settings):
    from tests.conftest import make_client

    async with make_client(app) as c:
        for i in range(settings.submit_limit):
            await submit(c, f"同一网络下第 {i} 位工友的意见。")
        page = await c.get("/")
        r = await c.post("/", data={"token": form_token(page.text), "category": "1",
                                    "body": "超过限额的提交。"})
        assert r.status_code == 429
    assert await Case.all().count() == settings.submit_limit


def test_receipt_codes():
    codes = {receipts.new_receipt() for _ in range(2000)}
    assert len(codes) == 2000
    for code in list(codes)[:50]:
        assert receipts.normalise(code.lower().replace("-", " ")) == code.replace("-", "")
    assert len(receipts.ALPHABET) ** receipts.LENGTH >= 2**80
    with pytest.raises(receipts.InvalidReceipt):
        receipts.normalise("UUUU-UUUU-UUUU-UUUU")
    assert receipts.receipt_hash("k1", "ABCD-EFGH-JKMN-PQRS") != receipts.receipt_hash(
        "k2", "ABCD-EFGH-JKMN-PQRS")


async def test_error_pages_are_chinese(client):
    r = await client.get("/no/such/page")
    assert r.status_code == 404 and "找不到这个页面" in r.text
    r = await client.delete("/")
    assert r.status_code == 405 and "不支持" in r.text


async def test_merged_case_track_page_hides_the_other_submitters_words(app):
    """The duplicate's submitter sees the main case's progress, never its submitter's text."""
    from suggestbox.models import StaffUser
    from tests.conftest import act, add_user, login, make_client

    await add_user("lead", "leader")
    async with make_client(app) as a, make_client(app) as b, make_client(app) as lead:
        ra = await submit(a, "二号库房的灭火器过期了。")
        rb = await submit(b, "库房的灭火器早就过期了。")
        page = await track(a, ra)
        await a.post("/track/followup", data={"token": form_token(page.text), "receipt": ra,
                                              "body": "我是三班的老王，早班看到的。"})
        main = await Case.get(body__contains="二号库房")
        dup = await Case.get(body__contains="早就过期")
        csrf = await login(lead, "lead")
        await act(lead, csrf, dup.id, "merge", merge_into=main.number)
        lead_user = await StaffUser.get(username="lead")
        await act(lead, csrf, main.id, "accept", assignee=lead_user.id)
        shown = await track(b, rb)
        assert "已受理" in shown.text and "重复" in shown.text
        assert "老王" not in shown.text
        assert "老王" in (await track(a, ra)).text


async def test_track_form_token_cannot_be_replayed_as_a_submission(client):
    receipt = await submit(client)
    page = await track(client, receipt)
    token = form_token(page.text)
    r = await client.post("/track/followup", data={"token": token, "receipt": receipt,
                                                   "body": "补充一句。"})
    assert r.status_code == 200
    r = await client.post("/", data={"token": token, "category": "1",
                                     "body": "用查询页的令牌提交。"})
    assert r.status_code == 422 and "表单已过期" in r.text
    assert await Case.all().count() == 1
    # ... and a submission form's token is not taken on the tracking page either.
    sub_token = form_token((await client.get("/")).text)
    r = await client.post("/track", data={"token": sub_token, "receipt": receipt})
    assert r.status_code == 403
