"""Issue 11, items 1–6: the worker's path in Chromium, literally, error path included.

Each test does what a person does (taps, types, reloads, goes back) and then checks what the
other side recorded: the database file of the live server, the staff pages, the tracking page.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import LiveServer
from tests.test_browser import LAPTOP, PHONE, Watched, action_form, add_staff, staff_login


def db_rows(server: LiveServer, sql: str) -> list[tuple[Any, ...]]:
    path = Path(server.env["SUGGESTBOX_DATA_DIR"]) / "suggestbox.sqlite3"
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def phone_submit(w: Watched, text: str, category: str = "意见") -> str:
    p = w.page
    p.goto("/")
    p.get_by_label(category, exact=True).check()
    p.fill("#body", text)
    p.click("button.primary")
    p.wait_for_url(re.compile(r"/receipt$"))
    receipt = p.get_attribute("[data-receipt]", "data-receipt")
    assert receipt
    return receipt


def open_case(w: Watched, snippet: str) -> str:
    p = w.page
    p.goto("/staff/cases")
    p.locator("table.cases tbody tr", has_text=snippet).locator("a.mono").click()
    p.wait_for_url(re.compile(r"/staff/cases/[0-9a-f-]{36}$"))
    return p.url


def staff_do(w: Watched, case_url: str, action: str, body: str | None = None,
             assignee: str | None = None) -> None:
    w.page.goto(case_url)
    form = action_form(w, action)
    assert form.count() == 1, f"no {action} form"
    if assignee:
        form.locator("select[name=assignee]").select_option(label=assignee)
    if body is not None:
        form.locator("textarea[name=body]").fill(body)
    with w.page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert w.page.url == case_url
    assert w.page.locator(".alert[role=alert]").count() == 0, w.page.inner_text("main")


def phone_track(w: Watched, receipt: str) -> None:
    w.page.goto("/track")
    w.page.fill("#receipt", receipt)
    w.page.click("button.primary")
    w.page.wait_for_selector("h1:has-text('处理进度')")


def test_unsatisfied_survives_an_error_and_reopens_the_case(
        browser: Any, live_server: LiveServer) -> None:
    server = live_server
    add_staff(server, "lead", "leader", "王主任")
    phone = Watched(browser, server, **PHONE)
    laptop = Watched(browser, server, **LAPTOP)
    try:
        receipt = phone_submit(phone, "食堂晚班没有热饭，夜班的人只能吃泡面。")
        staff_login(laptop, "lead")
        url = open_case(laptop, "食堂晚班")
        staff_do(laptop, url, "accept", assignee="王主任（领导）")
        staff_do(laptop, url, "reply", "已和食堂商量，晚班加一个热菜。")

        p = phone.page
        phone_track(phone, receipt)
        rate = p.locator("form[action='/track/rate']")
        # Nothing is chosen for the worker.
        assert rate.locator("input[name=rating]:checked").count() == 0
        rate.locator("input[value=unsatisfied]").check()
        rate.locator("button[type=submit]").click()  # no comment: refused
        p.wait_for_selector("p.error")
        assert "请说明哪里不满意" in p.inner_text("main")
        rate = p.locator("form[action='/track/rate']")
        assert rate.locator("input[name=rating]:checked").get_attribute("value") == "unsatisfied"
        phone.shot("w1-unsatisfied-error")
        rate.locator("textarea[name=body]").fill("只有周一有热菜，其他天还是没有。")
        rate.locator("button[type=submit]").click()
        p.wait_for_selector("[role=status]")
        notice = p.inner_text("[role=status]")
        assert "不满意" in notice and "重新办理" in notice
        assert "办理中" in p.inner_text(".facts")
        assert "不满意：只有周一有热菜" in p.inner_text(".timeline")
        phone.shot("w1-unsatisfied-done")

        rows = db_rows(server, "SELECT rating, status, reopen_count FROM \"case\"")
        assert rows == [("unsatisfied", "in_progress", 1)]
        events = db_rows(server, "SELECT action, body FROM event ORDER BY seq")
        assert events[-1] == ("rate_unsatisfied", "不满意：只有周一有热菜，其他天还是没有。")
        laptop.page.goto(url)
        assert "评价：不满意" in laptop.page.inner_text(".timeline")
        for w in (phone, laptop):
            w.check_clean()
    finally:
        phone.close()
        laptop.close()


def test_receipt_reload_and_back_never_duplicate(browser: Any, live_server: LiveServer) -> None:
    server = live_server
    phone = Watched(browser, server, **PHONE)
    try:
        p = phone.page
        receipt = phone_submit(phone, "工具间的扳手不够用，经常要排队等。")
        # WeChat reloads the page when the worker switches apps to paste the code.
        p.reload()
        assert p.get_attribute("[data-receipt]", "data-receipt") == receipt
        assert "10 分钟内" in p.inner_text("main")
        # Back to the form: the page says it was sent and must not be sent again.
        p.go_back()
        p.wait_for_url(re.compile(r"/$"))
        banner = p.inner_text("[role=status]")
        assert "已经提交成功" in banner and "不必再提交一次" in banner
        phone.shot("w2-back-banner")
        # Doing what it says: look at the receipt again.
        p.click("text=再看一次回执码")
        p.wait_for_url(re.compile(r"/receipt$"))
        assert p.get_attribute("[data-receipt]", "data-receipt") == receipt
        assert db_rows(server, 'SELECT COUNT(*) FROM "case"') == [(1,)]

        # After the window (the browser's cookie is gone), the page gives no code and its
        # advice is not to send again.
        phone.context.clear_cookies()
        p.reload()
        assert p.locator("[data-receipt]").count() == 0
        text = p.inner_text("main")
        assert "回执码已不能再显示" in text and "不必重新提交" in text
        phone.shot("w2-after-window")
        p.goto("/")
        assert p.locator("[role=status]").count() == 0
        assert db_rows(server, 'SELECT COUNT(*) FROM "case"') == [(1,)]
        phone.check_clean()
    finally:
        phone.close()


def test_team_can_be_left_out_and_choices_survive_an_error(
        browser: Any, live_server: LiveServer) -> None:
    server = live_server
    server.cli("team", "add", "w1", "检修一班")
    phone = Watched(browser, server, **PHONE)
    try:
        p = phone.page
        p.goto("/?t=w1")
        team = p.locator("fieldset:has(legend:text('班组'))")
        assert "注明：检修一班" in team.inner_text()
        assert team.locator("input:checked").get_attribute("value") == "team"
        assert p.locator("input[name=category]:checked").count() == 0
        team.get_by_label("不注明班组").check()
        p.get_by_label("困难求助", exact=True).check()
        p.fill("#body", "短")  # too short
        p.click("button.primary")
        p.wait_for_selector("#body-error")
        # Every choice survives the re-render.
        team = p.locator("fieldset:has(legend:text('班组'))")
        assert team.locator("input:checked").get_attribute("value") == "none"
        assert p.get_by_label("困难求助", exact=True).is_checked()
        assert p.input_value("#body") == "短"
        phone.shot("w5-team-error")
        p.fill("#body", "家里老人住院，想调一个月白班，不知道找谁说。")
        p.click("button.primary")
        p.wait_for_url(re.compile(r"/receipt$"))
        assert db_rows(server, 'SELECT team_id FROM "case"') == [(None,)]
        # And left as it is, the team is recorded.
        p.goto("/?t=w1")
        p.get_by_label("建议", exact=True).check()
        p.fill("#body", "班组学习室的投影仪太暗，建议换一台。")
        p.click("button.primary")
        p.wait_for_url(re.compile(r"/receipt$"))
        teams = db_rows(server, 'SELECT t.code FROM "case" c JOIN team t ON t.id = c.team_id')
        assert teams == [("w1",)]
        phone.check_clean()
    finally:
        phone.close()


def test_track_keeps_a_mistyped_code(browser: Any, live_server: LiveServer) -> None:
    server = live_server
    phone = Watched(browser, server, **PHONE)
    try:
        p = phone.page
        receipt = phone_submit(phone, "更衣柜的锁坏了好几个，东西放着不放心。")
        short = receipt[:-1]
        p.goto("/track")
        p.fill("#receipt", short)
        p.click("button.primary")
        p.wait_for_selector("[role=alert]")
        assert "回执码是 16 位（现在 15 位）" in p.inner_text("[role=alert]")
        assert p.input_value("#receipt") == short
        phone.shot("w6-track-short")
        wrong = receipt[:-1] + ("0" if receipt[-1] != "0" else "1")
        p.fill("#receipt", wrong)
        p.click("button.primary")
        p.wait_for_selector("[role=alert]")
        assert "没有找到" in p.inner_text("[role=alert]")
        assert p.input_value("#receipt") == wrong
        p.fill("#receipt", receipt)
        p.click("button.primary")
        p.wait_for_selector("h1:has-text('处理进度')")
        phone.check_clean()
    finally:
        phone.close()


def _label_of(form: Any) -> str:
    return form.locator("label:has(textarea[name=body])").inner_text().strip()


def test_every_staff_label_matches_what_the_submitter_sees(
        browser: Any, live_server: LiveServer) -> None:
    """Each staff text field says 提交人可见 or 仅内部; the tracking page agrees, field by field."""
    server = live_server
    add_staff(server, "lead", "leader", "王主任")
    add_staff(server, "fixer", "handler", "李师傅")
    phone = Watched(browser, server, **PHONE)
    laptop = Watched(browser, server, **LAPTOP)
    handler = Watched(browser, server, **LAPTOP)
    try:
        r1 = phone_submit(phone, "配电室门口的接地线夹松了，一碰就晃。", "安全隐患")
        r2 = phone_submit(phone, "希望班组多组织几次技能比武。", "建议")
        r3 = phone_submit(phone, "希望班组多组织技能比武，大家都想参加。", "建议")
        staff_login(laptop, "lead")
        staff_login(handler, "fixer")
        u1 = open_case(laptop, "接地线夹")
        u2 = open_case(laptop, "几次技能比武")
        u3 = open_case(laptop, "大家都想参加")
        number2 = u2.rsplit("/", 1)[1][:8].upper()
        seen: dict[str, tuple[str, str]] = {}

        def do(w: Watched, url: str, action: str, receipt: str, assignee: str | None = None,
               extra: dict[str, str] | None = None) -> None:
            w.page.goto(url)
            form = action_form(w, action)
            label = _label_of(form)
            marker = f"标记{action}{len(seen)}号文字"
            form.locator("textarea[name=body]").fill(marker)
            if assignee:
                form.locator("select[name=assignee]").select_option(label=assignee)
            for name, value in (extra or {}).items():
                form.locator(f"[name={name}]").fill(value)
            with w.page.expect_navigation():
                form.locator("button[type=submit]").click()
            assert w.page.locator(".alert[role=alert]").count() == 0, w.page.inner_text("main")
            seen[marker] = (label, receipt)

        do(laptop, u1, "accept", r1, assignee="李师傅（承办人）")
        do(laptop, u1, "transfer", r1, assignee="王主任（领导）")
        do(laptop, u1, "note", r1)
        do(laptop, u1, "transfer", r1, assignee="李师傅（承办人）")
        do(handler, u1, "return", r1)
        do(laptop, u1, "accept", r1, assignee="王主任（领导）")
        do(laptop, u1, "reply", r1)
        do(laptop, u1, "reopen", r1)
        do(laptop, u2, "reject", r2)
        do(laptop, u2, "reconsider", r2)
        do(laptop, u3, "merge", r3, extra={"merge_into": number2})
        assert {label for label, _ in seen.values()} >= {
            "说明（提交人可见）", "说明（仅内部）", "备注（仅内部）", "答复（提交人可见）",
            "理由（提交人可见）"}
        for marker, (label, receipt) in seen.items():
            phone_track(phone, receipt)
            shown = marker in phone.page.inner_text("main")
            assert label.endswith(("（提交人可见）", "（仅内部）")), label
            assert shown == label.endswith("（提交人可见）"), (marker, label)
        # The assignee's name is for staff only; the deadline is shown.
        phone_track(phone, r1)
        assert "李师傅" not in phone.page.inner_text("main")
        assert "王主任" not in phone.page.inner_text("main")
        for w in (phone, laptop, handler):
            w.check_clean()
    finally:
        for w in (phone, laptop, handler):
            w.close()


def test_staff_choices_survive_an_error(browser: Any, live_server: LiveServer) -> None:
    server = live_server
    add_staff(server, "lead", "leader", "王主任")
    phone = Watched(browser, server, **PHONE)
    laptop = Watched(browser, server, **LAPTOP)
    try:
        phone_submit(phone, "洗澡间的排风扇不转了，一屋子水汽。")
        staff_login(laptop, "lead")
        url = open_case(laptop, "排风扇")
        lp = laptop.page
        form = action_form(laptop, "merge")
        form.locator("[name=merge_into]").fill("0000000Z")  # not a case number
        form.locator("textarea[name=body]").fill("和上周那件一样")
        form.locator("button[type=submit]").click()
        lp.wait_for_selector(".action-merge .error")
        form = action_form(laptop, "merge")
        assert form.locator("[name=merge_into]").input_value() == "0000000Z"
        assert form.locator("textarea[name=body]").input_value() == "和上周那件一样"
        assert "8 位编号" in form.inner_text()
        laptop.shot("w-staff-merge-error")
        # Accept with a note, assignee and a deadline: the note reaches the worker.
        staff_do(laptop, url, "accept", "已转设备组，一周内修好。", assignee="王主任（领导）")
        assert "已受理" in lp.inner_text("h1")
        laptop.check_clean()
    finally:
        phone.close()
        laptop.close()
