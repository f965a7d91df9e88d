"""Issue 18: 落实 (promises, progress, carried out), adoption review and rewards, on both
databases: the rules, hand-computed monthly figures (with someone gaming them), a closed month
printed again, overdue promises, the forms' bad input, and what is stored of the worker."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from suggestbox import cases, followthrough
from suggestbox.cases import DomainError
from suggestbox.models import Case, Category, Event
from suggestbox.months import Month
from tests.conftest import (
    add_user,
    form_token,
    login,
    make_client,
    submit,
    track,
    workshop_today,
)
from tests.test_reports import TZ, World, local, workshop_report

D = date
SUGGESTION = 2  # 建议 (migration 0002), marked for adoption review by 0015
MARCH, APRIL = Month(2026, 3), Month(2026, 4)


async def build_march(w: World) -> None:
    # Carried out before its promise, rewarded, rated after 落实, claimed at the desk.
    await w.new("S1", D(2026, 3, 2), cat=SUGGESTION)
    await w.staff("S1", "accept", local(2026, 3, 2))
    await w.staff("S1", "adopt", local(2026, 3, 3), body="建议可行，采纳。")
    await w.staff("S1", "promise", local(2026, 3, 3), promised_on=D(2026, 3, 20))
    await w.staff("S1", "progress", local(2026, 3, 10), body="材料已到，下周安装。")
    await w.staff("S1", "carry_out", local(2026, 3, 15), body="已安装完毕。",
                  benefit="每班节省 20 分钟。")
    await w.staff("S1", "reward", local(2026, 3, 16), reward_amount=50, reward_unit="yuan")
    await w.staff("S1", "reply", local(2026, 3, 16), body="已落实，谢谢您的建议。")
    await w.submitter("S1", "rate", D(2026, 3, 17), rating="satisfied")
    await w.staff("S1", "reward_claim", local(2026, 3, 18, 15, 47))
    # Gaming: adopted, then un-adopted in the same month: reviewed, not adopted.
    await w.new("S2", D(2026, 3, 4), cat=SUGGESTION)
    await w.staff("S2", "accept", local(2026, 3, 4))
    await w.staff("S2", "adopt", local(2026, 3, 5), body="采纳。")
    await w.staff("S2", "decline", local(2026, 3, 6), body="经核实暂不具备条件。")
    # Partly adopted, rewarded in points; its promise pushed past the month (still counted as
    # due on 25 March and missed), carried out and given to the team fund in April.
    await w.new("S3", D(2026, 3, 5), cat=SUGGESTION)
    await w.staff("S3", "accept", local(2026, 3, 5))
    await w.staff("S3", "adopt_partial", local(2026, 3, 6), body="部分采纳。")
    await w.staff("S3", "reward", local(2026, 3, 7), reward_amount=200, reward_unit="points")
    await w.staff("S3", "promise", local(2026, 3, 8), promised_on=D(2026, 3, 25))
    await w.staff("S3", "promise", local(2026, 3, 24), promised_on=D(2026, 4, 10),
                  body="配件延期到货。")
    # Adopted and rewarded in March; declined in April (the reward is cancelled then).
    await w.new("S4", D(2026, 3, 10), cat=SUGGESTION)
    await w.staff("S4", "accept", local(2026, 3, 10))
    await w.staff("S4", "adopt", local(2026, 3, 11), body="采纳。")
    await w.staff("S4", "reward", local(2026, 3, 12), reward_amount=20, reward_unit="yuan")
    await w.staff("S4", "reward", local(2026, 3, 13), reward_amount=30, reward_unit="yuan")
    # Not reviewed yet.
    await w.new("S5", D(2026, 3, 28), cat=SUGGESTION)
    # Not a suggestion: a promise due on the month's last day, missed; rated after the answer.
    await w.new("C1", D(2026, 3, 3), cat=1)
    await w.staff("C1", "accept", local(2026, 3, 3))
    await w.staff("C1", "reply", local(2026, 3, 5), body="月底前更换。")
    await w.staff("C1", "promise", local(2026, 3, 5), promised_on=D(2026, 3, 31))
    await w.submitter("C1", "rate", D(2026, 3, 6), rating="basic")
    # A promise on a case merged as a duplicate before its date: it lapses (not due, not late).
    await w.new("C2", D(2026, 3, 7), cat=1)
    await w.staff("C2", "accept", local(2026, 3, 7))
    await w.staff("C2", "promise", local(2026, 3, 8), promised_on=D(2026, 3, 27))
    await w.staff("C2", "merge", local(2026, 3, 20), merge_into=w.ids["C1"].hex[:8].upper())


async def build_april(w: World) -> None:
    await w.staff("S3", "carry_out", local(2026, 4, 5), body="已完成改造。")
    await w.submitter("S3", "reward_donate", D(2026, 4, 6))
    await w.staff("S4", "decline", local(2026, 4, 8), body="复核后暂不采纳。")
    await w.new("S6", D(2026, 4, 9), cat=SUGGESTION)


MARCH_FOLLOW = {
    "suggestions": 5, "reviewed": 4, "adopted": 3, "carried_out": 1, "promises_overdue": 1,
    "rewards_given": 3, "reward_yuan_given": 80, "reward_points_given": 200,
    "rewards_claimed": 1, "reward_yuan_claimed": 50, "reward_points_claimed": 0,
    "rewards_team_fund": 0,
}
APRIL_FOLLOW = {
    "suggestions": 1, "reviewed": 1, "adopted": 0, "carried_out": 1, "promises_overdue": 1,
    "rewards_given": 0, "reward_yuan_given": 0, "reward_points_given": 0,
    "rewards_claimed": 0, "reward_yuan_claimed": 0, "reward_points_claimed": 0,
    "rewards_team_fund": 1,
}


def follow(r: Any) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    totals = {k: r.figures.totals[k] for k in MARCH_FOLLOW}
    rates = {k: (r.figures.rates[k].num, r.figures.rates[k].den)
             for k in ("adoption", "carried_out")}
    return totals, rates


async def test_hand_computed_figures_and_a_closed_month_printed_again(app):
    w = World(await add_user("lead", "leader"))
    await build_march(w)
    early = await workshop_report(MARCH, tz=TZ, now=local(2026, 4, 1, 9))
    totals, rates = follow(early)
    assert totals == MARCH_FOLLOW
    # Reviewed S1 S2 S3 S4, adopted S1 S3 S4 (S2 adopted then declined: not counted).
    # Promises due in March: S1 (20th, carried out 15th), S3 (25th, pushed), C1 (31st).
    assert rates == {"adoption": (3, 4), "carried_out": (1, 3)}
    assert early.figures.rates["adoption"].display == "75.0%"
    await build_april(w)
    later = await workshop_report(MARCH, tz=TZ, now=local(2026, 5, 3, 9))
    assert follow(later) == (MARCH_FOLLOW, rates)  # S4's decline in April changes nothing
    april = await workshop_report(APRIL, tz=TZ, now=local(2026, 5, 3, 9))
    assert follow(april) == (APRIL_FOLLOW, {"adoption": (0, 1), "carried_out": (1, 1)})
    # The definitions are printed with the figures.
    assert "最后一次评审" in april.definitions["rate.adoption"]
    assert "往后改" in april.definitions["rate.carried_out"]
    assert set(MARCH_FOLLOW) <= {k.removeprefix("total.") for k in april.definitions}


async def test_rules_refuse_what_would_game_the_figures(app):
    w = World(await add_user("lead", "leader"))
    await build_march(w)
    ids = w.ids

    async def refused(name: str, action: str, actor: Any, at: datetime, **kw: Any) -> str:
        before = await Event.filter(case_id=ids[name]).count()
        with pytest.raises(DomainError) as e:
            await cases.apply(ids[name], action, actor, now=at, tz=TZ, **kw)
        assert await Event.filter(case_id=ids[name]).count() == before
        return e.value.message

    lead, t = w.leader, local(2026, 3, 31)
    # Rating twice (once after the answer, again after 落实) is refused.
    assert "已经评价过" in await refused("S1", "rate", None, t, rating="satisfied")
    assert "已经评价过" in await refused("C1", "rate", None, t, rating="basic")
    # Not a suggestion: no review. A declined one is not carried out, nor rewarded.
    assert "不做采纳评审" in await refused("C1", "adopt", lead, t, body="采纳")
    assert "暂不采纳的建议不落实" in await refused("S2", "carry_out", lead, t, body="做了")
    assert "不能执行“落实”" in await refused("S5", "carry_out", lead, t, body="做了")
    assert "只有采纳" in await refused("S2", "reward", lead, t, reward_amount=5,
                                      reward_unit="yuan")
    # Carried out, claimed: no un-adopting, no second 落实, no new promise, no second claim.
    assert "不能改为暂不采纳" in await refused("S1", "decline", lead, t, body="撤回")
    assert "已经落实" in await refused("S1", "carry_out", lead, t, body="再落实一次")
    assert "已经落实" in await refused("S1", "promise", lead, t, promised_on=D(2026, 4, 9))
    assert "已领取" in await refused("S1", "reward_claim", lead, t)
    assert "不能再改" in await refused("S1", "reward", lead, t, reward_amount=500,
                                    reward_unit="yuan")
    # A promise in the past; a reward without a unit or out of range.
    assert "不能早于今天" in await refused("C1", "promise", lead, t, promised_on=D(2026, 3, 30))
    assert "没有变化" in await refused("S3", "promise", lead, t, promised_on=D(2026, 4, 10))
    assert "单位" in await refused("S3", "reward", lead, t, reward_amount=5, reward_unit="kg")
    assert "整数" in await refused("S3", "reward", lead, t, reward_amount=0, reward_unit="yuan")
    # C1 has an open promise: it is not closed before 落实.
    assert "落实后才能办结" in await refused("C1", "close", lead, local(2026, 4, 20))
    # The ratings say what they were of.
    s1 = [e.body for e in await Event.filter(case_id=ids["S1"], action="rate")]
    c1 = [e.body for e in await Event.filter(case_id=ids["C1"], action="rate")]
    assert s1 == ["满意（落实后评价）"] and c1 == ["基本满意（答复后评价）"]


async def test_declining_cancels_an_unclaimed_reward_and_claims_keep_the_day_only(app):
    w = World(await add_user("lead", "leader"))
    await build_march(w)
    await build_april(w)
    s4 = await Case.get(id=w.ids["S4"])
    assert (s4.adoption, s4.reward_state, s4.reward_amount) == ("decline", None, None)
    s1 = await Case.get(id=w.ids["S1"])
    assert (s1.reward_state, s1.reward_settled_on) == ("claimed", D(2026, 3, 18))
    claim = await Event.get(case_id=s1.id, action="reward_claim")
    # Recorded by a staff member at 15:47, stored at local midnight: when the worker came.
    assert claim.at.astimezone(TZ) == datetime(2026, 3, 18, tzinfo=TZ)
    assert claim.public and claim.body == "奖励 50 元 已领取"
    s3 = await Case.get(id=w.ids["S3"])
    assert (s3.reward_state, s3.reward_settled_on) == ("team_fund", D(2026, 4, 6))
    donate = await Event.get(case_id=s3.id, action="reward_donate")
    assert donate.by_submitter and donate.actor_id is None  # type: ignore[attr-defined]
    assert donate.at.astimezone(TZ) == datetime(2026, 4, 6, tzinfo=TZ)


async def test_overdue_promises(app):
    w = World(await add_user("lead", "leader"))
    await build_march(w)
    c1 = w.ids["C1"]
    assert [c.id for c in await followthrough.overdue_promises(D(2026, 3, 31))] == []
    assert [c.id for c in await followthrough.overdue_promises(D(2026, 4, 1))] == [c1]
    # S3's pushed promise (10 April) is overdue from the 11th until it is carried out.
    late = {c.id for c in await followthrough.overdue_promises(D(2026, 4, 11))}
    assert late == {c1, w.ids["S3"]}
    await build_april(w)
    assert [c.id for c in await followthrough.overdue_promises(D(2026, 4, 11))] == [c1]
    case = await Case.get(id=c1)
    assert followthrough.promise_overdue(case, D(2026, 4, 1))
    assert not followthrough.promise_overdue(case, D(2026, 3, 31))


async def test_adoption_flag_is_fixed_when_the_case_arrives(app):
    cat = await Category.get(id=1)
    w = World(await add_user("lead", "leader"))
    await w.new("before", D(2026, 3, 1), cat=1)
    cat.adoption_review = True
    await cat.save()
    await w.new("after", D(2026, 3, 2), cat=1)
    before, after = (await Case.get(id=w.ids["before"]), await Case.get(id=w.ids["after"]))
    assert (before.adoption_review, after.adoption_review) == (False, True)
    assert (await Category.get(id=SUGGESTION)).adoption_review


# ---- the forms over HTTP: bad input, error paths, anonymity -----------------------------------

async def _setup_case(client: Any) -> tuple[str, Any, str]:
    """A 建议 submitted through the form, accepted and adopted; (receipt, case, leader CSRF)."""
    receipt = await submit(client, body="建议在检修库加装一台除湿机。", category=SUGGESTION)
    case = await Case.filter(body__contains="除湿机").first()
    assert case is not None
    await add_user("lead", "leader")
    csrf = await login(client, "lead")
    now = datetime.now(UTC)
    lead = await _user("lead")
    await cases.apply(case.id, "accept", lead, now=now, tz=TZ, assignee_id=lead.id)
    await cases.apply(case.id, "adopt", lead, now=now, tz=TZ, body="采纳，年内实施。")
    await case.refresh_from_db()
    return receipt, case, csrf


async def _user(name: str) -> Any:
    from suggestbox.models import StaffUser

    return await StaffUser.get(username=name)


def _unchanged(before: Case, after: Case) -> None:
    for name in ("promised_on", "carried_out_at", "benefit", "reward_amount", "reward_unit",
                 "reward_state", "adoption"):
        assert getattr(before, name) == getattr(after, name), name


async def test_staff_forms_bad_input(client):
    receipt, case, csrf = await _setup_case(client)
    url = f"/staff/cases/{case.id}/act"
    before_events = await Event.filter(case_id=case.id).count()
    bad = [
        ({"action": "promise", "promised_on": "2026-13-01"}, 422, "格式不对"),
        ({"action": "promise", "promised_on": "明天"}, 422, "格式不对"),
        ({"action": "promise", "promised_on": ""}, 422, "请填写承诺完成日期"),
        ({"action": "promise", "promised_on": "2020-01-01"}, 422, "不能早于今天"),
        ({"action": "promise", "promised_on": "2026-12-01\x00"}, 400, "空字符"),
        ({"action": "reward", "reward_amount": "１２", "reward_unit": "yuan"}, 422, "整数"),
        ({"action": "reward", "reward_amount": "-5", "reward_unit": "yuan"}, 422, "整数"),
        ({"action": "reward", "reward_amount": "9" * 30, "reward_unit": "yuan"}, 422, "整数"),
        ({"action": "reward", "reward_amount": "50", "reward_unit": "gold"}, 422, "单位"),
        ({"action": "reward", "reward_amount": "50\x00", "reward_unit": "yuan"}, 400, "空字符"),
        ({"action": "carry_out", "body": ""}, 422, "落实了什么"),
        ({"action": "carry_out", "body": "装好了", "benefit": "x" * 3000}, 422, "太长"),
        ({"action": "progress", "body": "\u200b\u200b"}, 422, "请填写"),
        ({"action": "adopt_partial", "body": ""}, 422, "理由"),
        ({"action": "adopt", "body": "又采纳一次"}, 422, "已经是"),
        ({"action": "decline", "body": "坏\x00字"}, 400, "空字符"),
    ]
    for data, status, text in bad:
        r = await client.post(url, data={"csrf": csrf, **data})
        assert r.status_code == status, (data, r.status_code)
        assert text in r.text, (data, r.text[:500])
        assert "Traceback" not in r.text
    # Invalid UTF-8, percent-encoded and raw.
    for content in (f"csrf={csrf}&action=progress&body=%FF%FE%E4%B8".encode(),
                    f"csrf={csrf}&action=progress&body=".encode() + b"\xff\xfe\xe4\xb8"):
        r = await client.post(url, content=content,
                              headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 400 and "编码" in r.text
    # The 落实 form (multipart, with photos): NUL and bad bytes in a field, a file that is not
    # a photo, an empty text.
    carry = f"/staff/cases/{case.id}/carry_out"
    for body_bytes, status, text in ((b"\xff\xfe\xe4\xb8", 400, "编码"),
                                     ("含\x00空字符".encode(), 400, "空字符")):
        parts = [(b"csrf", csrf.encode()), (b"body", body_bytes)]
        content = b"".join(
            b'--BB\r\nContent-Disposition: form-data; name="' + n + b'"\r\n\r\n' + v + b"\r\n"
            for n, v in parts) + b"--BB--\r\n"
        r = await client.post(carry, content=content,
                              headers={"content-type": "multipart/form-data; boundary=BB"})
        assert r.status_code == status and text in r.text, r.text[:300]
    r = await client.post(carry, data={"csrf": csrf, "body": "装好了"},
                          files={"photos": ("a.jpg", b"not a photo" * 10, "image/jpeg")})
    assert r.status_code == 422 and "照片" in r.text and "装好了" in r.text
    r = await client.post(carry, data={"csrf": csrf, "body": ""})
    assert r.status_code == 422 and "落实了什么" in r.text
    assert await Event.filter(case_id=case.id).count() == before_events
    _unchanged(case, await Case.get(id=case.id))
    # A refused form keeps what was typed: the date, amount and unit, the chosen decision.
    r = await client.post(url, data={"csrf": csrf, "action": "reward", "reward_amount": "abc",
                                     "reward_unit": "points", "body": "按办法第三条"})
    assert r.status_code == 422
    assert 'value="abc"' in r.text and '<option value="points" selected>' in r.text
    assert "按办法第三条" in r.text
    r = await client.post(url, data={"csrf": csrf, "action": "adopt_partial", "body": ""})
    assert re.search(r'value="adopt_partial" required checked', r.text)
    assert 'value="adopt" required checked' not in r.text


async def test_worker_and_desk_forms_bad_input_and_what_is_stored(app, client):
    receipt, case, csrf = await _setup_case(client)
    lead = await _user("lead")
    await cases.apply(case.id, "reward", lead, now=datetime.now(UTC), tz=TZ,
                      reward_amount=100, reward_unit="yuan")
    # The desk: NUL, invalid UTF-8, a wrong code, a missing confirmation; nothing changes.
    desk = await client.get("/staff/rewards")
    assert desk.status_code == 200 and "不保存姓名" in desk.text
    for data, status, text in [
        ({"step": "find", "receipt": "\x00" * 16}, 400, "空字符"),
        ({"step": "find", "receipt": ""}, 422, "请输入回执码"),
        ({"step": "find", "receipt": "ABCD-EFGH-JKMN-PQRS"}, 422, "没有找到"),
        ({"step": "find", "receipt": "not a code at all"}, 422, "没有找到"),
        ({"step": "confirm", "receipt": receipt}, 422, "请勾选确认"),
    ]:
        r = await client.post("/staff/rewards", data={"csrf": csrf, **data})
        assert (r.status_code, text in r.text) == (status, True), (data, r.text[:300])
    r = await client.post("/staff/rewards", content=(
        f"csrf={csrf}&step=find&receipt=".encode() + b"\xff\xfe"),
        headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    assert (await Case.get(id=case.id)).reward_state == "offered"
    # The worker's page: the warning, the team fund; a missing tick and bad bytes are refused.
    page = await track(client, receipt)
    assert "工作人员会看到您本人" in page.text and "捐入班组基金" in page.text
    token = form_token(page.text)
    async with make_client(app) as worker:
        r = await worker.post("/track/reward_donate", data={"token": token, "receipt": receipt})
        assert r.status_code == 422 and "请勾选确认" in r.text
        r = await worker.post("/track/reward_donate", data={
            "token": token, "receipt": receipt, "confirm": "1\x00"})
        assert r.status_code == 400
        assert (await Case.get(id=case.id)).reward_state == "offered"
        # The desk confirms it; the worker's page then says so and offers nothing more.
        found = await client.post("/staff/rewards", data={"csrf": csrf, "step": "find",
                                                          "receipt": receipt})
        assert found.status_code == 200 and "100 元" in found.text
        done = await client.post("/staff/rewards", data={
            "csrf": csrf, "step": "confirm", "receipt": receipt, "handed": "1"})
        assert done.status_code == 303
        again = await client.post("/staff/rewards", data={
            "csrf": csrf, "step": "confirm", "receipt": receipt, "handed": "1"})
        assert again.status_code == 422 and "已领取" in again.text
        after = await track(worker, receipt)
        assert "已领取" in after.text and "捐入班组基金</button>" not in after.text
        r = await worker.post("/track/reward_donate", data={
            "token": form_token(after.text), "receipt": receipt, "confirm": "1"})
        assert r.status_code == 422 and "已领取" in r.text
    stored = await Case.get(id=case.id)
    assert (stored.reward_state, stored.reward_settled_on) == ("claimed", workshop_today())
    claim = await Event.get(case_id=case.id, action="reward_claim")
    assert claim.at.astimezone(TZ).time() == datetime.min.time()  # the day only
    # No receipt and no name in anything stored about the claim.
    for text in (claim.body, claim.detail, stored.benefit):
        assert receipt not in (text or "")


async def test_migration_marks_suggestions(app):
    assert [c.name for c in await Category.filter(adoption_review=True)] == ["建议"]
    case = await Case.create(id=uuid.uuid4(), receipt_hash="h" * 64, category_id=SUGGESTION,
                             body="x", status="new", received_on=workshop_today())
    assert case.adoption_review


async def test_board_shows_adopted_and_carried_out(client):
    receipt, case, csrf = await _setup_case(client)
    lead = await _user("lead")
    now = datetime.now(UTC)
    await cases.apply(case.id, "publish", lead, now=now, tz=TZ, summary="检修库加装除湿机",
                      show_reply=True)
    await cases.apply(case.id, "promise", lead, now=now, tz=TZ,
                      promised_on=workshop_today() + timedelta(days=5))
    await cases.apply(case.id, "progress", lead, now=now, tz=TZ, body="设备已到货。")
    item = await client.get(f"/board/{case.id}")
    assert item.status_code == 200
    assert re.search(r"data-badge>已采纳<", item.text)
    assert "设备已到货" in item.text and "前完成" in item.text
    listing = await client.get("/board")
    assert "已采纳" in listing.text and "设备已到货" in listing.text
    await cases.apply(case.id, "carry_out", lead, now=now, tz=TZ, body="除湿机已投用。")
    item = await client.get(f"/board/{case.id}")
    assert re.search(r"data-badge>已落实<", item.text) and "除湿机已投用" in item.text
    assert "data-promise" not in item.text  # the promise is kept: no longer shown as pending
    assert "已落实" in (await client.get("/board")).text  # the list's version changed
    # Without the reply shown, the notes stay off the board; the badge stays.
    await cases.apply(case.id, "publish", lead, now=now, tz=TZ, summary="检修库加装除湿机",
                      show_reply=False)
    item = await client.get(f"/board/{case.id}")
    assert "已落实" in item.text and "除湿机已投用" not in item.text
    # Not a suggestion: no badge, whatever happens.
    other = await Case.get(id=case.id)
    assert followthrough.board_badge(other) == "已落实"
    other.adoption = "decline"
    assert followthrough.board_badge(other) == ""


async def test_exports_carry_the_new_figures(app):
    import io

    from openpyxl import load_workbook

    from suggestbox import xlsx
    from suggestbox.report_export import figures_csv, figures_rows

    w = World(await add_user("lead", "leader"))
    await build_march(w)
    r = await workshop_report(MARCH, tz=TZ, now=local(2026, 4, 1, 9))
    rows = {(row[0], row[2], row[3]): row for row in figures_rows(r)[1:]}
    assert rows[("总量", "建议数", "件数")][4] == 5
    assert rows[("总量", "奖励金额（元）", "金额（元）")][4] == 80
    assert rows[("总量", "奖励积分", "积分")][4] == 200
    assert rows[("总量", "月末逾期承诺", "件数")][4] == 1
    adoption = rows[("比率", "采纳率", "百分比")]
    assert (adoption[4], adoption[7], adoption[8]) == (75.0, 3, 4)
    carried = rows[("比率", "落实率", "百分比")]
    assert (carried[4], carried[7], carried[8]) == (33.3, 1, 3)
    assert "往后改" in carried[9]
    text = figures_csv(r).decode("utf-8-sig")
    assert "比率,2026-03,采纳率,百分比,75.0," in text
    book = load_workbook(io.BytesIO(xlsx.workbook([("数字", figures_rows(r))])))
    got = next(row for row in book["数字"].iter_rows(values_only=True) if row[2] == "采纳率")
    assert (got[4], got[7], got[8]) == (75.0, 3, 4)


async def test_queue_and_case_page_show_overdue_promises(client):
    receipt, case, csrf = await _setup_case(client)
    # A promise made a week ago for yesterday (set directly: the form refuses past days).
    await Case.filter(id=case.id).update(promised_on=workshop_today() - timedelta(days=1))
    queue = await client.get("/staff/cases")
    assert "承诺逾期未落实 1 件" in queue.text and case.number in queue.text
    page = await client.get(f"/staff/cases/{case.id}")
    assert "承诺逾期" in page.text
    tracked = await track(client, receipt)
    assert "已过承诺日期，尚未落实" in tracked.text
    # A new promise through the action (an event: the queue's kept lists are read again).
    lead = await _user("lead")
    await cases.apply(case.id, "promise", lead, now=datetime.now(UTC), tz=TZ,
                      promised_on=workshop_today())
    assert "承诺逾期" not in (await client.get("/staff/cases")).text


async def test_the_union_desk_confirms_a_workshop_case_it_cannot_otherwise_see(app, client):
    from suggestbox import auth, depot

    receipt, case, csrf = await _setup_case(client)
    lead = await _user("lead")
    await cases.apply(case.id, "reward", lead, now=datetime.now(UTC), tz=TZ,
                      reward_amount=30, reward_unit="yuan")
    union = await depot.add_unit("gonghui", "段工会", depot.DESK)
    await auth.add_user("desk", "leader", "correct-horse-9", "工会干事", unit=union)
    async with make_client(app) as desk:
        desk_csrf = await login(desk, "desk")
        # The case itself stays out of the desk's sight.
        assert (await desk.get(f"/staff/cases/{case.id}")).status_code == 404
        found = await desk.post("/staff/rewards", data={"csrf": desk_csrf, "step": "find",
                                                        "receipt": receipt})
        assert found.status_code == 200 and "30 元" in found.text
        assert "除湿机" not in found.text  # never the text
        done = await desk.post("/staff/rewards", data={
            "csrf": desk_csrf, "step": "confirm", "receipt": receipt, "handed": "1"})
        assert done.status_code == 303
    assert (await Case.get(id=case.id)).reward_state == "claimed"
    # A handler cannot confirm claims.
    await add_user("fixer", "handler")
    async with make_client(app) as fixer:
        await login(fixer, "fixer")
        assert (await fixer.get("/staff/rewards")).status_code == 403
