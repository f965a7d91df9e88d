"""Issue 13, items 2–5: the first hour as a newcomer lives it, in Chromium.

`suggestbox serve` on an empty database prints a one-time setup link; the newcomer opens it,
gets the password wrong once, creates the first admin, signs in, sets the unit's name and
emergency line (one mistake first), and prints a poster whose QR code decodes to the configured
URL with the name and the line on it. No console error on any page.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import LiveServer, start_server, stop_server
from tests.test_browser import LAPTOP, PHONE, Watched
from tests.test_posters_browser import decode

BASE = "http://box.example.cn"
PASSWORD = "first-admin-pass-1"


def printed_setup_link(server: LiveServer) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = re.search(r"http://127\.0\.0\.1:\d+(/setup/[A-Za-z0-9_-]+)", server.log.read_text())
        if m:
            return m.group(1)
        time.sleep(0.05)
    raise AssertionError(server.log.read_text())


def test_first_run_from_setup_link_to_poster(browser: Any, tmp_path: Path) -> None:
    server = start_server(tmp_path, extra_env={"SUGGESTBOX_BASE_URL": BASE})
    laptop = Watched(browser, server, **LAPTOP)
    phone = Watched(browser, server, **PHONE)
    try:
        log = server.log.read_text()
        assert "user add admin --role admin" in log
        link = printed_setup_link(server)
        p = laptop.page
        p.goto(link)
        assert "创建第一个管理员" in p.inner_text("h1")
        laptop.shot("f1-setup")
        p.fill("#username", "zhang")
        p.fill("#display_name", "张主任")
        p.fill("#password", PASSWORD)
        p.fill("#password2", PASSWORD + "x")
        p.click("button.primary")
        p.wait_for_selector("#password2-error")
        assert p.input_value("#username") == "zhang"
        assert p.input_value("#display_name") == "张主任"
        p.fill("#password", PASSWORD)
        p.fill("#password2", PASSWORD)
        p.click("button.primary")
        p.wait_for_url(re.compile(r"/staff/login\?setup=1$"))
        assert "管理员已创建" in p.inner_text("main")
        # The link works once.
        assert httpx.get(server.url + link, timeout=10).status_code == 404
        p.fill("#username", "zhang")
        p.fill("#password", PASSWORD)
        p.click("button[type=submit]")
        p.wait_for_url(re.compile(r"/staff/cases"))

        p.goto("/admin/org")
        p.fill("#org-name", "杭州供电段杭州东牵引变电车间")
        p.fill("#org-phone", "打电话给值班室")
        p.click("button.primary")
        p.wait_for_selector("#phone-error")
        assert p.input_value("#org-name") == "杭州供电段杭州东牵引变电车间"
        assert p.input_value("#org-phone") == "打电话给值班室"
        laptop.shot("f2-org-error")
        p.fill("#org-phone", "0571-5672 1234")
        p.click("button.primary")
        p.wait_for_url(re.compile(r"/admin/org\?saved=1$"))

        p.goto("/admin/posters")
        assert p.locator("[data-base-url-missing]").count() == 0
        assert p.locator("[data-plain-http]").count() == 1  # http:// is called serious here too
        p.goto("/admin/posters/print")
        poster = p.locator("section.poster").first
        text = poster.inner_text()
        assert "杭州供电段杭州东牵引变电车间" in text
        assert "紧急危险请立即电话报告：0571-5672 1234" in text.replace("\n", "")
        laptop.shot("f3-poster")
        assert decode(poster.screenshot()) == [BASE + "/"]

        # The worker's phone: the name heads the page, the line sits by the categories.
        phone.page.goto("/")
        main = phone.page.inner_text("main")
        assert "杭州供电段杭州东牵引变电车间" in main
        assert "紧急危险请立即电话报告" in main and "0571-5672 1234" in main
        assert phone.page.get_attribute(".emergency a", "href") == "tel:0571-56721234"
        phone.shot("f4-phone-submit")
        for w in (laptop, phone):
            w.check_clean()
    finally:
        laptop.close()
        phone.close()
        stop_server(server)


def test_posters_page_says_where_to_set_the_url(browser: Any, tmp_path: Path) -> None:
    server = start_server(tmp_path)
    laptop = Watched(browser, server, **LAPTOP)
    try:
        server.cli("user", "add", "adm", "--role", "admin", "--password-stdin",
                   stdin=PASSWORD + "\n")
        p = laptop.page
        p.goto("/staff/login")
        p.fill("#username", "adm")
        p.fill("#password", PASSWORD)
        p.click("button[type=submit]")
        p.wait_for_url(re.compile(r"/staff/cases"))
        p.goto("/admin/posters")
        how = p.inner_text("[data-how-to-set]")
        assert ".env" in how and "SUGGESTBOX_BASE_URL=" in how and "重启" in how
        laptop.shot("f5-posters-how-to")
        laptop.check_clean()
        # With an admin, serve prints no setup link.
        assert "/setup/" not in server.cli("org", "show").stdout
    finally:
        laptop.close()
        stop_server(server)
