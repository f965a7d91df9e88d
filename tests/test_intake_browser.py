"""Issue 16 in Chromium: a leader records a 谈心 case (wrong first, every choice kept) and a
paper slip printed by the CLI, typing in its stub code; the worker follows the slip's case with
the stub; the month's report shows both sources."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from suggestbox import qr
from tests.conftest import LiveServer, workshop_today
from tests.test_browser import LAPTOP, PHONE, Watched, add_staff, staff_login
from tests.test_worker_path_browser import db_rows, phone_track

TALK = "谈心时反映：检修库的排风扇坏了半个月，焊接时烟很大。"
SLIP = "纸条：二号库房门口的台阶松了，晚上看不清容易崴脚。"


def test_a_talk_and_a_paper_slip_enter_the_ledger(
        browser: Any, live_server: LiveServer, tmp_path: Path) -> None:
    server = live_server
    add_staff(server, "lead", "leader", "王主任")
    slips = tmp_path / "slips.html"
    out = server.cli("slips", "--count", "2", "--out", str(slips),
                     "--base-url", "http://box.example.cn").stdout
    assert "2 张纸条" in out
    codes = re.findall(r'data-code="([0-9A-Z-]{19})"', slips.read_text(encoding="utf-8"))
    assert len(codes) == 2
    laptop = Watched(browser, server, **LAPTOP)
    phone = Watched(browser, server, **PHONE)
    try:
        # The printed slips, as the admin will see them.
        # The printed slips (a standalone file: CSS inlined, the QR code inline, nothing fetched).
        html = slips.read_text(encoding="utf-8")
        # Each stub's QR code is the /track address, never the code (the same SVG every time).
        track_svg = str(qr.svg_inline("http://box.example.cn/track"))
        assert html.count(track_svg) == 2
        assert not re.search(r'(src|href)="(https?:)?//', html)
        paper_context = browser.new_context(**LAPTOP)
        paper = paper_context.new_page()
        paper.goto(slips.as_uri())
        assert paper.locator("[data-slip]").count() == 2
        paper.screenshot(path=str(Path("screenshots") / "intake-0-slips.png"), full_page=True)
        paper_context.close()

        staff_login(laptop, "lead")
        p = laptop.page
        p.goto("/staff/cases")
        p.get_by_role("link", name=re.compile("代为录入")).click()
        p.wait_for_url(re.compile(r"/staff/cases/new"))
        assert "请不要写职工的姓名" in p.inner_text("main form[enctype]")
        # Wrong first: a source, category and team chosen, the text forgotten.
        p.get_by_label("谈心", exact=True).check()
        p.get_by_label("困难求助", exact=True).check()
        p.click("button.primary")
        p.wait_for_selector("#body-error")
        assert p.get_by_label("谈心", exact=True).is_checked()
        assert p.get_by_label("困难求助", exact=True).is_checked()
        laptop.shot("intake-1-talk-error")
        p.fill("#body", TALK)
        p.click("button.primary")
        p.wait_for_selector("[data-receipt]")
        assert "只显示这一次" in p.inner_text("main")
        laptop.shot("intake-2-talk-recorded")

        # The paper slip: its text and the code from its stub.
        p.goto("/staff/cases/new")
        p.get_by_label("意见", exact=True).check()
        p.fill("#slip", codes[0].lower())
        p.fill("#body", SLIP)
        p.click("button.primary")
        p.wait_for_selector("h1:has-text('已录入')")
        assert p.locator("[data-receipt]").count() == 0  # the worker holds the stub
        laptop.shot("intake-3-slip-recorded")

        # The worker follows the slip's case with the stub.
        phone_track(phone, codes[0])
        assert "由工作人员代为录入（来源：纸质意见箱）" in phone.page.inner_text(".timeline")
        phone.shot("intake-4-worker-tracks-slip")

        month = workshop_today().strftime("%Y-%m")
        p.goto(f"/staff/reports/{month}")
        assert p.inner_text('[data-figure="source.谈心.received"]').strip() == "1"
        assert p.inner_text('[data-figure="source.纸质意见箱.received"]').strip() == "1"
        assert p.inner_text('[data-figure="source.扫码.received"]').strip() == "0"
        laptop.shot("intake-5-report-sources")
        rows = db_rows(server, "SELECT s.name, c.body FROM \"case\" c JOIN source s "
                               "ON s.id = c.source_id ORDER BY s.sort_order")
        assert rows == [("纸质意见箱", SLIP), ("谈心", TALK)]
        assert db_rows(server, "SELECT COUNT(*) FROM slip_code") == [(1,)]
        for w in (laptop, phone):
            w.check_clean()
    finally:
        laptop.close()
        phone.close()
