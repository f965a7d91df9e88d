"""Issue 16 in Chromium: a worker writing a problem that is already on the board sees it offered
("这些问题已经有人反映过") and presses 我也遇到; the count rises once, not twice on a second press.
With JavaScript off the page links to the board instead."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import LiveServer
from tests.test_browser import LAPTOP, PHONE, Watched, add_staff, staff_login
from tests.test_worker_path_browser import db_rows, open_case, phone_submit, staff_do

FIRST = "夜班下班以后食堂没有热菜，只能吃泡面，希望夜班也供应热饭。"
SUMMARY = "夜班食堂没有热菜，希望供应热饭"
AGAIN = "下夜班的时候饭堂没热饭吃，天天泡面"


def type_and_wait(w: Watched, text: str) -> Any:
    p = w.page
    p.goto("/")
    p.locator("#body").press_sequentially(text, delay=20)
    box = p.locator("#similar")
    box.wait_for(state="visible", timeout=10_000)
    return box


def test_a_worker_adds_their_voice_instead_of_writing_again(
        browser: Any, live_server: LiveServer) -> None:
    server = live_server
    add_staff(server, "lead", "leader", "王主任")
    first = Watched(browser, server, **PHONE)
    laptop = Watched(browser, server, **LAPTOP)
    second = Watched(browser, server, **PHONE)
    try:
        phone_submit(first, FIRST)
        staff_login(laptop, "lead")
        url = open_case(laptop, "食堂没有热菜")
        staff_do(laptop, url, "accept", assignee="王主任（领导）")
        # Published while still open: 征集意见.
        form = laptop.page.locator("form.action-publish")
        assert "公示为征集意见" in form.inner_text()
        form.locator("textarea[name=summary]").fill(SUMMARY)
        with laptop.page.expect_navigation():
            form.locator("button[type=submit]").click()
        laptop.page.goto("/board")
        assert "征集意见" in laptop.page.inner_text("main")

        box = type_and_wait(second, AGAIN)
        assert "这些问题已经有人反映过" in box.inner_text()
        assert SUMMARY in box.inner_text() and FIRST not in second.page.inner_text("main")
        second.shot("support-1-offered")
        box.get_by_role("button", name=re.compile("我也遇到")).click()
        second.page.wait_for_url(re.compile(r"/board/[0-9a-f-]{36}\?supported=1$"))
        assert "已记下" in second.page.inner_text("[role=status]")
        assert second.page.inner_text("[data-supports]") == "1"
        second.shot("support-2-counted")
        # The same browser again: counted once.
        box = type_and_wait(second, AGAIN)
        box.get_by_role("button", name=re.compile("我也遇到")).click()
        second.page.wait_for_url(re.compile(r"\?supported=again$"))
        assert "同一条只计一次" in second.page.inner_text("[role=status]")
        assert second.page.inner_text("[data-supports]") == "1"
        # Nothing was submitted by the presses, and the count is stored once, by day.
        assert db_rows(server, 'SELECT COUNT(*), SUM(supports) FROM "case"') == [(1, 1)]
        assert db_rows(server, "SELECT count FROM support") == [(1,)]
        laptop.page.goto("/staff/cases?sort=supports")
        assert "食堂没有热菜" in laptop.page.inner_text("table.cases tbody tr >> nth=0")
        for w in (first, laptop, second):
            w.check_clean()
    finally:
        for w in (first, laptop, second):
            w.close()


def test_without_javascript_the_page_links_to_the_board(
        browser: Any, live_server: LiveServer) -> None:
    w = Watched(browser, live_server, java_script_enabled=False, **PHONE)
    try:
        w.page.goto("/")
        assert w.page.locator("#similar").is_hidden()
        link = w.page.get_by_role("link", name="公示栏").last
        assert link.get_attribute("href") == "/board"
        w.check_clean()
    finally:
        w.close()
