"""Issue 14 in Chromium: a worker goes around the workshop to 段工会.

The worker picks 段工会 on the phone (after an error, the choice is still there), submits; the
workshop leader's queue, counts and group chat show nothing; the union's staff see the case,
answer it; the worker reads the answer with the receipt. Webhooks go to a real local server.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tests.conftest import start_server, stop_server, workshop_today
from tests.test_browser import LAPTOP, PHONE, STAFF_PASSWORD, Watched, add_staff, staff_login
from tests.test_notify import Hook, hook  # noqa: F401 (the fixture)
from tests.test_worker_path_browser import db_rows, open_case, phone_track, staff_do

TEXT = "反映车间主任的问题：夜班补贴连续三个月算少了，不敢当面说。"


def test_a_case_for_the_union_never_reaches_the_workshop(
        browser: Any, hook: Hook, tmp_path: Path) -> None:  # noqa: F811
    hook.forbidden = [TEXT]
    server = start_server(tmp_path, extra_env={"SUGGESTBOX_NOTIFY_QUIET_HOURS": "0",
                                               "SUGGESTBOX_BASE_URL": "http://box.example.cn"})
    phone = laptop = union = None
    try:
        server.cli("workshop", "add", "gonghui", "段工会", "--desk")
        add_staff(server, "lead", "leader", "王主任")
        server.cli("user", "add", "gh", "--role", "leader", "--display-name", "李主席",
                   "--workshop", "gonghui", "--password-stdin", stdin=STAFF_PASSWORD + "\n")
        units = dict(db_rows(server, "SELECT code, id FROM unit"))
        groups = (("车间群", units["main"], "/a"), ("工会群", units["gonghui"], "/g"),
                  ("段领导群", "NULL", "/d"))
        for name, unit, path in groups:
            db_rows(server, "INSERT INTO notify_channel (name, kind, url, secret, enabled, "
                    f"created_at, unit_id) VALUES ('{name}', 'json', '{hook.url + path}', '', 1, "
                    f"'2026-11-01 00:00:00', {unit})")

        phone = Watched(browser, server, **PHONE)
        p = phone.page
        p.goto("/")
        choice = p.get_by_label(re.compile("直接反映给段工会"))
        assert "只有段工会的工作人员能看到，车间领导看不到" in p.inner_text("form")
        choice.check()
        p.get_by_label("意见", exact=True).check()
        p.click("button.primary")  # nothing written: refused
        p.wait_for_selector("#body-error")
        assert p.get_by_label(re.compile("直接反映给段工会")).is_checked()
        assert p.get_by_label("意见", exact=True).is_checked()
        phone.shot("depot-1-union-error")
        p.fill("#body", TEXT)
        p.click("button.primary")
        p.wait_for_url(re.compile(r"/receipt$"))
        receipt = p.get_attribute("[data-receipt]", "data-receipt")
        assert receipt
        assert "只有段工会的工作人员能看到" in p.inner_text("main")
        phone.shot("depot-2-union-receipt")

        laptop = Watched(browser, server, **LAPTOP)
        staff_login(laptop, "lead")
        laptop.page.goto("/staff/cases")
        queue = laptop.page.inner_text("main")
        assert "夜班补贴" not in queue and "全部 0" in queue
        laptop.shot("depot-3-workshop-queue-empty")
        month = workshop_today().strftime("%Y-%m")
        laptop.page.goto(f"/staff/reports/{month}")
        assert laptop.page.inner_text('[data-figure="total.received"]').strip() == "0"

        union = Watched(browser, server, **LAPTOP)
        staff_login(union, "gh")
        url = open_case(union, "夜班补贴")
        assert "段工会（职工直接反映，车间看不到）" in union.page.inner_text(".facts")
        staff_do(union, url, "accept", assignee="李主席（领导）")
        staff_do(union, url, "reply", "已核实，补贴差额随下月工资补发。")
        union.shot("depot-4-union-answered")
        union.page.goto(f"/staff/reports/{month}")  # the desk's own report has it
        assert union.page.inner_text('[data-figure="total.received"]').strip() == "1"

        phone_track(phone, receipt)
        assert "已核实，补贴差额随下月工资补发。" in p.inner_text(".timeline")
        assert "段工会" in p.inner_text(".facts")
        phone.shot("depot-5-worker-reads-answer")

        deadline = time.monotonic() + 30
        while not hook.on("/g") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert hook.on("/g"), "the union's group heard nothing"
        time.sleep(1)  # anything wrongly addressed would have gone out in the same round
        assert hook.on("/a") == [] and hook.on("/d") == []
        for w in (phone, laptop, union):
            w.check_clean()
    finally:
        for w in (phone, laptop, union):
            if w is not None:
                w.close()
        stop_server(server)
