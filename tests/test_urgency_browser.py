"""Issue 17 in Chromium: a worker reports a 安全隐患 on a phone, sees the emergency line and
chooses an immediate notification (after an error, the choices are still there); later, the case
is overdue, the worker presses 催一下 on /track, and the leader's queue shows the urgent case
first, with the hours past and the 催办 count. Webhooks go to a real local server."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import start_server, stop_server
from tests.test_browser import LAPTOP, PHONE, Watched, add_staff, staff_login
from tests.test_notify import Hook, hook  # noqa: F401 (the fixture)
from tests.test_worker_path_browser import db_rows, phone_track

TEXT = "变电所门口的接地线夹松了，风一吹就晃，下雨天怕出事。"
PHONE_LINE = "0571-12345678"


def test_a_hazard_goes_out_at_once_and_the_worker_can_urge_it(
        browser: Any, hook: Hook, tmp_path: Path) -> None:  # noqa: F811
    hook.forbidden = [TEXT]
    server = start_server(tmp_path, extra_env={"SUGGESTBOX_NOTIFY_QUIET_HOURS": "2",
                                               "SUGGESTBOX_NOTIFY_POLL_SECONDS": "0.5",
                                               "SUGGESTBOX_BASE_URL": "http://box.example.cn"})
    phone = laptop = None
    try:
        server.cli("org", "set", "--name", "某某供电段检修车间", "--phone", PHONE_LINE)
        add_staff(server, "lead", "leader", "王主任")
        db_rows(server, "INSERT INTO notify_channel (name, kind, url, secret, enabled, "
                f"created_at) VALUES ('车间群', 'json', '{hook.url}/g', '', 1, "
                "'2026-11-01 00:00:00')")

        phone = Watched(browser, server, **PHONE)
        p = phone.page
        p.goto("/")
        emergency = p.locator("p.emergency")
        assert f"安全隐患：紧急危险请立即电话报告：{PHONE_LINE}" in emergency.inner_text()
        assert p.locator(f'a[href="tel:{PHONE_LINE}"]').count() == 1
        opt_in = p.get_by_label("立即通知值班领导")
        assert "通知的时间会显示您大致何时提交" in p.inner_text("form")
        p.get_by_label("安全隐患", exact=True).check()
        opt_in.check()
        p.click("button.primary")  # no text yet: refused, nothing stored
        p.wait_for_selector("#body-error")
        assert p.get_by_label("安全隐患", exact=True).is_checked()
        assert p.get_by_label("立即通知值班领导").is_checked()
        phone.shot("urgent-1-error")
        p.fill("#body", TEXT)
        p.click("button.primary")
        p.wait_for_url(re.compile(r"/receipt$"))
        receipt = p.get_attribute("[data-receipt]", "data-receipt")
        assert receipt
        said = p.inner_text("main")
        assert "“安全隐患”须在 4 小时内受理、24 小时内答复" in said and PHONE_LINE in said
        phone.shot("urgent-2-receipt")

        # The opt-in: the group hears at once (the live server's worker polls every 0.5 s),
        # not at the next two-hour batch.
        for _ in range(100):
            if hook.on("/g"):
                break
            time.sleep(0.1)
        (message,) = hook.on("/g")
        assert message.json["title"] == "职工百宝箱：紧急：新案件待受理"
        assert "提交人要求立即通知值班领导。" in message.json["lines"]

        # Nine hours later nobody has accepted it (the clock is moved back, not the machine's).
        (clock,) = db_rows(server, 'SELECT clock_at FROM "case"')
        assert clock[0] is not None
        earlier = (datetime.now(UTC) - timedelta(hours=9)).replace(minute=0, second=0,
                                                                    microsecond=0)
        db_rows(server, f"UPDATE \"case\" SET clock_at = '{earlier.isoformat(sep=' ')}'")
        phone_track(phone, receipt)
        assert "这件事已经超过办理期限" in p.inner_text("#urge")
        p.click("#urge button")
        p.wait_for_selector(".alert.ok")
        assert "已催办" in p.inner_text(".alert.ok")
        assert "今天已经催过了" in p.inner_text("#urge")
        assert p.locator("#urge button").count() == 0
        assert "您催办了一次" in p.inner_text("ol.timeline")
        phone.shot("urgent-3-urged")
        assert db_rows(server, 'SELECT urges FROM "case"') == [(1,)]
        phone.check_clean()

        laptop = Watched(browser, server, **LAPTOP)
        staff_login(laptop, "lead")
        q = laptop.page
        q.goto("/staff/cases")
        block = q.locator("table.urgent")
        assert block.count() == 1
        row = block.locator("tbody tr", has_text=TEXT[:10])
        assert re.search(r"超时 [45] 小时", row.inner_text())  # clock 9 h ago + 4 h to accept
        assert "催办 1" in row.inner_text()
        # Urgent first: the block comes before the ordinary list.
        assert q.locator("h2.urgent-title").count() == 1
        laptop.shot("urgent-4-queue")
        row.locator("a.mono").click()
        q.wait_for_url(re.compile(r"/staff/cases/[0-9a-f-]{36}$"))
        assert "受理已超时" in q.inner_text("[data-hours]")
        assert q.inner_text("[data-urges]").strip() == "1 次"
        laptop.shot("urgent-5-case")
        laptop.check_clean()
    finally:
        for w in (phone, laptop):
            if w is not None:
                w.close()
        stop_server(server)
