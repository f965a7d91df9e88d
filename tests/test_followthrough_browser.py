"""Issue 18 in Chromium: a worker's 建议 is adopted with a reward, carried out with progress
notes the worker sees on a phone, marked 落实; the worker rates it; the desk confirms the claim
with the receipt; the month's report shows the adoption and the reward. Every form is first
submitted wrong, its choices checked after the re-render, then submitted right."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import LiveServer
from tests.test_browser import LAPTOP, PHONE, Watched, add_staff, staff_login
from tests.test_photo_upload import jpeg
from tests.test_worker_path_browser import db_rows, open_case, phone_submit, phone_track


def _today() -> Any:
    # The live server's clock is the machine's, in the workshop's zone.
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def _submit_form(w: Watched, selector: str) -> None:
    with w.page.expect_navigation():
        w.page.locator(selector).locator("button[type=submit]").click()


def _ok(w: Watched) -> None:
    assert w.page.locator(".alert[role=alert]").count() == 0, w.page.inner_text("main")


def test_suggestion_adopted_rewarded_carried_out_rated_and_claimed(
        browser: Any, live_server: LiveServer, tmp_path: Path) -> None:
    server = live_server
    photo, fake = tmp_path / "IMG_2001.jpg", tmp_path / "notes.jpg"
    photo.write_bytes(jpeg("green", (1200, 900)))
    fake.write_bytes(b"not a photo at all" * 20)
    add_staff(server, "lead", "leader", "王主任")
    phone = Watched(browser, server, **PHONE)
    laptop = Watched(browser, server, **LAPTOP)
    try:
        receipt = phone_submit(phone, "建议在检修库门口加装风幕机，冬天库里太冷。",
                               category="建议")
        staff_login(laptop, "lead")
        url = open_case(laptop, "风幕机")
        p = laptop.page
        p.locator("form.action-accept select[name=assignee]").select_option(
            label="王主任（领导）")
        _submit_form(laptop, "form.action-accept")
        _ok(laptop)

        # Adoption review: no reason → refused, the decision survives; then with a reason.
        p.locator("form.action-review input[value=adopt_partial]").check()
        p.locator("form.action-review textarea[name=body]").fill("")
        p.locator("form.action-review textarea[name=body]").evaluate(
            "e => e.removeAttribute('required')")
        _submit_form(laptop, "form.action-review")
        assert "请写明采纳评审的理由" in p.inner_text("form.action-review")
        checked = p.locator("form.action-review input[name=action]:checked")
        assert checked.get_attribute("value") == "adopt_partial"
        laptop.shot("i18-review-error")
        p.locator("form.action-review input[value=adopt]").check()
        p.locator("form.action-review textarea[name=body]").fill("建议可行，采纳，本月安装。")
        _submit_form(laptop, "form.action-review")
        _ok(laptop)
        assert "采纳" in p.inner_text("[data-adoption]")

        # Reward: a wrong amount → refused, amount, unit and note kept; then right.
        form = "form.action-reward"
        p.fill(f"{form} input[name=reward_amount]", "五十")
        p.locator(f"{form} select[name=reward_unit]").select_option("yuan")
        p.fill(f"{form} textarea[name=body]", "按车间合理化建议奖励办法")
        _submit_form(laptop, form)
        assert "奖励数额请填整数" in p.inner_text(form)
        assert p.input_value(f"{form} input[name=reward_amount]") == "五十"
        assert p.input_value(f"{form} select[name=reward_unit]") == "yuan"
        assert p.input_value(f"{form} textarea[name=body]") == "按车间合理化建议奖励办法"
        p.fill(f"{form} input[name=reward_amount]", "50")
        _submit_form(laptop, form)
        _ok(laptop)

        # Promise: a day in the past → refused, then a week ahead.
        form = "form.action-promise"
        past = (_today() - timedelta(days=1)).isoformat()
        p.locator(f"{form} input[name=promised_on]").evaluate(
            f"e => {{ e.removeAttribute('min'); e.value = '{past}'; }}")
        _submit_form(laptop, form)
        assert "不能早于今天" in p.inner_text(form)
        promised = (_today() + timedelta(days=7)).isoformat()
        p.fill(f"{form} input[name=promised_on]", promised)
        _submit_form(laptop, form)
        _ok(laptop)

        # Progress notes: empty → refused; then a note.
        form = "form.action-progress"
        p.locator(f"{form} textarea[name=body]").evaluate("e => e.removeAttribute('required')")
        _submit_form(laptop, form)
        assert "请填写整改进度" in p.inner_text(form)
        p.fill(f"{form} textarea[name=body]", "风幕机已订货，预计三天后到。")
        _submit_form(laptop, form)
        _ok(laptop)

        # The worker sees the adoption, the promise and the progress on the phone.
        phone_track(phone, receipt)
        ph = phone.page
        facts = ph.inner_text(".facts")
        assert "采纳" in facts and promised in facts and "50 元" in facts
        timeline = ph.inner_text(".timeline")
        assert "采纳：建议可行" in timeline and "风幕机已订货" in timeline
        assert "工作人员会看到您本人" in ph.inner_text("#reward")
        phone.shot("i18-track-progress")

        # 落实 with its benefit and a photo: a file that is not a photo first, then a too-long
        # benefit (each refused, the text kept), then right.
        p.goto(url)
        form = "form.action-carry_out"
        p.fill(f"{form} textarea[name=body]", "风幕机已安装并试运行。")
        p.fill(f"{form} textarea[name=benefit]", "库内温度提高约 5 度。")
        p.set_input_files(f"{form} #photos", [str(fake)])
        _submit_form(laptop, form)
        assert "照片" in p.inner_text(f"{form} #photos-error")
        assert p.input_value(f"{form} textarea[name=body]") == "风幕机已安装并试运行。"
        assert p.input_value(f"{form} textarea[name=benefit]") == "库内温度提高约 5 度。"
        p.fill(f"{form} textarea[name=benefit]", "暖" * 2001)
        p.set_input_files(f"{form} #photos", [str(photo)])
        _submit_form(laptop, form)
        assert "效益太长了" in p.inner_text(form)
        assert p.input_value(f"{form} textarea[name=body]") == "风幕机已安装并试运行。"
        p.fill(f"{form} textarea[name=benefit]", "库内温度提高约 5 度。")
        p.set_input_files(f"{form} #photos", [str(photo)])
        _submit_form(laptop, form)
        _ok(laptop)
        assert "已落实" in p.inner_text("[data-carried-out]")
        assert p.locator(".timeline li:has-text('风幕机已安装') img.thumb").count() == 1
        p.fill("form.action-reply textarea[name=body]", "已安装风幕机，感谢您的建议。")
        _submit_form(laptop, "form.action-reply")
        _ok(laptop)
        laptop.shot("i18-case-page")

        # The worker rates it (no choice first: refused), after 落实, and the page says so.
        phone_track(phone, receipt)
        assert "已落实" in ph.inner_text("[data-carried-out]")
        assert ph.locator("img[alt='落实的照片']").count() == 1
        assert "落实后评价" in ph.inner_text("#rate-when")
        ph.locator("form[action='/track/rate'] button[type=submit]").click()
        ph.wait_for_selector("p.error")
        assert "请选择评价" in ph.inner_text("main")
        ph.locator("form[action='/track/rate'] input[value=satisfied]").check()
        ph.locator("form[action='/track/rate'] button[type=submit]").click()
        ph.wait_for_selector("[role=status]")
        assert "满意（落实后评价）" in ph.inner_text(".timeline")
        phone.shot("i18-track-rated")

        # The desk: a wrong code, then the right one; no tick, then the tick.
        p.goto("/staff/rewards")
        p.fill("#receipt", "ABCD-EFGH-JKMN-PQRS")
        _submit_form(laptop, "form:has(#receipt)")
        assert "没有找到" in p.inner_text("#desk-error")
        assert p.input_value("#receipt") == "ABCD-EFGH-JKMN-PQRS"
        p.fill("#receipt", receipt.lower().replace("-", ""))
        _submit_form(laptop, "form:has(#receipt)")
        assert "50 元" in p.inner_text("#found")
        laptop.shot("i18-desk-found")
        _submit_form(laptop, "#found form")
        assert "请勾选确认" in p.inner_text("#desk-error")
        p.locator("#found input[name=handed]").check()
        _submit_form(laptop, "#found form")
        assert "已领取" in p.inner_text("#claimed")
        laptop.shot("i18-desk-done")
        phone_track(phone, receipt)
        assert "已领取" in ph.inner_text("[data-reward]")
        assert ph.locator("form[action='/track/reward_donate']").count() == 0

        # The month's report: the adoption and the reward.
        month = _today().strftime("%Y-%m")
        p.goto(f"/staff/reports/{month}")
        fig = {name: p.inner_text(f"[data-figure='{name}']") for name in (
            "total.suggestions", "total.reviewed", "total.adopted", "total.carried_out",
            "total.rewards_given", "total.reward_yuan_given", "total.rewards_claimed",
            "total.reward_yuan_claimed", "rate.adoption", "rate.carried_out")}
        assert fig == {"total.suggestions": "1", "total.reviewed": "1", "total.adopted": "1",
                       "total.carried_out": "1", "total.rewards_given": "1",
                       "total.reward_yuan_given": "50", "total.rewards_claimed": "1",
                       "total.reward_yuan_claimed": "50", "rate.adoption": "100.0%",
                       # The promise is due next week: none due yet this month... unless
                       # next week is still this month.
                       "rate.carried_out": fig["rate.carried_out"]}
        assert fig["rate.carried_out"] in ("—", "100.0%")
        laptop.shot("i18-report")

        # What is stored of the worker: days only, no name, no receipt.
        rows = db_rows(server, "SELECT action, at FROM event WHERE by_submitter = 1 "
                               "OR action = 'reward_claim'")
        for action, at in rows:
            assert re.search(r"(T| )00:00:00", str(at)) or str(at).endswith("16:00:00+00:00"), (
                action, at)
        stored = db_rows(server, "SELECT reward_state, reward_settled_on FROM \"case\"")
        assert stored == [("claimed", _today().isoformat())]
        for w in (phone, laptop):
            w.check_clean()
    finally:
        phone.close()
        laptop.close()


def test_worker_gives_the_reward_to_the_team_fund(browser: Any, live_server: LiveServer) -> None:
    server = live_server
    add_staff(server, "lead", "leader", "王主任")
    phone = Watched(browser, server, **PHONE)
    laptop = Watched(browser, server, **LAPTOP)
    try:
        receipt = phone_submit(phone, "建议工具室按班组分格，领用更快。", category="建议")
        staff_login(laptop, "lead")
        open_case(laptop, "工具室")
        p = laptop.page
        p.locator("form.action-accept select[name=assignee]").select_option(
            label="王主任（领导）")
        _submit_form(laptop, "form.action-accept")
        p.locator("form.action-review input[value=adopt]").check()
        p.fill("form.action-review textarea[name=body]", "采纳。")
        _submit_form(laptop, "form.action-review")
        p.fill("form.action-reward input[name=reward_amount]", "20")
        p.locator("form.action-reward select[name=reward_unit]").select_option("points")
        _submit_form(laptop, "form.action-reward")
        _ok(laptop)

        phone_track(phone, receipt)
        ph = phone.page
        donate = "form[action='/track/reward_donate']"
        ph.locator(f"{donate} button[type=submit]").click()  # no tick: refused
        ph.wait_for_selector("#reward p.error")
        assert "请勾选确认" in ph.inner_text("#reward")
        phone.shot("i18-donate-error")
        ph.locator(f"{donate} input[name=confirm]").check()
        ph.locator(f"{donate} button[type=submit]").click()
        ph.wait_for_selector("[role=status]")
        assert "捐入班组基金" in ph.inner_text("[role=status]")
        assert "已捐入班组基金" in ph.inner_text("[data-reward]")
        phone.shot("i18-donated")
        # The desk cannot hand it out any more.
        p.goto("/staff/rewards")
        p.fill("#receipt", receipt)
        _submit_form(laptop, "form:has(#receipt)")
        assert "已捐入班组基金" in p.inner_text("#found")
        assert p.locator("#found form").count() == 0
        assert db_rows(server, "SELECT reward_state FROM \"case\"") == [("team_fund",)]
        for w in (phone, laptop):
            w.check_clean()
    finally:
        phone.close()
        laptop.close()


def test_admin_marks_a_category_for_adoption_review(browser: Any, live_server: LiveServer) -> None:
    server = live_server
    add_staff(server, "boss", "admin", "赵段长")
    w = Watched(browser, server, **LAPTOP)
    try:
        staff_login(w, "boss")
        p = w.page
        p.goto("/admin#categories")
        assert "只对此后收到的事项生效" in p.inner_text("#adoption-review-hint")
        # 建议 is marked by the migration; 意见 is not.
        row = p.locator("table.admin-table tr", has=p.locator("input[name=name][value=建议]"))
        assert row.locator("[name=adoption_review]").is_checked()
        # A new category, marked, with a wrong deadline: refused, the tick survives.
        add = p.locator("#category-add")
        add.locator("[name=name]").fill("合理化建议")
        add.locator("[name=deadline_days]").fill("十")
        add.locator("[name=adoption_review]").check()
        add.locator("button").click()
        p.wait_for_load_state()
        add = p.locator("#category-add")
        assert "整数" in p.inner_text("#category-add .form-error")
        assert add.locator("[name=adoption_review]").is_checked()
        w.shot("i18-admin-category-error")
        add.locator("[name=deadline_days]").fill("10")
        add.locator("button").click()
        p.wait_for_url(re.compile(r"/admin\?ok=category_added#categories$"))
        # Marking 意见 in its row: an empty name first (refused, tick kept), then right.
        row = p.locator("table.admin-table tr", has=p.locator("input[name=name][value=意见]"))
        row.locator("[name=adoption_review]").check()
        row.locator("[name=name]").fill("")
        row.locator("button").click()
        p.wait_for_load_state()
        form_id = p.locator(".form-error").get_attribute("id") or ""
        f = form_id.removesuffix("-error")
        assert p.locator(f"[form={f}][name=adoption_review]").is_checked()
        p.locator(f"[form={f}][name=name]").fill("意见")
        with p.expect_navigation():
            p.locator(f"#{f} button").click()
        assert "已保存类别" in p.inner_text("main")
        marked = db_rows(server, "SELECT name FROM category WHERE adoption_review = 1 "
                                 "ORDER BY name")
        assert sorted(n for (n,) in marked) == sorted(["建议", "合理化建议", "意见"])

        # Where rewards are claimed: too long first (refused, everything kept), then right.
        p.goto("/admin/org")
        p.fill("#org-name", "某某供电段")
        p.fill("#org-reward-desk", "段工会办公室" * 12)
        with p.expect_navigation():
            p.click("form[action='/admin/org'] button[type=submit]")
        assert "领取地点最多" in p.inner_text("#reward-desk-error")
        assert p.input_value("#org-name") == "某某供电段"
        assert p.input_value("#org-reward-desk") == "段工会办公室" * 12
        w.shot("i18-org-desk-error")
        p.fill("#org-reward-desk", "段工会办公室（周一至周五 9:00–11:00）")
        with p.expect_navigation():
            p.click("form[action='/admin/org'] button[type=submit]")
        assert "已保存" in p.inner_text("main")
        p.goto("/staff/rewards")
        assert "段工会办公室（周一至周五 9:00–11:00）" in p.inner_text("main")
        w.check_clean()
    finally:
        w.close()
