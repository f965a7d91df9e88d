"""The whole journey in a real browser (Debian's Chromium through Playwright) against a real server.

A worker on a phone (WeChat's in-app browser) scans the team link, submits and gets a receipt; a
leader on a laptop accepts and assigns; the handler replies; the worker tracks the case, sees the
reply and rates it; finally the leader publishes a summary and the board shows it (those last
steps run once `/board` exists). Screenshots of every step go to `screenshots/` (git-ignored).
"""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import SHOTS, LiveServer

WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 13; V2183A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 "
    "MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 "
    "Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
    "has_touch": True, "user_agent": WECHAT_UA, "locale": "zh-CN",
}
LAPTOP: dict[str, Any] = {"viewport": {"width": 1366, "height": 900}, "locale": "zh-CN"}
STAFF_PASSWORD = "password123"




class Watched:
    """A browser context that records console errors (CSP violations show up there) and every
    request URL, so a test can prove the pages load nothing from elsewhere."""

    def __init__(self, browser: Any, server: LiveServer, **options: Any) -> None:
        self.server = server
        self.context = browser.new_context(base_url=server.url, **options)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.documents_4xx: set[str] = set()
        self.page.on("response", lambda r: r.status >= 400 and r.request.resource_type == "document"
                     and self.documents_4xx.add(r.url))
        # Any console error fails a test: CSP violations, an invalid `pattern`, a failed load
        # (the favicon included). Error *pages* (4xx documents a test expects) are not loads.
        self.page.on("console", lambda m: m.type == "error" and not self._expected(m)
                     and self.errors.append(f"{self.page.url}: {m.text}"))
        self.page.on("response", lambda r: r.status >= 400 and r.request.resource_type != "document"
                     and self.errors.append(f"{r.status} {r.url}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.context.on("request", lambda r: self.requests.append(r.url))

    def _expected(self, message: Any) -> bool:
        """Chromium's line for a document answered with 4xx (a form re-rendered with 422): the
        status is the page's answer, not a failed load."""
        return message.text.startswith("Failed to load resource") \
            and message.location.get("url") in self.documents_4xx

    def shot(self, name: str) -> None:
        SHOTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def check_clean(self) -> None:
        assert self.errors == [], self.errors
        foreign = [u for u in self.requests
                   if not (u.startswith(self.server.url + "/") or u.startswith("data:"))]
        assert foreign == [], f"requests to other origins: {foreign}"

    def close(self) -> None:
        self.context.close()


def add_staff(server: LiveServer, name: str, role: str, display: str) -> None:
    server.cli("user", "add", name, "--role", role, "--display-name", display,
               "--password-stdin", stdin=STAFF_PASSWORD + "\n")


def staff_login(w: Watched, name: str) -> None:
    w.page.goto("/staff/login")
    w.page.fill("#username", name)
    w.page.fill("#password", STAFF_PASSWORD)
    w.page.click("button[type=submit].primary")
    w.page.wait_for_url(re.compile(r"/staff/cases"))


def action_form(w: Watched, action: str) -> Any:
    return w.page.locator(f"form.action:has([name=action][value={action}])")


def test_whole_journey_phone_and_laptop(browser: Any, live_server: LiveServer) -> None:
    server = live_server
    server.cli("team", "add", "w1", "一号车间")
    add_staff(server, "lead", "leader", "王主任")
    add_staff(server, "fixer", "handler", "李师傅")
    text = "一号车间东门的照明灯坏了三盏，夜班看不清台阶，希望尽快修好。"
    reply = "已安排电工今天下午更换灯具，并在台阶加装反光条。"

    phone = Watched(browser, server, **PHONE)
    laptop = Watched(browser, server, **LAPTOP)
    handler = Watched(browser, server, **LAPTOP)
    try:
        # 1. Phone: scan the team's QR link, write, submit.
        p = phone.page
        p.goto("/?t=w1")
        assert "一号车间" in p.inner_text("main")
        phone.shot("01-phone-submit")
        p.check("input[name=category] >> nth=3")  # 安全隐患
        p.fill("#body", text)
        p.click("button.primary")
        p.wait_for_url(re.compile(r"/receipt$"))
        receipt = p.get_attribute("[data-receipt]", "data-receipt")
        assert receipt and re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", receipt)
        assert receipt not in p.url
        phone.shot("02-phone-receipt")
        p.reload()  # shown again for a few minutes in this browser (WeChat reloads on app switch)
        assert p.get_attribute("[data-receipt]", "data-receipt") == receipt

        # 2. Laptop: the leader logs in, opens the case, accepts it and assigns the handler.
        staff_login(laptop, "lead")
        lp = laptop.page
        row = lp.locator("table.cases tbody tr", has_text="照明灯坏了")
        assert row.count() == 1
        assert "一号车间" in row.inner_text() and "待受理" in row.inner_text()
        laptop.shot("03-laptop-queue")
        row.locator("a.mono").click()
        lp.wait_for_url(re.compile(r"/staff/cases/[0-9a-f-]{36}$"))
        case_url = lp.url
        assert text in lp.inner_text(".original")
        laptop.shot("04-laptop-case")
        accept = action_form(laptop, "accept")
        accept.locator("select[name=assignee]").select_option(label="李师傅（承办人）")
        accept.locator("button[type=submit]").click()
        lp.wait_for_url(case_url)
        assert "已受理" in lp.inner_text("h1")
        assert "李师傅" in lp.inner_text(".facts")
        laptop.shot("05-laptop-accepted")

        # 3. Laptop: the handler sees the case in their queue and replies.
        staff_login(handler, "fixer")
        hp = handler.page
        assert hp.locator("table.cases tbody tr", has_text="照明灯坏了").count() == 1
        hp.goto(case_url)
        form = action_form(handler, "reply")
        form.locator("textarea[name=body]").fill(reply)
        form.locator("button[type=submit]").click()
        hp.wait_for_url(case_url)
        assert "已答复" in hp.inner_text("h1")
        handler.shot("06-laptop-handler-replied")

        # 4. Phone: track with the receipt (typed lower case, without dashes), see the reply, rate.
        p.goto("/track")
        p.fill("#receipt", receipt.replace("-", "").lower())
        p.click("button.primary")
        assert "已答复" in p.inner_text(".facts")
        assert reply in p.inner_text(".timeline")
        phone.shot("07-phone-track-reply")
        rate = p.locator("form[action='/track/rate']")
        rate.locator("input[name=rating][value=satisfied]").check()
        rate.locator("button[type=submit]").click()
        assert "感谢您的评价" in p.inner_text("main")
        assert "满意" in p.inner_text(".timeline")
        assert p.locator("form[action='/track/rate']").count() == 0
        phone.shot("08-phone-rated")

        for w in (phone, laptop, handler):
            w.check_clean()

        # 5. Publish, and the board shows the summary.
        summary = "一号车间东门照明已修复，台阶加装了反光条。"
        lp.goto(case_url)
        publish = action_form(laptop, "publish")
        assert publish.count() == 1, "no publish form on the case page of an answered case"
        publish.locator("textarea").first.fill(summary)
        publish.locator("button[type=submit]").click()
        lp.wait_for_url(case_url)
        assert lp.locator(".alert[role=alert]").count() == 0, lp.inner_text("main")
        laptop.shot("09-laptop-published")
        p.goto("/board")
        assert summary in p.inner_text("main")
        assert text not in p.content(), "the board must show the summary, not the original text"
        phone.shot("10-phone-board")
        for w in (phone, laptop):
            w.check_clean()
    finally:
        for w in (phone, laptop, handler):
            w.close()
